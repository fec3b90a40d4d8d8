"""`python -m benchmarks` without the bench extra: one line naming it, before anything trains."""

import sys

import pytest

from benchmarks.__main__ import main


@pytest.mark.parametrize("name, peer", [("rl-dqn", "stable_baselines3"), ("recsys", "surprise")])
def test_missing_peer_library_is_one_line_naming_the_extra(name, peer, monkeypatch):
    monkeypatch.setitem(sys.modules, peer, None)  # as if it were not installed
    monkeypatch.setattr(sys, "argv", ["python -m benchmarks", name, "--quick"])
    with pytest.raises(SystemExit) as exit_:
        main()
    message = str(exit_.value.code)
    assert message == f'python -m benchmarks {name} needs {peer}: pip install -e ".[bench]"'


def test_rl_quartiles_count_an_unsolved_run_as_slower_than_any_solved_one():
    from benchmarks.rl_dqn import quartiles

    assert quartiles([4, 1, 3, 2, 5]) == [2, 3, 4]
    assert quartiles([1, 2, None, None]) == [1.75, None, None]
