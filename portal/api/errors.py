"""One JSON error shape for the whole API: {"error": {"status", "code", "message", "fields"}}."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from portal import errors


class ConflictError(exceptions.APIException):
    """The request lost a race or targets a state that no longer allows it."""

    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"
    default_detail = "The object changed meanwhile; reload and try again."


def _flatten(detail: Any) -> Any:
    if isinstance(detail, list):
        return [_flatten(item) for item in detail]
    if isinstance(detail, dict):
        return {key: _flatten(value) for key, value in detail.items()}
    return str(detail)


def error_body(status_code: int, code: str, message: str, fields: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"status": status_code, "code": code, "message": message, "fields": fields or {}}}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, ValidationError):
        exc = exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        )
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied(str(exc) or None)
    exc = _domain_exception(exc)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    assert isinstance(exc, exceptions.APIException)
    detail = exc.detail
    if isinstance(exc, exceptions.ValidationError):
        fields = _flatten(detail) if isinstance(detail, dict) else {"non_field_errors": _flatten(detail)}
        names = ", ".join(sorted(fields)) if isinstance(fields, dict) else ""
        message = f"Invalid input: {names}." if names else "Invalid input."
        response.data = error_body(response.status_code, "invalid", message, fields)
    else:
        codes = exc.get_codes()
        code = codes if isinstance(codes, str) else "error"
        response.data = error_body(response.status_code, code, str(detail))
    return response


def _domain_exception(exc: Exception) -> Exception:
    """Service errors of every app as API errors: bad input 400 naming the fields, not allowed 403, a lost race or
    an object that moved on 409. By base class (portal.errors), so portal imports no app."""
    if isinstance(exc, errors.InvalidInput):
        return exceptions.ValidationError(exc.errors)
    if isinstance(exc, errors.PermissionDenied):
        return exceptions.PermissionDenied(str(exc) or None)
    if isinstance(exc, errors.Conflict):
        return ConflictError(str(exc) or None)
    if isinstance(exc, errors.DomainError):
        error = exceptions.APIException(str(exc) or None)
        error.status_code = exc.status
        return error
    return exc
