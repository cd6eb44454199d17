"""Command line entry point: ``python -m <package> "your request"`` runs the agent once."""

from __future__ import annotations

import argparse
import sys

from .agent import Agent
from .approval import console_approver, deny_all
from .telemetry import configure_console_tracing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run this agent once on a prompt.")
    parser.add_argument("prompt", help="What you want the agent to do.")
    arguments = parser.parse_args(argv)

    configure_console_tracing()
    agent = Agent.from_environment()
    if agent.descriptor.requires_approval:
        # Ask a human at a terminal; refuse every tool call when nobody is there to ask.
        agent.approver = console_approver if sys.stdin.isatty() else deny_all
    result = agent.run(arguments.prompt)
    print(result.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
