"""The supervisor's pure parts: OTP's intensity window, the backoff, child specs and flags."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from xsactor.actors.childspec import ChildSpec, SupFlags, child_spec
from xsactor.actors.restarts import Backoff, BackoffState, RestartIntensity


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def start() -> None:
    return None


# -- intensity (S4) ---------------------------------------------------------------------------
def test_intensity_allows_exactly_intensity_restarts_in_a_period() -> None:
    clock = Clock()
    window = RestartIntensity(3, 5.0, clock)
    assert [window.add() for _ in range(3)] == [True, True, True]
    assert window.add() is False  # the 4th within the period goes beyond


def test_intensity_zero_gives_up_at_the_first_restart() -> None:
    assert RestartIntensity(0, 5.0, Clock()).add() is False


def test_old_restarts_leave_the_window_and_the_bound_is_inclusive() -> None:
    clock = Clock()
    window = RestartIntensity(1, 5.0, clock)
    assert window.add()
    clock.now += 5.0  # exactly period old: still counted (OTP keeps R >= Now - Period)
    assert window.add() is False
    clock.now += 5.01  # both older than the period now
    assert window.add()
    assert len(window) == 1


@given(st.lists(st.floats(min_value=0, max_value=3, allow_nan=False), max_size=40),
       st.integers(min_value=0, max_value=5), st.floats(min_value=0.5, max_value=10))
def test_intensity_matches_a_direct_count(gaps: list[float], intensity: int,
                                          period: float) -> None:
    clock = Clock()
    window = RestartIntensity(intensity, period, clock)
    times: list[float] = []
    for gap in gaps:
        clock.now += gap
        times.append(clock.now)
        recent = [t for t in times if t >= clock.now - period]
        assert window.add() is (len(recent) <= intensity)
        times = recent


# -- backoff ----------------------------------------------------------------------------------
def test_backoff_doubles_up_to_max_without_jitter() -> None:
    backoff = Backoff(min=0.1, max=1.0, jitter=0.0)
    assert [backoff.delay(n, 0.99) for n in range(6)] == pytest.approx(
        [0.1, 0.2, 0.4, 0.8, 1.0, 1.0])


@given(st.integers(min_value=0, max_value=10_000), st.floats(min_value=0, max_value=0.999999))
def test_backoff_delay_is_akkas_formula(n: int, r: float) -> None:
    backoff = Backoff(min=0.05, max=30.0, jitter=0.5)
    base = min(30.0, 0.05 * 2 ** min(n, 64))
    assert backoff.delay(n, r) == pytest.approx(base * (1 + r * 0.5))
    assert 0.05 <= backoff.delay(n, r) <= 30.0 * 1.5


def test_backoff_state_counts_restarts_in_a_row_and_resets_after_a_quiet_run() -> None:
    clock = Clock()
    state = BackoffState(Backoff(min=1.0, max=8.0, jitter=0.5, reset_after=10.0), clock,
                         random=lambda: 0.5)
    assert [state.next_delay() for _ in range(3)] == [1.25, 2.5, 5.0]
    state.started()
    clock.now += 9.9  # died before the quiet period: still in a row
    assert state.next_delay() == 10.0
    state.started()
    clock.now += 10.0  # ran quietly for reset_after: back to the first delay
    assert state.next_delay() == 1.25


@pytest.mark.parametrize("kwargs", [{"min": 0}, {"min": 2, "max": 1}, {"jitter": -1}])
def test_backoff_rejects_bad_settings(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Backoff(**kwargs)


# -- child specs and flags (S1) ---------------------------------------------------------------
def test_child_spec_defaults_follow_otp() -> None:
    worker = ChildSpec("w", start)
    assert (worker.restart, worker.shutdown, worker.type, worker.significant) == (
        "permanent", 5.0, "worker", False)
    assert ChildSpec("s", start, type="supervisor").shutdown == "infinity"
    assert child_spec({"id": "m", "start": start, "restart": "temporary"}).restart == "temporary"


@pytest.mark.parametrize("kwargs", [
    {"restart": "sometimes"}, {"type": "daemon"}, {"shutdown": -1}, {"shutdown": "soon"},
    {"shutdown": True}, {"significant": True},  # permanent and significant
])
def test_child_spec_rejects_what_otp_rejects(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="child 'c'"):
        ChildSpec("c", start, **kwargs)  # type: ignore[arg-type]


def test_child_spec_from_a_map_names_missing_and_unknown_keys() -> None:
    with pytest.raises(ValueError, match="start"):
        child_spec({"id": "c"})
    with pytest.raises(ValueError, match="restrat"):
        child_spec({"id": "c", "start": start, "restrat": "permanent"})


def test_significant_children_need_auto_shutdown() -> None:
    spec = ChildSpec("c", start, restart="transient", significant=True)
    with pytest.raises(ValueError, match="significant"):
        SupFlags().check_children([spec])
    SupFlags(auto_shutdown="any_significant").check_children([spec])


@pytest.mark.parametrize("kwargs", [{"strategy": "one_for_some"}, {"intensity": -1},
                                    {"period": 0}, {"auto_shutdown": "sometimes"}])
def test_sup_flags_reject_bad_values(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        SupFlags(**kwargs)  # type: ignore[arg-type]
