"""The sliding window behind the link pages' rate limits."""

from __future__ import annotations

from api.ratelimit import SlidingWindow


def test_a_key_may_be_used_limit_times_in_any_window() -> None:
    window = SlidingWindow(limit=2, window=10)
    assert window.use("a", 0) is None
    assert window.use("a", 1) is None
    assert window.use("a", 2) == 8  # the use at 0 leaves the window at 10
    assert window.use("b", 2) is None, "each key has its own count"
    assert window.wait("a", 9.5) == 1
    assert window.use("a", 10) is None
    assert window.use("a", 10.5) == 1


def test_a_refused_use_is_not_counted() -> None:
    window = SlidingWindow(limit=1, window=10)
    assert window.use("a", 0) is None
    for t in range(1, 10):
        assert window.use("a", t) is not None
    assert window.use("a", 10) is None


def test_keys_with_no_use_left_in_the_window_are_forgotten() -> None:
    window = SlidingWindow(limit=5, window=10)
    for i in range(1_000):
        window.use(f"client-{i}", 0)
    window.use("late", 25)
    assert list(window._uses) == ["late"]
