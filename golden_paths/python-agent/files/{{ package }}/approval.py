"""Human-in-the-loop approval of tool calls.

When the descriptor says ``agentportal.io/human-in-loop: per_action`` every tool call needs a
human's yes, on top of the portal's grant check. Unattended, calls are refused.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

Approver = Callable[[str, dict[str, Any]], bool]


def deny_all(capability: str, arguments: dict[str, Any]) -> bool:
    return False


def approve_all(capability: str, arguments: dict[str, Any]) -> bool:
    return True


def console_approver(capability: str, arguments: dict[str, Any]) -> bool:  # pragma: no cover
    answer = input(f"Allow tool {capability} with {json.dumps(arguments)}? [y/N] ")
    return answer.strip().lower() in ("y", "yes")
