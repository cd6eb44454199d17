"""Human-in-the-loop approval of tool calls.

When the descriptor says ``agentportal.io/human-in-loop: per_action`` every tool call needs an
approver's yes. The default approver refuses, so an unattended agent never acts on its own.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from .models import ToolCall

Approver = Callable[[ToolCall], bool]


def deny_all(call: ToolCall) -> bool:
    return False


def approve_all(call: ToolCall) -> bool:
    return True


def console_approver(
    call: ToolCall, ask: Callable[[str], str] = input
) -> bool:  # pragma: no cover - interactive
    answer = ask(f"Allow tool {call.name} with {json.dumps(call.arguments)}? [y/N] ")
    return answer.strip().lower() in ("y", "yes")
