"""Command line entry point: run the agent once on a prompt (`python -m <package> "..."`)."""

from __future__ import annotations

import argparse
import asyncio
import sys

from .agent import run
from .approval import console_approver, deny_all
from .descriptor import load_descriptor
from .telemetry import configure_tracing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run this agent once on a prompt.")
    parser.add_argument("prompt", help="What you want the agent to do.")
    arguments = parser.parse_args(argv)

    descriptor = load_descriptor()
    provider = configure_tracing(descriptor.name)
    approver = None
    if descriptor.requires_approval:
        # Ask a human at a terminal; refuse every tool call when nobody is there to ask.
        approver = console_approver if sys.stdin.isatty() else deny_all
    try:
        result = asyncio.run(run(arguments.prompt, descriptor=descriptor, approver=approver))
    finally:
        if provider is not None:
            provider.shutdown()  # flush the spans
    for call in result.calls:
        verdict = "allowed" if call.allowed else f"refused ({call.reason})"
        print(f"tool {call.tool}/{call.capability}: {verdict}", file=sys.stderr)
    print(result.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
