"""benchmarks.poll_sim: the polling benchmark's workload on the model alone, on a virtual clock."""

from __future__ import annotations

import pytest

from benchmarks.poll_sim import main as poll_sim_main
from benchmarks.poll_sim import phases, simulate, summary


def test_every_task_finishes_and_the_fixed_schedule_polls_as_it_always_did() -> None:
    """1.5, 3.75, 7.125 s: a 5 s +- 30 % task (3.5-6.5 s) costs 2 calls when done by 3.75 s, else 3."""
    finished, switched_at = simulate(1, 7.0, steady=40, slow=16, learn=False)
    assert sorted(d.index for d in finished) == list(range(56))
    steady = phases(finished, switched_at).steady
    assert steady and all(d.calls in (2, 3) for d in steady)
    assert all(0.0 <= d.lag <= 7.125 - 3.5 for d in steady)


def test_the_learned_plan_spends_fewer_calls_than_the_fixed_one() -> None:
    learned = [phases(*simulate(seed, 7.0)) for seed in range(3)]
    fixed = [phases(*simulate(seed, 7.0, learn=False)) for seed in range(3)]
    calls, lag = summary([run.steady for run in learned])
    fixed_calls, fixed_lag = summary([run.steady for run in fixed])
    assert calls < 1.5 < 2.8 < fixed_calls and lag < 1.0 < fixed_lag


def test_the_slowdown_reaches_the_tasks_already_running() -> None:
    """The emulator slows the running tasks too: right after the switch, tasks submitted before it take
    the new time (7 s +- 30 % is at least 4.9 s, 5 s +- 30 % at most 6.5 s)."""
    finished, switched_at = simulate(2, 12.0, steady=40, slow=16, learn=False)
    slowed = [d for d in finished if d.index < 40 and d.finished > switched_at]
    assert slowed and all(d.calls >= 4 for d in slowed)  # 12 s * 0.7 = 8.4 s: past the poll at 7.125 s


def test_it_prints_both_scenarios(capsys: pytest.CaptureFixture[str]) -> None:
    assert poll_sim_main(["--seeds", "1"]) == 0
    out = capsys.readouterr().out
    assert out.count("5 s then 7 s") == 2 and out.count("5 s then 12 s") == 2
