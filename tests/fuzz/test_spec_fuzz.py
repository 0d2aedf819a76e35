"""Property-based API tests generated from OpenAI's own spec (schemathesis), against a real server.

Every operation of OpenAI's spec (``../shared/reference/openapi.assistants-v2.yaml``, or its
copy in ``tests/reference/``) that ``docs/compatibility.md`` lists as supported gets a test:
schemathesis sends it requests built from the spec (its examples, boundary values of every
parameter and field, then random valid and invalid data), with a project's key and, most of
the time, ids of real objects in the path and the body (``world.py``). Every answer must be:

- never a 5xx;
- a status OpenAI gives (200, or 400/401/404/413/429 for errors);
- for an error, exactly the envelope ``{"error": {"message", "type", "param", "code"}}``;
- for a 200, valid against the operation's response schema in the spec (streams: every event
  valid against the spec's stream event schemas, ending with ``done``);
- for a request the spec calls invalid, an error (schemathesis' ``negative_data_rejection``).

The CI run (part of ``make test``) is the spec's examples plus 30 random cases per operation,
the same every run; ``make fuzz`` adds schemathesis' coverage phase and 200 fresh random cases
per operation, on SQLite and PostgreSQL (``ASSISTANTD_FUZZ_*`` below). A summary of the
statuses each operation got closes the pytest output.
"""

from __future__ import annotations

import os
import re

import hypothesis
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import unsupported_method

from tests.fuzz.checks import (
    content_type,
    error_envelope,
    list_page,
    rejects_invalid,
    response_schema,
    status_openai_gives,
    stream_conforms,
)
from tests.fuzz.spec import ROOT, corrected_spec
from tests.fuzz.world import World
from tests.servers import Server

# The CI run: the spec's examples and 30 random cases per operation, the same every run.
# `make fuzz` adds the coverage phase (boundary and just-out-of-bounds values of every
# parameter and field, and every other method on each path) and more, fresh, random cases.
EXAMPLES = int(os.environ.get("ASSISTANTD_FUZZ_EXAMPLES", "30"))
PHASES = os.environ.get("ASSISTANTD_FUZZ_PHASES", "examples,fuzzing").split(",")
RANDOM = os.environ.get("ASSISTANTD_FUZZ_RANDOM", "") == "1"


def supported_operations() -> set[tuple[str, str]]:
    """(METHOD, spec path) of every route docs/compatibility.md lists as supported."""
    table = (ROOT / "docs" / "compatibility.md").read_text()
    rows = re.findall(r"^\| \d+ \| (\w+) \| `/v1(/[^`]+)` \|.*\| supported \|", table, re.M)
    return {(method, path) for method, path in rows}


SUPPORTED = supported_operations()
schema = schemathesis.openapi.from_dict(corrected_spec()).include(
    lambda ctx: (ctx.operation.method.upper(), ctx.operation.path) in SUPPORTED
)
# The key is ours to send (below): a generated Authorization header would only ever get a 401,
# which tests/api/test_errors.py covers route by route.
schema.config.generation.update(with_security_parameters=False)
schema.config.phases.update(phases=PHASES)
# Streamed runs are read to their end (schemathesis stops after 20 events by default).
schema.config.max_stream_events = 10_000

CHECKS = [
    not_a_server_error,
    status_openai_gives,
    error_envelope,
    response_schema,
    content_type,
    stream_conforms,
    list_page,
    rejects_invalid,
    unsupported_method,
]


def test_scope_is_the_44_supported_operations() -> None:
    in_spec = {(op.method.upper(), op.path) for op in (r.ok() for r in schema.get_all_operations())}
    assert len(SUPPORTED) == 44
    assert in_spec == SUPPORTED


@schema.parametrize()
@hypothesis.settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=not RANDOM,
    database=None,
    suppress_health_check=list(hypothesis.HealthCheck),
    print_blob=RANDOM,
)
def test_operation(case: schemathesis.Case, fuzz_server: Server, fuzz_world: World) -> None:
    method, path = case.method.upper(), case.path
    path_parameters, body = fuzz_world.aim(method, path, case.path_parameters or {}, case.body)
    # Assigned only when changed: schemathesis then re-checks whether the case is still
    # valid (or still invalid) against the spec, as it does for any edited case.
    if path_parameters != (case.path_parameters or {}):
        case.path_parameters = path_parameters
    if body != case.body:
        case.body = body
    response = case.call(
        base_url=fuzz_server.base_url + "/v1",
        session=fuzz_world.session,
        headers={"Authorization": f"Bearer {fuzz_server.keys['alpha']}"},
        timeout=60,
    )
    fuzz_world.after(method, path, case.path_parameters or {}, response)
    case.validate_response(response, checks=CHECKS)
