"""The node process's collector settings (node/gc_tuning.py)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from node import gc_tuning


@pytest.fixture
def restore_gc() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*before)


def test_configure_raises_only_the_young_threshold(restore_gc: None) -> None:
    gc.set_threshold(700, 10, 10)
    gc_tuning.configure()
    assert gc.get_threshold() == (gc_tuning.YOUNG_THRESHOLD, 10, 10)


def test_freeze_startup_collects_garbage_first_then_hides_live_objects(restore_gc: None) -> None:
    class Node:
        pass

    live = Node()
    garbage = Node()
    garbage.self = garbage  # type: ignore[attr-defined]  # a cycle: only the collector frees it
    collected: list[int] = []

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "stop":
            collected.append(info["collected"])

    del garbage
    gc.callbacks.append(count)
    try:
        frozen = gc_tuning.freeze_startup()
    finally:
        gc.callbacks.remove(count)
    assert sum(collected) >= 1  # the cycle was freed, not frozen
    assert frozen == gc.get_freeze_count() > 0
    assert gc.is_tracked(live)
    # A frozen object is out of every generation the collector walks.
    assert not any(o is live for o in gc.get_objects())
    gc.unfreeze()
    assert any(o is live for o in gc.get_objects())
