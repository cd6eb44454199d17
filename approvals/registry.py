"""An MCP registry over the catalog: the read API of the official registry's OpenAPI spec (`/v0.1`), serving
only MCP servers that passed approval (`Tool.kind == mcp_server`, `Tool.status == approved`). Coding assistants
and downstream registries pointed at it can install nothing else.

    GET /v0.1/servers?search=&cursor=&limit=&updated_since=&version=
    GET /v0.1/servers/{serverName}/versions/{version}      (serverName URL-encoded; version may be `latest`)
    GET /v0.1/servers/{serverName}/versions

Each server is one version (the catalog keeps the current one), so every entry is `isLatest`. Names are
`Tool.registry_name`, or `<namespace>/<catalog name>` for tools that have none; the namespace is the setting
`MCP_REGISTRY_NAMESPACE`, else the reversed host of `SITE_URL` (`portal.example.com` -> `com.example.portal`).
Pages are keyset pages on (updated_at, id), so a cursor stays valid while servers change; `updated_since` is
inclusive, so an incremental sync that passes its last `updatedAt` misses nothing.

Anonymous reads are allowed unless `MCP_REGISTRY_PUBLIC` is false; then a token with the `read` scope (or a
session) is required.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db.models import CharField, Q, QuerySet, Value
from django.db.models.functions import Coalesce, Concat, NullIf
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, permissions, serializers
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from catalog.api.serializers import ErrorSerializer, NamedChoiceField
from catalog.formats.mcp_registry import (
    CURRENT_SCHEMA_URL,
    MCP_TYPE_BY_TRANSPORT,
    OFFICIAL_META_KEY,
    normalize_remote_type,
)
from catalog.models import Lifecycle, Tool
from portal.authentication import TokenScopePermission

CATALOG_META_KEY = "io.agentportal/catalog"
DEFAULT_LIMIT = 30
MAX_LIMIT = 100
MAX_DESCRIPTION = 100
MAX_TITLE = 100
FALLBACK_NAMESPACE = "local.agent-portal"
UNVERSIONED = "unversioned"
REMOTE_TYPES = ("streamable-http", "sse")
_URL = re.compile(r"^https?://\S+$")
_WHITESPACE = re.compile(r"\s+")


# --- settings -----------------------------------------------------------------------------------------------


def registry_is_public() -> bool:
    return bool(getattr(settings, "MCP_REGISTRY_PUBLIC", True))


def registry_namespace() -> str:
    configured = str(getattr(settings, "MCP_REGISTRY_NAMESPACE", "") or "").strip()
    if configured:
        return configured
    host = (urlsplit(settings.SITE_URL).hostname or "").lower()
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if "." in host and re.fullmatch(r"[a-z0-9.-]+", host):
            return ".".join(reversed(host.split(".")))
    return FALLBACK_NAMESPACE


# --- server.json --------------------------------------------------------------------------------------------


def server_name(tool: Tool) -> str:
    return tool.registry_name or f"{registry_namespace()}/{tool.name}"


def server_version(tool: Tool) -> str:
    return tool.version or UNVERSIONED


def _clip(text: str, limit: int) -> str:
    flat = _WHITESPACE.sub(" ", text).strip()
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def _description(tool: Tool) -> str:
    """The first paragraph of the Markdown description, on one line, within the schema's 100 characters."""
    first = tool.description.strip().split("\n\n", 1)[0]
    return _clip(first, MAX_DESCRIPTION) or _clip(tool.title, MAX_DESCRIPTION) or tool.name


def _repository_source(url: str) -> str:
    parts = (urlsplit(url).hostname or "").split(".")
    return parts[-2] if len(parts) >= 2 else parts[0] or "git"


def _mcp_type(value: Any) -> str | None:
    """Our transport enum or MCP vocabulary -> MCP vocabulary (plain `http` is served as streamable HTTP)."""
    if not isinstance(value, str) or not value:
        return None
    kind = normalize_remote_type(MCP_TYPE_BY_TRANSPORT.get(value, value))
    return "streamable-http" if kind == "http" else kind


