"""A cheap yes from `Model.full_clean`, for imports that validate thousands of entities.

`clean_check(model, exclude).passes(obj)` checks an object carrying the model's attnames (an instance, or the
plain rows bulk imports build). It answers True only when
``full_clean(exclude=exclude, validate_unique=False, validate_constraints=False)`` would pass and leave every value
as it is; whatever it is unsure of answers False. Callers then run the real full_clean, so the messages people see
are always Django's own. Field by field it applies Django's rules (blank, null, choices, validators) to values of
the exact type the field stores, which is what parsed descriptors hold; any other type, or a field kind it does
not know, is "unsure".
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable, Iterable
from functools import cache
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import MaxLengthValidator, ProhibitNullCharactersValidator
from django.db import models

_TYPES: dict[str, type] = {
    **dict.fromkeys(("CharField", "TextField", "URLField", "EmailField", "SlugField"), str),
    **dict.fromkeys(
        (
            "IntegerField",
            "SmallIntegerField",
            "BigIntegerField",
            "PositiveIntegerField",
            "PositiveSmallIntegerField",
            "PositiveBigIntegerField",
        ),
        int,
    ),
    "BooleanField": bool,
}


def _validator_passes(validator: Any) -> Callable[[Any], bool]:
    if type(validator) is MaxLengthValidator and not callable(validator.limit_value):
        limit = validator.limit_value
        return lambda value: len(value) <= limit
    if type(validator) is ProhibitNullCharactersValidator:
        return lambda value: "\x00" not in str(value)

    def passes(value: Any) -> bool:
        try:
            validator(value)
        except ValidationError:
            return False
        return True

    return passes


def _field_passes(field: models.Field) -> Callable[[Any], bool]:  # type: ignore[type-arg]
    """Field.clean(value) would return the value unchanged and raise nothing (see Model.clean_fields)."""
    empty = field.empty_values
    blank = field.blank
    internal = field.get_internal_type()
    exact_type = _TYPES.get(internal)
    is_json = internal == "JSONField"
    is_datetime = internal == "DateTimeField"
    # Django's own field classes only: a subclass may clean values differently.
    known = type(field).__module__.startswith("django.db.models.fields") and not (is_json and field.choices)
    if not known or (exact_type is None and not is_json and not is_datetime):
        return lambda value: blank and value in empty  # clean_fields skips these; anything else is unsure
    choices = frozenset(key for key, _ in field.flatchoices) if field.choices is not None else None
    editable = field.editable
    validators = [_validator_passes(validator) for validator in field.validators]
    encoder = getattr(field, "encoder", None)

    def passes(value: Any) -> bool:
        if blank and value in empty:
            return True
        if value is None:  # not blank: Field.validate refuses it
            return False
        if exact_type is str:
            if not isinstance(value, str):  # CharField.to_python keeps any str (a TextChoices member too)
                return False
        elif exact_type is not None:
            if type(value) is not exact_type:  # to_python would convert it (or refuse it)
                return False
        elif is_datetime:
            if not isinstance(value, datetime.datetime):
                return False
        else:
            if type(value) not in (dict, list, str, int, float, bool):
                return False
            try:
                json.dumps(value, cls=encoder)
            except (TypeError, ValueError):
                return False
        is_empty = value in empty
        if editable:
            if choices is not None and not is_empty and value not in choices:
                return False
            if not blank and is_empty:
                return False
        return is_empty or all(check(value) for check in validators)

    return passes


class CleanCheck:
    """The per-field checks of one model, minus the excluded fields (by name, as full_clean takes them)."""

    def __init__(self, model: type[models.Model], exclude: frozenset[str]) -> None:
        # A model-level clean() may say anything: then nothing passes here.
        self.model_clean_is_default = model.clean is models.Model.clean
        self.checks = {
            field.attname: _field_passes(field)
            for field in model._meta.fields
            if field.name not in exclude and not field.generated
        }

    def passes(self, instance: Any, attnames: Iterable[str] | None = None) -> bool:
        """All checked fields (or those of `attnames` that are checked) would pass full_clean unchanged."""
        if not self.model_clean_is_default:
            return False
        checks = self.checks
        if attnames is None:
            return all(check(getattr(instance, name)) for name, check in checks.items())
        return all(checks[name](getattr(instance, name)) for name in attnames if name in checks)


@cache
def clean_check(model: type[models.Model], exclude: frozenset[str]) -> CleanCheck:
    return CleanCheck(model, exclude)
