"""The fake model for the client programs: the scripted upstream of ``tests/upstream.py``, keyed
by the first line of the run's instructions instead of a ``script:<key>`` marker.

The programs under ``programs/`` are written the way users write them, with natural
instructions ("You are a weather bot. ..."), so they carry no test markers. A test scripts the
model's next answers for those instructions; without a script, the model echoes the last user
message (``echo: <text>``), which is still deterministic.
"""

from __future__ import annotations

from typing import Any

from tests.upstream import ScriptedUpstream


class InstructedModel(ScriptedUpstream):
    @staticmethod
    def _key(body: dict[str, Any]) -> str | None:
        for message in body.get("messages", []):
            content = message.get("content")
            if message.get("role") == "system" and isinstance(content, str) and content.strip():
                return content.strip().splitlines()[0]
        return None
