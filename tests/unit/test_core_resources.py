"""The process-wide resource cache lets node instances share one heavy object."""

from __future__ import annotations

import threading
import time

import pytest

from fontus import clear_resources, release_resource, shared_resource


@pytest.fixture(autouse=True)
def _clean() -> None:
    clear_resources()


def test_the_factory_runs_once_and_every_caller_gets_the_same_object() -> None:
    calls = []

    def load() -> object:
        calls.append(1)
        time.sleep(0.05)  # a slow model load: concurrent callers must wait, not load again
        return object()

    results: list[object] = []
    threads = [
        threading.Thread(target=lambda: results.append(shared_resource("m", load)))
        for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert len(calls) == 1
    assert len(results) == 8 and all(r is results[0] for r in results)


def test_a_failing_factory_is_not_cached_and_the_next_caller_retries() -> None:
    def broken() -> object:
        raise RuntimeError("device busy")

    with pytest.raises(RuntimeError, match="device busy"):
        shared_resource("gpu", broken)
    assert shared_resource("gpu", lambda: "ok") == "ok"


def test_keys_are_independent_and_release_forgets_one() -> None:
    a = shared_resource(("model", "small"), lambda: ["a"])
    b = shared_resource(("model", "large"), lambda: ["b"])
    assert a == ["a"] and b == ["b"]
    assert release_resource(("model", "small")) is a
    assert shared_resource(("model", "small"), lambda: ["a2"]) == ["a2"]
    assert shared_resource(("model", "large"), lambda: ["never"]) is b
