from __future__ import annotations

import re
import threading

from assistantd import ids


def test_ids_are_prefixed_and_shaped() -> None:
    value = ids.new_id(ids.RUN)
    assert re.fullmatch(r"run_[0-9a-v]{24}", value)


def test_ids_increase_within_a_process_even_in_one_millisecond() -> None:
    made = [ids.new_id(ids.MESSAGE) for _ in range(20_000)]
    assert made == sorted(made)
    assert len(set(made)) == len(made)


def test_ids_increase_across_threads() -> None:
    out: list[list[str]] = [[] for _ in range(4)]

    def work(i: int) -> None:
        out[i] = [ids.new_id(ids.STEP) for _ in range(2_000)]

    workers = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    flat = [x for chunk in out for x in chunk]
    assert len(set(flat)) == len(flat)
    for chunk in out:
        assert chunk == sorted(chunk)
