"""System checks: a misconfigured store is reported at `manage.py check`, with the fix.

Field paths are resolved by `adapters.fields`, exactly as the adapter reads them at run time."""
from django.apps import apps
from django.conf import settings as django_settings
from django.core import checks
from django.dispatch import Signal
from django.template import TemplateDoesNotExist
from django.template.loader import get_template
from django.utils.module_loading import import_string

from personalization.adapters import ModelAdapter, StoreAdapter
from personalization.adapters import fields as field_paths
from personalization.adapters.model_adapter import MANY_VALUED
from personalization.conf import settings

MIDDLEWARE = "personalization.middleware.ShopperMiddleware"

# id -> (message, hint); kept together so codes stay stable.
MESSAGES = {
    "E001": ("PERSONALIZATION has unknown setting(s): {detail}.", "Remove or rename them; see personalization.conf.DEFAULTS."),
    "E002": ("PERSONALIZATION['{setting}'] is wrong: {detail}", "Set it to an installed model as 'app_label.ModelName'."),
    "E003": ("PERSONALIZATION['{setting}']['{key}'] = {path!r} does not exist on {model}: {detail}", "{detail.hint}"),
    "E004": ("PERSONALIZATION['ORDER_PLACED_SIGNAL'] is wrong: {detail}", "Use a dotted path to a django.dispatch.Signal, or None for the order model's post_save."),
    "E005": ("PERSONALIZATION['ADAPTER'] is wrong: {detail}", "Use a dotted path to a personalization.adapters.StoreAdapter subclass."),
    "E006": (
        "PERSONALIZATION['{setting}'] lacks the required field '{key}'.",
        "Map '{key}' to a field of the model in PERSONALIZATION['{setting}'].",
    ),
    "E007": (
        "PERSONALIZATION['{setting}']['{key}'] = {path!r} has many values per row of {model} (through {through!r}).",
        "A line has one {key}: follow foreign keys only (e.g. '{example}'), or read it in a StoreAdapter subclass.",
    ),
    "E008": (
        "PERSONALIZATION['PRODUCT_FIELDS']['{key}'] = {path!r} has many values per product (through {through!r}).",
        "Only price (the lowest), stock and stock_allocated (summed) and category (every name) may pass a "
        "many-valued relation; map '{key}' to a field with one value per product.",
    ),
    "E009": (
        "PERSONALIZATION['CART_LINE_FILTER'] is wrong: {detail}",
        "Use {{field path: value}} pairs on the cart-line model that must all be equal, e.g. {{'basket__status': 'Open'}}.",
    ),
    "W002": (
        "No template engine has the 'request' context processor: {{% recommendations %}} and the other tags show nothing.",
        "Add 'django.template.context_processors.request' to TEMPLATES[...]['OPTIONS']['context_processors'].",
    ),
    "W003": (
        "PERSONALIZATION['PAGE_TEMPLATE'] = {name!r} cannot be loaded: the privacy page would fail.",
        "Name your store's page layout (it needs {{% block title %}} and {{% block content %}}), e.g. 'base.html'.",
    ),
    "W001": (
        "Anonymous carts cannot be recorded: {model} lines name no session key and {middleware} is not in MIDDLEWARE.",
        "Add '{middleware}' to MIDDLEWARE after AuthenticationMiddleware (before the store's cart middleware), "
        "or map CART_LINE_FIELDS['session_key'] to the cart's session column.",
    ),
}

MODEL_FIELDS = {
    "PRODUCT_MODEL": ("PRODUCT_FIELDS", ()),
    "CART_LINE_MODEL": ("CART_LINE_FIELDS", ("product", "quantity")),
    "ORDER_LINE_MODEL": ("ORDER_LINE_FIELDS", ("order", "product")),
}
# Product entries that may name a method or attribute of the product rather than a field.
ATTRIBUTE_KEYS = {"id", "title", "url"}
EXAMPLES = {"CART_LINE_FIELDS": "cart__user", "ORDER_LINE_FIELDS": "order__user"}


def message(code, **detail):
    text, hint = MESSAGES[code]
    return text.format(**detail), hint.format(**detail)


def error(code, obj=None, **detail):
    text, hint = message(code, **detail)
    kind = checks.Warning if code.startswith("W") else checks.Error
    return kind(text, hint=hint, obj=obj, id=f"personalization.{code}")