def _text(mapping: Mapping[str, Any], *keys: str) -> str | None:
    for key in keys:
        value = mapping.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def _package(tool: Tool, package: Any) -> dict[str, Any] | None:
    """A stored package as a server.json package; None when it lacks what the schema requires."""
    if not isinstance(package, Mapping):
        return None
    registry_type = _text(package, "registryType", "registry_type")
    identifier = _text(package, "identifier")
    if registry_type is None or identifier is None:
        return None
    entry: dict[str, Any] = {"registryType": registry_type, "identifier": identifier}
    version = _text(package, "version")
    if version:
        entry["version"] = version
    runtime_hint = _text(package, "runtimeHint", "runtime_hint")
    if runtime_hint:
        entry["runtimeHint"] = runtime_hint
    raw_transport = package.get("transport")
    kind = _mcp_type(raw_transport.get("type") if isinstance(raw_transport, Mapping) else raw_transport)
    url = (_text(raw_transport, "url") if isinstance(raw_transport, Mapping) else None) or tool.endpoint_url
    if kind in REMOTE_TYPES and url:
        entry["transport"] = {"type": kind, "url": url}
    else:
        entry["transport"] = {"type": "stdio"}
    return entry


def _remotes(tool: Tool) -> list[dict[str, Any]]:
    secrets = set(tool.secret_names or [])
    remotes = []
    for remote in tool.remotes or []:
        if not isinstance(remote, Mapping):
            continue
        kind, url = _mcp_type(remote.get("type")), _text(remote, "url")
        if kind not in REMOTE_TYPES or url is None or not _URL.match(url):
            continue
        entry: dict[str, Any] = {"type": kind, "url": url}
        headers = [name for name in remote.get("headers") or [] if isinstance(name, str) and name]
        if headers:
            entry["headers"] = [{"name": name, "isSecret": name in secrets} for name in headers]
        remotes.append(entry)
    transport = _mcp_type(tool.transport)
    if not remotes and transport in REMOTE_TYPES and tool.endpoint_url and _URL.match(tool.endpoint_url):
        remotes.append({"type": transport, "url": tool.endpoint_url})
    return remotes


def server_json(tool: Tool) -> dict[str, Any]:
    """The tool as a server.json of the current (camelCase) schema."""
    server: dict[str, Any] = {
        "$schema": CURRENT_SCHEMA_URL,
        "name": server_name(tool),
        "description": _description(tool),
        "version": server_version(tool),
    }
    if tool.title.strip():
        server["title"] = _clip(tool.title, MAX_TITLE)
    if tool.repository_url:
        server["repository"] = {"url": tool.repository_url, "source": _repository_source(tool.repository_url)}
    website = next(
        (
            link["url"]
            for link in tool.links or []
            if isinstance(link, Mapping) and link.get("title") == "Website" and _URL.match(str(link.get("url", "")))
        ),
        None,
    )
    if website:
        server["websiteUrl"] = website
    packages = [entry for entry in (_package(tool, package) for package in tool.packages or []) if entry]
    if packages:
        server["packages"] = packages
    remotes = _remotes(tool)
    if remotes:
        server["remotes"] = remotes
    return server


def server_entry(tool: Tool) -> dict[str, Any]:
    """One `ServerResponse`: the server.json and the registry's metadata about it."""
    return {
        "server": server_json(tool),
        "_meta": {
            OFFICIAL_META_KEY: {
                "status": "deprecated" if tool.lifecycle == Lifecycle.DEPRECATED else "active",
                "publishedAt": _rfc3339(tool.created_at),
                "updatedAt": _rfc3339(tool.updated_at),
                "isLatest": True,
            },
            CATALOG_META_KEY: {"name": tool.name, "owner": tool.owner.name, "riskTier": tool.risk_tier},
        },
    }


