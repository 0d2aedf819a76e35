"""Every list behaves like list-runs: limit, order, after/before, first_id/last_id/has_more."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import openai
import pytest

from tests.conftest import make_client
from tests.servers import Server

N = 45


def _page(http: httpx.Client, path: str, **params: object) -> dict[str, object]:
    resp = http.get(path, params={k: v for k, v in params.items() if v is not None})
    assert resp.status_code == 200, resp.text
    body: dict[str, object] = resp.json()
    assert set(body) == {"object", "data", "first_id", "last_id", "has_more"}
    assert body["object"] == "list"
    return body


def _ids(body: dict[str, object]) -> list[str]:
    data = body["data"]
    assert isinstance(data, list)
    return [item["id"] for item in data]


def check_list_contract(http: httpx.Client, path: str, expected: list[str]) -> None:
    """``expected``: every id in creation order. Walks every direction and cursor kind."""
    assert len(expected) >= N
    desc = list(reversed(expected))

    default = _page(http, path)
    assert _ids(default) == desc[:20]
    assert default["has_more"] is True
    assert default["first_id"] == desc[0] and default["last_id"] == desc[19]

    full = _page(http, path, limit=100, order="asc")
    assert _ids(full) == expected and full["has_more"] is False

    for order, seq in (("asc", expected), ("desc", desc)):
        for size in (1, 7, 20, len(seq)):
            # forward with `after`
            seen: list[str] = []
            after = None
            while True:
                body = _page(http, path, limit=size, order=order, after=after)
                got = _ids(body)
                seen += got
                assert body["has_more"] is (len(seen) < len(seq)), (order, size, len(seen))
                if got:
                    assert body["first_id"] == got[0] and body["last_id"] == got[-1]
                if not body["has_more"]:
                    break
                after = got[-1]
            assert seen == seq, (order, size)
            # backward with `before`, from the end
            back: list[str] = []
            before = seq[-1]
            back = [seq[-1]]
            while True:
                body = _page(http, path, limit=size, order=order, before=before)
                got = _ids(body)
                back = got + back
                assert body["has_more"] is (len(back) < len(seq)), (order, size, len(back))
                if not body["has_more"]:
                    break
                before = got[0]
            assert back == seq, (order, size)

    # both cursors: a window
    window = _page(http, path, order="asc", after=expected[5], before=expected[15], limit=100)
    assert _ids(window) == expected[6:15]
    assert window["has_more"] is False
    window = _page(http, path, order="asc", after=expected[5], before=expected[15], limit=4)
    assert _ids(window) == expected[6:10] and window["has_more"] is True

    # cursor past either end
    assert _ids(_page(http, path, order="asc", after=expected[-1])) == []
    assert _ids(_page(http, path, order="desc", after=expected[0])) == []
    empty = _page(http, path, order="asc", before=expected[0])
    assert _ids(empty) == [] and empty["has_more"] is False


@pytest.fixture()
def fresh(server: Server) -> Iterator[tuple[openai.OpenAI, httpx.Client]]:
    """A project of its own, so other tests' objects do not show up in its lists."""
    key = server.new_key("pagination")
    http = httpx.Client(
        base_url=server.base_url,
        headers={"Authorization": f"Bearer {key}", "OpenAI-Beta": "assistants=v2"},
        timeout=30,
    )
    client = make_client(server, key)
    with http, client:
        yield client, http


def _assert_ties(created: list[int]) -> None:
    # Creation is fast enough that many objects share a second: ordering must not rely on it.
    assert len(set(created)) < len(created)


def _auto_paginates(
    pager: Callable[..., openai.pagination.SyncCursorPage], expected: list[str]
) -> None:  # type: ignore[type-arg]
    for order, seq in (("asc", expected), ("desc", list(reversed(expected)))):
        seen = [item.id for item in pager(limit=7, order=order)]
        assert seen == seq


def test_assistants_list(fresh: tuple[openai.OpenAI, httpx.Client]) -> None:
    client, http = fresh
    made = [client.beta.assistants.create(model="m", name=f"a{i}") for i in range(N)]
    _assert_ties([a.created_at for a in made])
    ids = [a.id for a in made]
    check_list_contract(http, "/v1/assistants", ids)
    _auto_paginates(client.beta.assistants.list, ids)
    # A cursor does not need its object to still exist.
    client.beta.assistants.delete(ids[10])
    after = _page(http, "/v1/assistants", order="asc", after=ids[10], limit=3)
    assert _ids(after) == ids[11:14]


def test_messages_list_and_run_filter(fresh: tuple[openai.OpenAI, httpx.Client]) -> None:
    client, http = fresh
    thread = client.beta.threads.create()
    made = [
        client.beta.threads.messages.create(thread.id, role="user", content=f"m{i}")
        for i in range(N)
    ]
    _assert_ties([m.created_at for m in made])
    ids = [m.id for m in made]
    path = f"/v1/threads/{thread.id}/messages"
    check_list_contract(http, path, ids)
    _auto_paginates(lambda **kw: client.beta.threads.messages.list(thread.id, **kw), ids)
    assistant = client.beta.assistants.create(model="m")
    run = client.beta.threads.runs.create(
        thread.id,
        assistant_id=assistant.id,
        additional_messages=[{"role": "user", "content": "extra"}],
    )
    done = client.beta.threads.runs.poll(run.id, thread_id=thread.id)
    assert done.status == "completed"
    # additional messages belong to the thread; only the answer belongs to the run
    by_run = _page(http, path, run_id=run.id)["data"]
    assert isinstance(by_run, list) and [m["role"] for m in by_run] == ["assistant"]
    assert len(_ids(_page(http, path, limit=100))) == N + 2


def test_runs_list(fresh: tuple[openai.OpenAI, httpx.Client]) -> None:
    client, http = fresh
    assistant = client.beta.assistants.create(model="m")
    thread = client.beta.threads.create()
    made = [
        client.beta.threads.runs.create_and_poll(
            thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=20
        )
        for _ in range(N)
    ]
    assert all(r.status == "completed" for r in made)
    _assert_ties([r.created_at for r in made])
    ids = [r.id for r in made]
    check_list_contract(http, f"/v1/threads/{thread.id}/runs", ids)
    _auto_paginates(lambda **kw: client.beta.threads.runs.list(thread.id, **kw), ids)


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"order": "up"}, "order"),
    ],
)
def test_bad_list_params(http: httpx.Client, params: dict[str, object], param: str) -> None:
    thread = http.post("/v1/threads", json={}).json()
    for path in (
        "/v1/assistants",
        f"/v1/threads/{thread['id']}/messages",
        f"/v1/threads/{thread['id']}/runs",
    ):
        resp = http.get(path, params=params)
        assert resp.status_code == 400
        err = resp.json()["error"]
        assert err["param"] == param and err["type"] == "invalid_request_error"
        assert set(err) == {"message", "type", "param", "code"}
