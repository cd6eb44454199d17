"""Read descriptor inputs from files, folders and URLs (through the SSRF-safe client) for imports."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from catalog.formats import ParseResult, discover_agent_card, parse_document_bytes
from catalog.locations import DESCRIPTOR_SUFFIXES, MAX_FILE_BYTES, MAX_FILES, _descriptor_files
from portal.net import FetchError, SafeHttpClient


class SourceError(Exception):
    pass


def read_path(path: Path) -> list[tuple[str, bytes]]:
    if path.is_symlink():
        raise SourceError(f"{path}: symbolic links are not followed.")
    if path.is_dir():
        files = list(_descriptor_files(path))[:MAX_FILES]
    elif path.is_file():
        files = [path]
    else:
        raise SourceError(f"{path}: no such file or folder.")
    inputs = []
    for file in files:
        if file.stat().st_size > MAX_FILE_BYTES:
            raise SourceError(f"{file}: larger than {MAX_FILE_BYTES // (1024 * 1024)} MB.")
        inputs.append((str(file), file.read_bytes()))
    return inputs


def parse_url(url: str, *, client: SafeHttpClient | None = None) -> ParseResult:
    """A URL ending in .yaml/.yml/.json is fetched as a descriptor; any other URL is an A2A base URL whose
    agent card is discovered at /.well-known/agent-card.json, then /.well-known/agent.json."""
    client = client or SafeHttpClient()
    if urlsplit(url).path.endswith(DESCRIPTOR_SUFFIXES):
        response = client.get(url, max_bytes=MAX_FILE_BYTES)
        if response.status != 200:
            raise SourceError(f"{url} answered HTTP {response.status}.")
        return parse_document_bytes(response.content, source=url)

    def fetch(candidate: str) -> bytes | None:
        response = client.get(candidate, max_bytes=MAX_FILE_BYTES)
        if response.status == 404:
            return None
        if response.status != 200:
            raise SourceError(f"{candidate} answered HTTP {response.status}.")
        return response.content

    return discover_agent_card(url, fetch)


def parse_sources(sources: list[str], *, client: SafeHttpClient | None = None) -> list[ParseResult]:
    results: list[ParseResult] = []
    for source in sources:
        if source.startswith(("http://", "https://")) or "://" in source:
            try:
                results.append(parse_url(source, client=client))
            except FetchError as exc:
                raise SourceError(str(exc)) from exc
        else:
            results.extend(parse_document_bytes(content, source=name) for name, content in read_path(Path(source)))
    return results
