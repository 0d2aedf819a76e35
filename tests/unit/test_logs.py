"""The log formats, record by record: ids from the context, JSON fields, the text suffix."""

from __future__ import annotations

import json
import logging

from assistantd.observability import logs


def _format(formatter: logging.Formatter, **extra: object) -> str:
    record = logging.LogRecord(
        "assistantd.test", logging.WARNING, __file__, 1, "hi %s", ("x",), None
    )
    for key, value in extra.items():
        setattr(record, key, value)
    assert logs.ContextFilter().filter(record)
    return formatter.format(record)


def test_text_shows_the_bound_ids_and_nothing_when_unbound() -> None:
    text = logs.TextFormatter()
    assert _format(text).endswith(" WARNING assistantd.test hi x")
    with logs.bind_request("req_1"), logs.bind_run("run_2"):
        assert _format(text).endswith(" hi x [request_id=req_1 run_id=run_2]")
    with logs.bind_run("run_3"):
        assert _format(text).endswith(" hi x [run_id=run_3]")
    assert _format(text).endswith(" hi x")


def test_json_has_the_fields_and_the_bound_ids() -> None:
    with logs.bind_request("req_1"):
        line = _format(logs.JSONLineFormatter(), status=200, color_message="\x1b[1mhi\x1b[0m")
    record = json.loads(line)
    assert list(record)[:4] == ["time", "level", "logger", "message"]
    assert record["time"].endswith("+00:00")
    assert (record["level"], record["logger"], record["message"]) == (
        "WARNING",
        "assistantd.test",
        "hi x",
    )
    assert record["request_id"] == "req_1" and record["status"] == 200
    assert "run_id" not in record and "color_message" not in record


def test_an_id_given_in_extra_wins_over_the_context() -> None:
    with logs.bind_run("run_context"):
        record = json.loads(_format(logs.JSONLineFormatter(), run_id="run_extra"))
    assert record["run_id"] == "run_extra"


def test_bindings_end_with_their_block() -> None:
    with logs.bind_request("req_1"):
        pass
    assert logs.request_id.get() is None and logs.run_id.get() is None
