"""Nested items: validated whole on the way in, rendered defensively on the way out.

DRF skips the required fields (and defaults) of nested serializers when the request is a PATCH, so an item such as
a skill without its `id` would pass and be stored. Items are replaced whole, so each is validated whole, whatever
the method.

Stored JSON can still be malformed (written around the API, by an older release, or by hand in the database). One
such value must not make a list, a page or the export fail for everyone: a malformed item is left out and logged,
a malformed list or mapping renders empty, and the rest of the row renders as usual."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, cast

from django.db.models import Manager, QuerySet
from rest_framework import serializers

logger = logging.getLogger("catalog.api")

# What rendering a malformed item raises: a missing key, a value of the wrong type, a text that is not a number.
MALFORMED = (KeyError, TypeError, AttributeError, ValueError)


def left_out(what: str, why: str, value: Any) -> None:
    logger.warning("catalog API: left out malformed stored %s (%s): %.200r", what, why, value)


class StoredItemsSerializer(serializers.ListSerializer):
    """Renders item by item; an item that does not have the declared shape is left out and logged."""

    def to_representation(self, data: Any) -> list[Any]:
        items = data.all() if isinstance(data, Manager) else data
        if not isinstance(items, (list, tuple, QuerySet)):
            left_out(self.field_name or "list", "not a list", items)
            return []
        child = cast(serializers.Field, self.child)  # typed optional; ListSerializer.__init__ asserts one
        rendered = []
        for index, item in enumerate(items):
            if item is None:
                left_out(f"{self.field_name}[{index}]", "empty item", item)
                continue
            try:
                rendered.append(child.to_representation(item))
            except MALFORMED as exc:
                left_out(f"{self.field_name}[{index}]", f"{type(exc).__name__}: {exc}", item)
        return rendered


class WholeItemSerializer(serializers.Serializer):
    """A nested item: validated with every required field and default, on PATCH too; rendered defensively."""

    class Meta:
        list_serializer_class = StoredItemsSerializer

    def to_internal_value(self, data: Any) -> Any:
        if self.root is not self and getattr(self.root, "partial", False):
            whole = type(self)(data=data, context=self.context)
            whole.is_valid(raise_exception=True)
            return whole.validated_data
        return super().to_internal_value(data)

    def to_representation(self, instance: Any) -> Any:
        if isinstance(instance, (str, bytes, int, float, list)):
            raise TypeError(f"expected an object, got {type(instance).__name__}")
        return super().to_representation(instance)


class StringListField(serializers.ListField):
    """A stored list of strings; anything else renders as an empty list, items that are not text are left out."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("child", serializers.CharField())
        super().__init__(**kwargs)

    def to_representation(self, data: Any) -> list[str]:
        if not isinstance(data, (list, tuple)):
            left_out(self.field_name or "list", "not a list", data)
            return []
        kept = [item for item in data if isinstance(item, str)]
        if len(kept) != len(data):
            left_out(self.field_name or "list", "items that are not text", data)
        return kept


class StringMapField(serializers.DictField):
    """A stored mapping; anything else renders as an empty object."""

    def to_representation(self, value: Any) -> dict[str, Any]:
        if not isinstance(value, Mapping):
            left_out(self.field_name or "mapping", "not an object", value)
            return {}
        return {str(key): item for key, item in value.items()}


class ObjectListField(serializers.ListField):
    """A stored list of objects (MCP registry packages, remotes); items that are not objects are left out."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("child", serializers.DictField())
        super().__init__(**kwargs)

    def to_representation(self, data: Any) -> list[dict[str, Any]]:
        if not isinstance(data, (list, tuple)):
            left_out(self.field_name or "list", "not a list", data)
            return []
        kept = [{str(key): value for key, value in item.items()} for item in data if isinstance(item, Mapping)]
        if len(kept) != len(data):
            left_out(self.field_name or "list", "items that are not objects", data)
        return kept