@checks.register()
def check_settings(app_configs=None, **kwargs):
    unknown = settings.unknown_keys()
    if unknown:
        return [error("E001", detail=", ".join(unknown))]

    raw = settings.user_settings
    errors = []
    adapter_path = raw.get("ADAPTER", "personalization.adapters.ModelAdapter")
    try:
        adapter_class = import_string(adapter_path) if isinstance(adapter_path, str) else adapter_path
        if not (isinstance(adapter_class, type) and issubclass(adapter_class, StoreAdapter)):
            raise ImportError(f"{adapter_path!r} is not a StoreAdapter subclass")
    except ImportError as exc:
        return [error("E005", detail=str(exc))]
    if not issubclass(adapter_class, ModelAdapter):
        return []  # a custom adapter answers for itself

    for setting, (fields_setting, required) in MODEL_FIELDS.items():
        label = getattr(settings, setting)
        if not label:
            if setting == "PRODUCT_MODEL":
                errors.append(error("E002", setting=setting, detail="not set"))
            continue
        try:
            model = apps.get_model(label)
        except (LookupError, ValueError):
            errors.append(error("E002", setting=setting, detail=f"{label!r} is not an installed model"))
            continue
        fields = getattr(settings, fields_setting)
        errors += [error("E006", setting=fields_setting, key=key) for key in required if not fields.get(key)]
        errors += _field_errors(model, label, fields_setting, fields)
        if setting == "CART_LINE_MODEL":
            errors += _cart_errors(model, label, fields)

    signal_path = raw.get("ORDER_PLACED_SIGNAL")
    if signal_path:
        try:
            signal = import_string(signal_path) if isinstance(signal_path, str) else signal_path
            if not isinstance(signal, Signal):
                raise ImportError(f"{signal_path!r} is not a Signal")
        except ImportError as exc:
            errors.append(error("E004", detail=str(exc)))
    return errors


@checks.register(checks.Tags.templates)
def check_templates(app_configs=None, **kwargs):
    found = []
    django_engine = "django.template.backends.django.DjangoTemplates"
    engines = [t for t in django_settings.TEMPLATES if t.get("BACKEND") == django_engine]
    processors = [p for t in engines for p in (t.get("OPTIONS") or {}).get("context_processors", ())]
    if engines and "django.template.context_processors.request" not in processors:
        found.append(error("W002"))
    if not settings.unknown_keys():
        try:
            get_template(settings.PAGE_TEMPLATE)
        except TemplateDoesNotExist:
            found.append(error("W003", name=settings.PAGE_TEMPLATE))
    return found


def _field_errors(model, label, fields_setting, fields):
    errors = []
    for key, path in fields.items():
        if not path:
            continue
        attribute_ok = fields_setting == "PRODUCT_FIELDS" and key in ATTRIBUTE_KEYS
        try:
            found = field_paths.resolve(model, path, attribute_ok=attribute_ok)
        except field_paths.FieldPathError as exc:
            errors.append(error("E003", obj=model, setting=fields_setting, key=key, path=path, model=label, detail=exc))
            continue
        if not found.many:
            continue
        if fields_setting != "PRODUCT_FIELDS":
            example = EXAMPLES[fields_setting] if key == "user" else key
            errors.append(error("E007", obj=model, setting=fields_setting, key=key, path=path, model=label,
                                through=found.through, example=example))  # fmt: skip
        elif key not in MANY_VALUED:
            errors.append(error("E008", obj=model, key=key, path=path, through=found.through))
    return errors


def _cart_errors(model, label, fields):
    errors = []
    cart_filter = settings.CART_LINE_FILTER
    if not isinstance(cart_filter, dict):
        errors.append(error("E009", obj=model, detail=f"{cart_filter!r} is not a dict"))
    else:
        for path in cart_filter:
            try:
                found = field_paths.resolve(model, path)
            except field_paths.FieldPathError as exc:
                errors.append(error("E009", obj=model, detail=f"{exc} {exc.hint}"))
                continue
            if found.many:
                detail = f"{path!r} has many values per line (through {found.through!r})"
                errors.append(error("E009", obj=model, detail=detail))
    if not fields.get("session_key") and MIDDLEWARE not in django_settings.MIDDLEWARE:
        errors.append(error("W001", obj=model, model=label, middleware=MIDDLEWARE))
    return errors
