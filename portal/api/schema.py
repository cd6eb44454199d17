"""The OpenAPI schema says every status an operation can answer: besides what each view declares, the errors any
request can meet (bad input or query parameters, credentials, scope, a missing object or page, the rate limit)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse

from portal.api.serializers import ErrorSerializer

GENERIC_ERRORS = {
    "400": "Invalid input: a body field or a query parameter (unknown parameters included); `fields` names each.",
    "401": "No credentials, or a token that is malformed, unknown, expired or revoked.",
    "403": "Not allowed: your role, or the token's scope.",
    "404": "No such object, or no such page of a list.",
    "429": "Too many requests; retry after the `Retry-After` seconds.",
}


class PortalAutoSchema(AutoSchema):
    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        responses: dict[str, Any] = super()._get_response_bodies(direction)
        for code, description in GENERIC_ERRORS.items():
            if code not in responses:
                responses[code] = self._get_response_for_code(
                    OpenApiResponse(ErrorSerializer, description=description), code, direction=direction
                )
        return responses
