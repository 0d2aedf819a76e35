"""Constructors for the objects a run writes: steps and usage blocks."""

from __future__ import annotations

from assistantd import clock, ids
from assistantd.storage.objects import JSONObject


def usage_of(prompt: int, completion: int) -> JSONObject:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def new_step(run: JSONObject, details: JSONObject) -> JSONObject:
    return {
        "id": ids.new_id(ids.STEP),
        "object": "thread.run.step",
        "created_at": clock.now(),
        "run_id": run["id"],
        "assistant_id": run["assistant_id"],
        "thread_id": run["thread_id"],
        "type": details["type"],
        "status": "in_progress",
        "cancelled_at": None,
        "completed_at": None,
        "expired_at": None,
        "failed_at": None,
        "last_error": None,
        "step_details": details,
        "usage": None,
        "metadata": {},
    }