def _rfc3339(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


# --- reads --------------------------------------------------------------------------------------------------


def approved_servers() -> QuerySet[Tool]:
    """Approved MCP servers, each with the name it is served under (`served_name`)."""
    derived = Concat(Value(f"{registry_namespace()}/"), "name", output_field=CharField())
    return (
        Tool.objects.filter(kind=Tool.Kind.MCP_SERVER, status=Tool.Status.APPROVED)
        .select_related("owner")
        .annotate(served_name=Coalesce(NullIf("registry_name", Value("")), derived, output_field=CharField()))
    )


def server_find(*, name: str, version: str) -> Tool | None:
    prefix = f"{registry_namespace()}/"
    match = Q(registry_name=name)
    if name.startswith(prefix):
        match |= (Q(registry_name__isnull=True) | Q(registry_name="")) & Q(name=name.removeprefix(prefix))
    tool = approved_servers().filter(match).first()
    if tool is None or version not in ("latest", server_version(tool)):
        return None
    return tool


def cursor_encode(tool: Tool) -> str:
    raw = json.dumps([tool.updated_at.isoformat(), tool.pk], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def cursor_decode(cursor: str) -> tuple[datetime, int]:
    """Raises ValueError for anything this registry did not issue."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        updated_at, pk = json.loads(raw)
        moment = datetime.fromisoformat(updated_at)
    except (binascii.Error, UnicodeDecodeError, TypeError, ValueError) as exc:
        raise ValueError("not a cursor this registry issued") from exc
    if not isinstance(pk, int) or isinstance(pk, bool) or moment.tzinfo is None:
        raise ValueError("not a cursor this registry issued")
    return moment, pk


def server_page(
    *,
    search: str = "",
    cursor: tuple[datetime, int] | None = None,
    limit: int = DEFAULT_LIMIT,
    updated_since: datetime | None = None,
    version: str = "",
) -> tuple[list[Tool], str | None]:
    """One page of approved servers, oldest change first, and the cursor of the next page (None at the end)."""
    servers = approved_servers()
    if search:
        servers = servers.filter(served_name__icontains=search)  # type: ignore[misc]  # an annotation
    if updated_since is not None:
        servers = servers.filter(updated_at__gte=updated_since)
    if version and version != "latest":
        servers = servers.filter(version=version)
    if cursor is not None:
        after, pk = cursor
        servers = servers.filter(Q(updated_at__gt=after) | Q(updated_at=after, pk__gt=pk))
    rows = list(servers.order_by("updated_at", "pk")[: limit + 1])
    if len(rows) > limit:
        return rows[:limit], cursor_encode(rows[limit - 1])
    return rows, None


# --- API shapes (the spec's schemas, for the OpenAPI document) ----------------------------------------------


class RegistryQuerySerializer(serializers.Serializer):
    search = serializers.CharField(
        max_length=200, required=False, allow_blank=True, default="", help_text="Substring of the server name."
    )
    cursor = serializers.CharField(
        max_length=500,
        required=False,
        allow_blank=True,
        default="",
        help_text="Opaque: `metadata.nextCursor` of the previous page.",
    )
    limit = serializers.IntegerField(
        min_value=1, max_value=MAX_LIMIT, required=False, default=DEFAULT_LIMIT, help_text="Servers per page (1-100)."
    )
    updated_since = serializers.DateTimeField(
        required=False, allow_null=True, default=None, help_text="RFC 3339 time: only servers changed since then."
    )
    version = serializers.CharField(
        max_length=255,
        required=False,
        allow_blank=True,
        default="",
        help_text="`latest` (every server; the catalog keeps one version) or an exact version.",
    )

    def validate_cursor(self, value: str) -> tuple[datetime, int] | None:
        if not value:
            return None
        try:
            return cursor_decode(value)
        except ValueError:
            raise serializers.ValidationError(
                "is not a cursor this registry issued; pass `metadata.nextCursor` of the previous page as it is."
            ) from None


class RegistryRepositorySerializer(serializers.Serializer):
    url = serializers.URLField(help_text="Repository URL.")
    source = serializers.CharField(help_text="Hosting service, e.g. `github`.")  # type: ignore[assignment]


class RegistryHeaderSerializer(serializers.Serializer):
    name = serializers.CharField(help_text="Header name.")
    isSecret = serializers.BooleanField(help_text="The value is a secret the client must supply.")


class RegistryTransportSerializer(serializers.Serializer):
    type = NamedChoiceField(
        enum_name="RegistryTransportTypeEnum",
        choices=["stdio", *REMOTE_TYPES],
        help_text="stdio, streamable-http or sse.",
    )
    url = serializers.CharField(required=False, help_text="Endpoint for streamable-http and sse.")


class RegistryPackageSerializer(serializers.Serializer):
    registryType = serializers.CharField(help_text="npm, pypi, oci, nuget, mcpb, ...")
    identifier = serializers.CharField(help_text="Package name or download URL.")
    version = serializers.CharField(required=False, help_text="Exact package version.")
    runtimeHint = serializers.CharField(required=False, help_text="npx, uvx, docker, dnx, ...")
    transport = RegistryTransportSerializer(help_text="How a client talks to the started package.")


class RegistryRemoteSerializer(serializers.Serializer):
    type = NamedChoiceField(
        enum_name="RegistryRemoteTypeEnum", choices=list(REMOTE_TYPES), help_text="streamable-http or sse."
    )
    url = serializers.URLField(help_text="Endpoint URL.")
    headers = RegistryHeaderSerializer(many=True, required=False, help_text="Headers the client must send.")


class RegistryServerSerializer(serializers.Serializer):
    name = serializers.CharField(help_text="Reverse-DNS server name with one '/', e.g. `com.example/weather`.")
    description = serializers.CharField(help_text="What the server does (at most 100 characters).")
    title = serializers.CharField(required=False, help_text="Display name (at most 100 characters).")
    version = serializers.CharField(help_text="Version of the server as approved.")
    repository = RegistryRepositorySerializer(required=False, help_text="Source repository.")
    websiteUrl = serializers.URLField(required=False, help_text="Home page or documentation.")
    packages = RegistryPackageSerializer(many=True, required=False, help_text="Packages to run it locally.")
    remotes = RegistryRemoteSerializer(many=True, required=False, help_text="Hosted endpoints.")


RegistryServerSerializer._declared_fields["$schema"] = serializers.URLField(help_text="The server.json schema URL.")


class RegistryOfficialMetaSerializer(serializers.Serializer):
    status = NamedChoiceField(
        enum_name="RegistryServerStatusEnum", choices=["active", "deprecated"], help_text="active or deprecated."
    )
    publishedAt = serializers.DateTimeField(help_text="When the server entered the catalog.")
    updatedAt = serializers.DateTimeField(help_text="Last change of the server's entry.")
    isLatest = serializers.BooleanField(help_text="Always true: the catalog serves one version per server.")


class RegistryCatalogMetaSerializer(serializers.Serializer):
    name = serializers.CharField(help_text="Catalog name of the tool.")
    owner = serializers.CharField(help_text="Owning team.")
    riskTier = serializers.CharField(help_text="Risk tier: low, medium, high or critical.")


class RegistryEntryMetaSerializer(serializers.Serializer):
    pass


RegistryEntryMetaSerializer._declared_fields[OFFICIAL_META_KEY] = RegistryOfficialMetaSerializer(
    help_text="Registry-managed metadata."
)
RegistryEntryMetaSerializer._declared_fields[CATALOG_META_KEY] = RegistryCatalogMetaSerializer(
    help_text="Where the server sits in the Agent Portal catalog."
)


class RegistryEntrySerializer(serializers.Serializer):
    server = RegistryServerSerializer(help_text="The server.json.")


RegistryEntrySerializer._declared_fields["_meta"] = RegistryEntryMetaSerializer(help_text="Registry metadata.")


class RegistryListMetadataSerializer(serializers.Serializer):
    nextCursor = serializers.CharField(required=False, help_text="Cursor of the next page; absent on the last page.")
    count = serializers.IntegerField(help_text="Servers on this page.")


class RegistryListSerializer(serializers.Serializer):
    servers = RegistryEntrySerializer(many=True, help_text="Approved MCP servers.")
    metadata = RegistryListMetadataSerializer(help_text="Paging.")


# --- views --------------------------------------------------------------------------------------------------

REGISTRY_ERRORS = {
    400: OpenApiResponse(ErrorSerializer, description="A bad query parameter; `fields` names it."),
    401: OpenApiResponse(ErrorSerializer, description="A bad token, or none while the registry is not public."),
    403: OpenApiResponse(ErrorSerializer, description="The token lacks the `read` scope."),
}


class _RegistryView(APIView):
    def get_permissions(self) -> list[BasePermission]:
        if registry_is_public():
            return [permissions.AllowAny()]
        return [permissions.IsAuthenticated(), TokenScopePermission()]


class ServerListView(_RegistryView):
    @extend_schema(
        operation_id="mcp_registry_servers_list",
        tags=["mcp-registry"],
        summary="List approved MCP servers (MCP registry API)",
        description=(
            "Only MCP servers whose review approved them. Cursor pages (keyset on last change, then id): follow "
            "`metadata.nextCursor` until it is absent."
        ),
        parameters=[RegistryQuerySerializer],
        responses={200: RegistryListSerializer, **REGISTRY_ERRORS},
    )
    def get(self, request: Request) -> Response:
        query = RegistryQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        tools, next_cursor = server_page(
            search=params["search"],
            cursor=params["cursor"],
            limit=params["limit"],
            updated_since=params["updated_since"],
            version=params["version"],
        )
        metadata: dict[str, Any] = {"count": len(tools)}
        if next_cursor:
            metadata["nextCursor"] = next_cursor
        return Response({"servers": [server_entry(tool) for tool in tools], "metadata": metadata})


class ServerVersionsView(_RegistryView):
    @extend_schema(
        operation_id="mcp_registry_server_versions_list",
        tags=["mcp-registry"],
        summary="Every version of an approved MCP server (MCP registry API)",
        description="The catalog keeps one version per server, so the list has one entry; 404 when not approved.",
        parameters=[
            OpenApiParameter(
                "server_name",
                str,
                OpenApiParameter.PATH,
                description="URL-encoded server name, e.g. `com.example%2Fweather`.",
            ),
        ],
        responses={
            200: RegistryListSerializer,
            404: OpenApiResponse(ErrorSerializer, description="Not found or not approved."),
            **{code: REGISTRY_ERRORS[code] for code in (401, 403)},
        },
    )
    def get(self, request: Request, server_name: str) -> Response:
        tool = server_find(name=server_name, version="latest")
        if tool is None:
            raise exceptions.NotFound(f"No approved MCP server {server_name!r}.")
        return Response({"servers": [server_entry(tool)], "metadata": {"count": 1}})


class ServerVersionView(_RegistryView):
    @extend_schema(
        operation_id="mcp_registry_server_version_retrieve",
        tags=["mcp-registry"],
        summary="One approved MCP server version (MCP registry API)",
        description="404 when there is no such server, it is not approved, or it is not at that version.",
        parameters=[
            OpenApiParameter(
                "server_name",
                str,
                OpenApiParameter.PATH,
                description="URL-encoded server name, e.g. `com.example%2Fweather`.",
            ),
            OpenApiParameter("version", str, OpenApiParameter.PATH, description="An exact version, or `latest`."),
        ],
        responses={
            200: RegistryEntrySerializer,
            404: OpenApiResponse(ErrorSerializer, description="Not found or not approved."),
            **{code: REGISTRY_ERRORS[code] for code in (401, 403)},
        },
    )
    def get(self, request: Request, server_name: str, version: str) -> Response:
        tool = server_find(name=server_name, version=version)
        if tool is None:
            raise exceptions.NotFound(f"No approved MCP server {server_name!r} at version {version!r}.")
        return Response(server_entry(tool))
