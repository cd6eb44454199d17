"""The call-time grant check over HTTP: POST /api/v1/grants/check/ through gunicorn on loopback, on PostgreSQL.

1,000 agents x 5 tools with grants in every status; a gateway's read token; gunicorn as in production
(gunicorn.conf.py: gthread, BENCH_WEB_WORKERS workers x BENCH_WEB_THREADS threads). Clients are separate processes
on kept-alive connections, each asking about random (agent, tool, capability) triples: p50/p95/p99 and
requests per second for 1 and for 8 concurrent clients. Floor: p95 <= 5 ms at 8 clients.

Two kinds of client, each run at 1 and 8 clients, because the clients share the machine's cores with the server and
their own CPU per check adds to the latency they measure:
- "gateway": what sits in the check's path in production (agentgateway, Envoy: compiled HTTP/1.1 clients). It
  writes the request's bytes and reads the status line, the Content-Length and the body itself, then decodes and
  checks the JSON answer: 0.07-0.14 ms of CPU per check.
- "http.client": Python's standard client, as a Python agent would ask; it parses every header through the email
  package: 0.17-0.33 ms of CPU per check, up to two thirds of the server's.

Run: `PORTAL_MODE=test .venv/bin/python -m bench.grant_check` (throwaway PostgreSQL unless BENCH_DATABASE_URL).
BENCH_SECONDS (per run), BENCH_WEB_WORKERS, BENCH_WEB_THREADS adjust it; BENCH_CLIENTS=gateway (or http.client)
runs one kind only.
"""

from __future__ import annotations

import http.client
import json
import multiprocessing
import os
import random
import socket
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench.services import HostSteal, cpu_seconds, percentile, postgres, setup_django

AGENTS = int(os.environ.get("BENCH_AGENTS", "1000"))
TOOLS_PER_AGENT = 5
SECONDS = float(os.environ.get("BENCH_SECONDS", "10"))
WORKING_AGENTS = int(os.environ.get("BENCH_WORKING_AGENTS", "60"))
WORKERS = int(os.environ.get("BENCH_WEB_WORKERS", "2"))  # gunicorn.conf.py's production defaults
THREADS = int(os.environ.get("BENCH_WEB_THREADS", "2"))
CLIENT_KINDS = [kind for kind in os.environ.get("BENCH_CLIENTS", "gateway,http.client").split(",") if kind]
CAPABILITIES = ["read_item", "list_items", "write_item"]
STATUSES = ["approved", "approved", "approved", "revoked", "requested"]


def _seed() -> str:
    """The catalog, its grants and a read token; returns the token."""
    from datetime import timedelta

    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from catalog import services as catalog
    from catalog.bulk import insert_instances
    from catalog.models import Agent, Capability, Tool, ToolGrant
    from catalog.teams import team_create
    from portal.tokens import token_issue

    existing = get_user_model().objects.filter(username="bench-gateway").first()
    if existing is not None:  # a BENCH_DATABASE_URL seeded by an earlier run
        print(f"reusing the seeded catalog: {ToolGrant.objects.count()} grants", flush=True)
        return token_issue(issued_by=existing, name="gateway", scopes=["read"], expires_in_days=1).secret
    owner = get_user_model().objects.create_user("bench-gateway", password="x" * 16)
    team = team_create(name="bench")
    template_agent = catalog.agent_create(
        actor=None, data={"name": "bench-agent-0", "owner": team.name, "autonomy_level": 2, "data_class": "internal"}
    )
    template_tool = catalog.tool_create(
        actor=None,
        data={"name": "bench-tool-0", "owner": team.name, "kind": "mcp_server", "transport": "streamable_http",
              "endpoint_url": "https://mcp.example.com/mcp", "data_class": "internal", "reach": "closed",
              "credential_scope": "delegated", "capabilities": [{"name": name} for name in CAPABILITIES]},
    )  # fmt: skip
    agents = [template_agent]
    for i in range(1, AGENTS):
        clone = Agent.objects.get(pk=template_agent.pk)
        clone.pk, clone.id, clone.name = None, None, f"bench-agent-{i}"
        agents.append(clone)
    insert_instances(Agent, agents[1:])
    tools = [template_tool]
    for i in range(1, TOOLS_PER_AGENT * 4):
        clone = Tool.objects.get(pk=template_tool.pk)
        clone.pk, clone.id, clone.name = None, None, f"bench-tool-{i}"
        tools.append(clone)
    insert_instances(Tool, tools[1:])
    insert_instances(Capability, [Capability(tool=t, name=name) for t in tools[1:] for name in CAPABILITIES])
    agents = list(Agent.objects.order_by("pk"))
    tools = list(Tool.objects.order_by("pk"))
    now = timezone.now()
    rng = random.Random(7)
    grants = []
    for agent in agents:
        for tool in rng.sample(tools, TOOLS_PER_AGENT):
            status = rng.choice(STATUSES)
            grants.append(
                ToolGrant(agent=agent, tool=tool, environment="production", status=status,
                          capability_names=rng.sample(CAPABILITIES, 2),
                          expires_at=now + timedelta(days=rng.choice([-1, 30, 90])))
            )  # fmt: skip
    insert_instances(ToolGrant, grants)
    print(f"seeded {len(agents)} agents, {len(tools)} tools, {len(grants)} grants", flush=True)
    return token_issue(issued_by=owner, name="gateway", scopes=["read"], expires_in_days=1).secret


