"""System checks: a misconfigured store is reported at `manage.py check`, with the fix."""
from django.apps import apps
from django.core import checks
from django.core.exceptions import FieldDoesNotExist
from django.dispatch import Signal
from django.utils.module_loading import import_string

from personalization.adapters import ModelAdapter, StoreAdapter, resolve_field_path
from personalization.conf import settings

# id -> (message, hint); kept together so codes stay stable.
MESSAGES = {
    "E001": ("PERSONALIZATION has unknown setting(s): {detail}.", "Remove or rename them; see personalization.conf.DEFAULTS."),
    "E002": ("PERSONALIZATION['{setting}'] is wrong: {detail}", "Set it to an installed model as 'app_label.ModelName'."),
    "E003": (
        "PERSONALIZATION['{setting}']['{key}'] = {path!r} does not exist on {model}: {detail}",
        "Use a field name of {model}, or a lookup through its relations such as 'cart__user'.",
    ),
    "E004": ("PERSONALIZATION['ORDER_PLACED_SIGNAL'] is wrong: {detail}", "Use a dotted path to a django.dispatch.Signal, or None for the order model's post_save."),
    "E005": ("PERSONALIZATION['ADAPTER'] is wrong: {detail}", "Use a dotted path to a personalization.adapters.StoreAdapter subclass."),
    "E006": (
        "PERSONALIZATION['{setting}'] lacks the required field '{key}'.",
        "Map '{key}' to a field of the model in PERSONALIZATION['{setting}'].",
    ),
}

MODEL_FIELDS = {
    "PRODUCT_MODEL": ("PRODUCT_FIELDS", ()),
    "CART_LINE_MODEL": ("CART_LINE_FIELDS", ("product", "quantity")),
    "ORDER_LINE_MODEL": ("ORDER_LINE_FIELDS", ("order", "product")),
}
# Product entries that may name a method or attribute rather than a field.
ATTRIBUTE_KEYS = {("PRODUCT_FIELDS", "id"), ("PRODUCT_FIELDS", "url")}


def error(code, obj=None, **detail):
    message, hint = MESSAGES[code]
    return checks.Error(message.format(**detail), hint=hint.format(**detail), obj=obj, id=f"personalization.{code}")


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
        for key in required:
            if not fields.get(key):
                errors.append(error("E006", setting=fields_setting, key=key))
        for key, path in fields.items():
            if not path or path == "pk":
                continue
            if (fields_setting, key) in ATTRIBUTE_KEYS and "__" not in path and hasattr(model, path):
                continue
            try:
                resolve_field_path(model, path)
            except FieldDoesNotExist as exc:
                errors.append(error("E003", obj=model, setting=fields_setting, key=key, path=path, model=label, detail=exc))

    signal_path = raw.get("ORDER_PLACED_SIGNAL")
    if signal_path:
        try:
            signal = import_string(signal_path) if isinstance(signal_path, str) else signal_path
            if not isinstance(signal, Signal):
                raise ImportError(f"{signal_path!r} is not a Signal")
        except ImportError as exc:
            errors.append(error("E004", detail=str(exc)))
    return errors
