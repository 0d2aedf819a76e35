"""The run state machine as a table: the one place to read which transitions exist.

Pure and free of I/O, so services, the worker and the property tests all ask the same thing.
"""

from __future__ import annotations

from typing import Any, Final, Literal

RunStatus = Literal[
    "queued",
    "in_progress",
    "requires_action",
    "cancelling",
    "cancelled",
    "failed",
    "completed",
    "incomplete",
    "expired",
]

ACTIVE: Final = frozenset({"queued", "in_progress", "requires_action", "cancelling"})
TERMINAL: Final = frozenset({"cancelled", "failed", "completed", "incomplete", "expired"})
CANCELLABLE: Final = frozenset({"queued", "in_progress", "requires_action"})

TRANSITIONS: Final[dict[str, frozenset[str]]] = {
    "queued": frozenset({"in_progress", "cancelling", "cancelled", "failed", "expired"}),
    "in_progress": frozenset(
        {"requires_action", "completed", "incomplete", "failed", "cancelling", "expired"}
    ),
    "requires_action": frozenset({"queued", "cancelling", "expired", "failed"}),
    # Cancellation is attempted, not guaranteed: the model may finish first.
    "cancelling": frozenset({"cancelled", "completed", "failed", "incomplete", "expired"}),
    "cancelled": frozenset(),
    "failed": frozenset(),
    "completed": frozenset(),
    "incomplete": frozenset(),
    "expired": frozenset(),
}

# The timestamp each terminal (or starting) state stamps, once.
STAMPS: Final[dict[str, str]] = {
    "in_progress": "started_at",
    "cancelled": "cancelled_at",
    "failed": "failed_at",
    "completed": "completed_at",
}


class IllegalTransition(Exception):
    def __init__(self, current: str, target: str) -> None:
        super().__init__(f"run cannot go from {current!r} to {target!r}")
        self.current = current
        self.target = target


def can_transition(current: str, target: str) -> bool:
    return target in TRANSITIONS.get(current, frozenset())


def transition(run: dict[str, Any], target: str, now: int) -> dict[str, Any]:
    """Return a copy of ``run`` moved to ``target``, with the fields that state implies.

    ``started_at`` is re-stamped on every entry to ``in_progress`` (as OpenAI's continuation
    stream shows); terminal stamps are set once, since a terminal state is never left.
    """
    current = run["status"]
    if not can_transition(current, target):
        raise IllegalTransition(current, target)
    new = dict(run)
    new["status"] = target
    stamp = STAMPS.get(target)
    if stamp is not None:
        new[stamp] = now
    if target != "requires_action":
        new["required_action"] = None
    if target in TERMINAL:
        new["expires_at"] = None
    return new
