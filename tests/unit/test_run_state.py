"""Property tests of the run state machine: any walk through the table keeps its invariants."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from assistantd.runs import state


def _run() -> dict[str, Any]:
    return {
        "status": "queued",
        "required_action": None,
        "expires_at": 600,
        "started_at": None,
        "cancelled_at": None,
        "failed_at": None,
        "completed_at": None,
    }


@given(st.lists(st.sampled_from(sorted(state.TRANSITIONS)), max_size=30))
def test_random_walks_keep_invariants(targets: list[str]) -> None:
    run = _run()
    stamped: dict[str, int] = {}
    for now, target in enumerate(targets, start=1):
        before = run["status"]
        if not state.can_transition(before, target):
            try:
                state.transition(run, target, now)
            except state.IllegalTransition:
                continue
            raise AssertionError(f"{before} -> {target} should be refused")
        if target == "requires_action":
            run = state.transition(run, target, now)
            run["required_action"] = {"type": "submit_tool_outputs"}
        else:
            run = state.transition(run, target, now)
        # terminal states absorb
        if before in state.TERMINAL:
            raise AssertionError("left a terminal state")
        # required_action non-null iff requires_action
        assert (run["required_action"] is not None) == (run["status"] == "requires_action")
        if run["status"] in state.TERMINAL:
            assert run["expires_at"] is None
        # terminal stamps are set once and never change
        for key in ("cancelled_at", "failed_at", "completed_at"):
            if key in stamped:
                assert run[key] == stamped[key]
            elif run[key] is not None:
                stamped[key] = run[key]


def test_terminal_states_have_no_exits() -> None:
    for status in state.TERMINAL:
        assert state.TRANSITIONS[status] == frozenset()
    assert set(state.TRANSITIONS) == state.ACTIVE | state.TERMINAL
