"""The one reader of the settings' field paths ('category__name', 'stockrecords__price').

`manage.py check` and the run time resolve a path the same way, so a configuration that the
checks accept is one the adapter can read: in the database for whole batches (`many` paths are
reduced there, see ModelAdapter) and on a single instance for cart lines.
"""
from dataclasses import dataclass

from django.core.exceptions import FieldDoesNotExist


class FieldPathError(ValueError):
    """A path that cannot be read; `hint` says how to fix it."""

    def __init__(self, message, hint):
        super().__init__(message)
        self.hint = hint


@dataclass(frozen=True)
class FieldPath:
    model: type  # where the path starts
    path: str
    field: object  # the last field; None when the path names a method or property of the model
    many: bool  # it passes a reverse foreign key or a many-to-many relation: many values per row
    through: str = ""  # the first many-valued step, for messages
    # The models whose rows its value is read from: `model`, each related model it passes and the
    # intermediate model of each many-to-many step (whose rows change without a save of either side).
    models: tuple = ()

    @property
    def attribute(self):
        return self.field is None


def _label(model):
    return model._meta.label


def _paths_from(model, prefix):
    """The paths one step further than `prefix`, for a hint: 'cart__session_key, cart__user, ...'."""
    names = sorted(f.name for f in model._meta.get_fields() if not (f.auto_created and not f.concrete))
    return ", ".join(f"{prefix}{name}" for name in names[:15])


def resolve(model, path, *, attribute_ok=False):
    """The FieldPath of `path` on `model`, or FieldPathError saying which step is wrong and how to
    fix it. `attribute_ok`: a bare name may be a method or property of the model (a URL)."""
    if path == "pk":
        return FieldPath(model, path, model._meta.pk, False, models=(model,))
    parts = path.split("__")
    current, field, many, through, passed = model, None, False, "", [model]
    for n, part in enumerate(parts):
        if current is None:
            raise FieldPathError(
                f"{path!r}: {parts[n - 1]!r} is not a relation, so {part!r} cannot follow it",
                f"End the path at {'__'.join(parts[:n])!r}, or follow a foreign key or many-to-many field.",
            )
        try:
            field = current._meta.get_field(part)
        except FieldDoesNotExist:
            if attribute_ok and len(parts) == 1 and hasattr(current, part):
                return FieldPath(model, path, None, False, models=(model,))
            prefix = "".join(f"{step}__" for step in parts[:n])
            raise FieldPathError(
                f"{path!r}: {_label(current)} has no field {part!r}",
                f"Paths that exist here: {_paths_from(current, prefix)}.",
            ) from None
        if field.is_relation and field.related_model is None:  # GenericForeignKey
            raise FieldPathError(
                f"{path!r}: {_label(current)}.{part} is a GenericForeignKey, which the database cannot follow",
                "Map the fields it stands on (its content type and object id), or read the value in a "
                "StoreAdapter subclass.",
            )
        if field.one_to_many or field.many_to_many:
            many, through = True, through or "__".join(parts[: n + 1])
        if field.many_to_many:  # a ManyToManyField's rel, or the reverse side's ManyToManyRel, holds it
            passed.append((field if hasattr(field, "through") else field.remote_field).through)
        current = field.related_model if field.is_relation else None
        if current is not None:
            passed.append(current)
    return FieldPath(model, path, field, many, through, models=tuple(dict.fromkeys(passed)))


def read(instance, path):
    """The value of a single-valued path on one instance; foreign keys as ids (no query for the
    last step). A method of the model is called."""
    if path == "pk":
        return instance.pk
    parts = path.split("__")
    for part in parts[:-1]:
        instance = getattr(instance, part)
        if instance is None:
            return None
    last = parts[-1]
    try:
        field = instance._meta.get_field(last)
    except FieldDoesNotExist:
        value = getattr(instance, last)
        return value() if callable(value) else value
    if field.is_relation and field.concrete and not field.many_to_many:
        return getattr(instance, field.attname)
    return getattr(instance, last)