def _working_set() -> list[tuple[str, str]]:
    """What a gateway asks about: the granted pairs of WORKING_AGENTS agents (every status), as many pairs without a
    grant, and a few unknown agents."""
    from catalog.models import ToolGrant

    granted = list(
        ToolGrant.objects.filter(agent__name__in=[f"bench-agent-{i}" for i in range(WORKING_AGENTS)])
        .values_list("agent__name", "tool__name")
        .order_by("agent__name", "tool__name")
    )
    rng = random.Random(11)
    ungranted = [(f"bench-agent-{rng.randrange(WORKING_AGENTS)}", f"bench-tool-{rng.randrange(TOOLS_PER_AGENT * 4)}")
                 for _ in range(WORKING_AGENTS)]  # fmt: skip
    unknown = [(f"ghost-agent-{i}", "bench-tool-0") for i in range(WORKING_AGENTS // 10)]
    return granted + [pair for pair in ungranted if pair not in granted] + unknown


class GatewayConnection:
    """A kept-alive HTTP/1.1 connection that does what a gateway's compiled client does per check: write the request,
    read the status line, the Content-Length and that many bytes of body. Nothing else of HTTP is needed here: the
    portal answers every check with a Content-Length."""

    def __init__(self, port: int, token: str) -> None:
        self.port = port
        self.head = (
            f"POST /api/v1/grants/check/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n"
            "Content-Type: application/json\r\n"
        ).encode()
        self.sock: socket.socket | None = None
        self.buffer = b""

    def ask(self, body: bytes) -> tuple[int, bytes]:
        try:
            return self._ask(body)
        except (ConnectionError, EOFError):  # a recycled worker closed the kept-alive socket
            self.close()
            return self._ask(body)

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
        self.sock, self.buffer = None, b""

    def _ask(self, body: bytes) -> tuple[int, bytes]:
        if self.sock is None:
            self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=30)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.sendall(self.head + b"Content-Length: %d\r\n\r\n" % len(body) + body)
        while b"\r\n\r\n" not in self.buffer:
            self._read()
        header, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        status_line, *fields = header.split(b"\r\n")
        lengths = [
            int(value) for name, _, value in (f.partition(b":") for f in fields) if name.lower() == b"content-length"
        ]
        if not lengths:
            raise SystemExit(f"the check answered without a Content-Length: {header[:300]!r}")
        while len(self.buffer) < lengths[0]:
            self._read()
        payload, self.buffer = self.buffer[: lengths[0]], self.buffer[lengths[0] :]
        return int(status_line.split()[1]), payload

    def _read(self) -> None:
        assert self.sock is not None
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError
        self.buffer += chunk


class PythonConnection:
    """Python's http.client on a kept-alive connection."""

    def __init__(self, port: int, token: str) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def ask(self, body: bytes) -> tuple[int, bytes]:
        try:
            self.connection.request("POST", "/api/v1/grants/check/", body=body, headers=self.headers)
            response = self.connection.getresponse()
        except (ConnectionError, http.client.RemoteDisconnected):  # a recycled worker closed the kept-alive socket
            self.connection.close()
            self.connection.request("POST", "/api/v1/grants/check/", body=body, headers=self.headers)
            response = self.connection.getresponse()
        return response.status, response.read()


CONNECTIONS = {"gateway": GatewayConnection, "http.client": PythonConnection}


def _client(
    kind: str, port: int, token: str, pairs: list[tuple[str, str]], seconds: float, seed: int, out: Any
) -> None:
    """Ask about random pairs for `seconds`; with 0 seconds, about every pair once, in a shuffled order (warm-up)."""
    rng = random.Random(seed)
    connection = CONNECTIONS[kind](port, token)
    order = rng.sample(pairs, len(pairs))
    samples: list[float] = []
    allowed = 0
    deadline = time.perf_counter() + seconds
    while (time.perf_counter() < deadline) if seconds else order:
        agent, tool = order.pop() if not seconds else rng.choice(pairs)
        body = json.dumps({"agent": agent, "tool": tool, "capability": rng.choice(CAPABILITIES)}).encode()
        started = time.perf_counter()
        status, payload = connection.ask(body)
        samples.append((time.perf_counter() - started) * 1000)
        if status != 200:
            raise SystemExit(f"the check answered {status}: {payload[:300]!r}")
        allowed += json.loads(payload)["allowed"]
    out.put((samples, allowed))


def _run(
    kind: str,
    port: int,
    token: str,
    pairs: list[tuple[str, str]],
    clients: int,
    groups: dict[str, str],
    seconds: float,
) -> None:
    queue: multiprocessing.Queue[Any] = multiprocessing.Queue()
    steal = HostSteal()
    cpu_before = cpu_seconds(groups)
    started = time.perf_counter()
    processes = [
        multiprocessing.Process(target=_client, args=(kind, port, token, pairs, seconds, seed, queue))
        for seed in range(clients)
    ]
    for process in processes:
        process.start()
    results = [queue.get() for _ in processes]
    for process in processes:
        process.join()
    elapsed = time.perf_counter() - started
    cpu_used = {group: spent - cpu_before[group] for group, spent in cpu_seconds(groups).items()}
    samples = [sample for batch, _ in results for sample in batch]
    allowed = sum(count for _, count in results)
    p95 = percentile(samples, 0.95)
    verdict = "" if clients != 8 or not seconds else f"  (floor p95 5 ms: {'OK' if p95 <= 5 else 'BELOW FLOOR'})"
    print(
        f"{'warm-up, ' if not seconds else ''}{clients} {kind} client(s): {len(samples)} checks ({allowed} allowed) -> {len(samples) / elapsed:.0f} requests/s; "
        f"p50 {statistics.median(samples):.2f} ms  p95 {p95:.2f} ms  p99 {percentile(samples, 0.99):.2f} ms"
        f"{verdict}{steal.text()}",
        flush=True,
    )
    per_check = {group: spent * 1000 / len(samples) for group, spent in cpu_used.items()}
    server = per_check["gunicorn"] + per_check["PostgreSQL"]
    print(
        "    CPU per check: "
        + ", ".join(f"{group} {spent:.2f} ms" for group, spent in per_check.items())
        + f"; the server side ({server:.2f} ms) allows at most {(os.cpu_count() or 1) * 1000 / server:.0f} checks/s "
        "on this machine's cores if it did nothing else",
        flush=True,
    )


def _postgres_marker(database_url: str) -> str:
    """A throwaway server is all ours (its postmaster's tree); on a shared one only the bench database's backends."""
    parts = urlsplit(database_url)
    return f" {parts.path.lstrip('/')} " if os.environ.get("BENCH_DATABASE_URL") else f"-p {parts.port} "


def main() -> None:
    with postgres() as database_url:
        setup_django(database_url)
        from django.core.management import call_command

        from agents_api.testing import PortalServer

        call_command("migrate", verbosity=0)
        token = _seed()
        var_dir = Path(tempfile.mkdtemp(prefix="bench-grant-check-"))
        with PortalServer(database_url=database_url, var_dir=var_dir, workers=WORKERS, threads=THREADS) as server:
            print(f"gunicorn: {WORKERS} workers x {THREADS} threads (gthread) on 127.0.0.1:{server.port}", flush=True)
            groups = {
                "gunicorn": f"127.0.0.1:{server.port}",
                "clients": "self",
                "PostgreSQL": _postgres_marker(database_url),
            }
            pairs = _working_set()
            print(f"working set: {len(pairs)} (agent, tool) pairs", flush=True)
            # Every client asks about every pair once: each worker's index holds the working set afterwards.
            _run(CLIENT_KINDS[0], server.port, token, pairs, clients=8, groups=groups, seconds=0)
            for kind in CLIENT_KINDS:
                for clients in (1, 8):
                    _run(kind, server.port, token, pairs, clients=clients, groups=groups, seconds=SECONDS)


if __name__ == "__main__":
    main()
