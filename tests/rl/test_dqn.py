import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from core.errors import ShowcaseError
from core.logger import RunLogger
from core.parse import build
from rl.dqn.data import ReplayBuffer, check_env, env_step, make_envs
from rl.dqn.model import ObsScale, double_dqn_targets, q_network, td_loss
from rl.dqn.predict import PlayConfig, play
from rl.dqn.scoring import DQNEvalConfig, SolveProtocol, evaluate, evaluate_policy
from rl.dqn.train import ENV_DEFAULTS, DQNConfig, main


def test_replay_buffer_wraps_around_and_samples():
    buf = ReplayBuffer(capacity=5, obs_dim=2)
    for start in (0, 3):  # 3 + 3 transitions into 5 slots
        n = np.arange(start, start + 3)
        buf.add(
            np.stack([n, n], 1), n % 2, n.astype(float), np.stack([n + 1, n + 1], 1), np.zeros(3)
        )
    assert len(buf) == 5 and buf.pos == 1
    assert buf.obs[:, 0].tolist() == [5, 1, 2, 3, 4]  # slot 0 overwritten by transition 5
    torch.manual_seed(0)
    obs, actions, rewards, next_obs, terminated, discount = buf.sample(64, gamma=0.5)
    assert obs.shape == (64, 2) and actions.dtype == torch.long and (discount == 0.5).all()
    assert set(rewards.tolist()) <= {1.0, 2.0, 3.0, 4.0, 5.0}
    assert torch.equal(next_obs, obs + 1) and torch.equal(rewards, obs[:, 0])


def test_n_step_returns_stop_at_episode_ends():
    buf = ReplayBuffer(capacity=100, obs_dim=1)
    # two envs side by side; env 0 ends its episode at its third step (terminated), env 1 never
    for t in range(6):
        ended = np.array([t == 2, False])
        buf.add(
            np.array([[10 * t], [10 * t + 1]]),
            np.zeros(2),
            np.array([1.0, 2.0]),
            np.array([[10 * t + 5], [10 * t + 6]]),
            ended.astype(float),
            ended,
        )
    torch.manual_seed(0)
    obs, _, returns, next_obs, terminated, discount = buf.sample(200, steps=3, gamma=0.5, stride=2)
    assert obs.max() <= 31  # the newest (3 - 1) steps of each env have no look-ahead yet
    for o, g, n, term, d in zip(
        obs[:, 0].tolist(),
        returns.tolist(),
        next_obs[:, 0].tolist(),
        terminated.tolist(),
        discount.tolist(),
        strict=True,
    ):
        t, env = divmod(int(o), 10)
        if env == 1:  # never ends: 2 + 1 + 0.5 (x2), bootstrap from 2 steps later
            assert (g, n, term, d) == (3.5, o + 20 + 5, 0.0, 0.125)
        elif t <= 2:  # stops at the termination at t = 2
            steps = 3 - t
            assert (g, n, term, d) == (sum(0.5**k for k in range(steps)), 25.0, 1.0, 0.5**steps)
        else:  # the next episode: three full steps
            assert (g, n, term, d) == (1.75, o + 20 + 5, 0.0, 0.125)


def test_double_dqn_target_on_hand_made_batch():
    next_q_online = torch.tensor([[1.0, 2.0], [3.0, 0.0]])  # picks action 1, then action 0
    next_q_target = torch.tensor([[10.0, 20.0], [30.0, 40.0]])  # evaluates them: 20 and 30
    rewards, terminated = torch.tensor([1.0, 1.0]), torch.tensor([0.0, 1.0])
    targets = double_dqn_targets(next_q_online, next_q_target, rewards, terminated, gamma=0.5)
    assert targets.tolist() == [1.0 + 0.5 * 20.0, 1.0]  # termination does not bootstrap
    q = torch.tensor([[0.0, 11.0], [1.0, 0.0]], requires_grad=True)
    assert td_loss(q, torch.tensor([1, 0]), targets).item() == 0.0


def test_truncation_bootstraps_and_termination_does_not():
    envs = make_envs("CartPole-v1", 1, max_episode_steps=3)
    envs.reset(seed=0)
    for _ in range(3):
        next_obs, real_next, _, terminated, done = env_step(envs, np.array([0]))
    assert done[0] and not terminated[0]  # a time limit: stored as not terminated, so it bootstraps
    assert not np.allclose(real_next[0], next_obs[0])  # the stored next state is the true last one
    envs = make_envs("CartPole-v1", 1)
    envs.reset(seed=0)
    while True:  # always pushing left topples the pole: a real termination
        _, _, _, terminated, done = env_step(envs, np.array([0]))
        if done[0]:
            break
    assert terminated[0]


def test_env_checks():
    assert check_env("CartPole-v1") == (4, 2)
    with pytest.raises(ShowcaseError, match="unknown environment 'NoSuchEnv-v0'"):
        check_env("NoSuchEnv-v0")
    with pytest.raises(ShowcaseError, match="Discrete action space"):
        check_env("Pendulum-v1")


def test_any_env_id_gets_the_plain_defaults_and_a_bad_one_a_clear_error():
    from core.errors import UsageError
    from core.parse import parse

    cfg = parse(DQNConfig, ["--env", "CartPole-v0"], "showcase rl dqn train")  # not in the table
    assert cfg.env == "CartPole-v0" and cfg.max_steps == DQNConfig.max_steps
    assert (
        parse(DQNConfig, ["--env", "Acrobot-v1"], "p").max_steps
        == ENV_DEFAULTS["Acrobot-v1"]["max_steps"]
    )
    with pytest.raises(UsageError):
        parse(DQNConfig, ["--max-steps", "ten"], "p")


def test_q_network_shape():
    assert q_network(4, 2, (64, 64))(torch.zeros(3, 4)).shape == (3, 2)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("dqn") / "run"
    cfg = build(
        DQNConfig,
        out_dir=str(out),
        device="cpu",
        max_steps=6000,
        eval_every=1000,
        eval_episodes=5,
        final_episodes=10,
        seed=0,
    )
    return cfg, main(cfg)


@pytest.mark.slow
def test_short_cartpole_run_learns(trained):
    cfg, report = trained
    assert report["metrics"]["return_mean"] > 150  # a random policy scores about 22
    assert report["metrics"]["episodes"] == 10
    assert (Path(cfg.out_dir) / "curve.png").stat().st_size > 1000
    assert json.loads((Path(cfg.out_dir) / "metrics.json").read_text())["task"] == "rl.dqn"


def test_training_logs_a_curve_and_advances_the_progress_bar(tmp_path, monkeypatch):
    advanced = []
    monkeypatch.setattr(RunLogger, "advance", lambda self, steps: advanced.append(steps))
    cfg = build(
        DQNConfig,
        out_dir=str(tmp_path / "r"),
        device="cpu",
        max_steps=2000,
        eval_every=1000,
        eval_episodes=2,
        final_episodes=2,
        stop_at_threshold=False,
    )
    main(cfg)
    assert sum(advanced) == 2000  # environment steps, the bar's unit
    log = [json.loads(line) for line in (tmp_path / "r" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if r["kind"] == "train"] == [500, 1000, 1500, 2000]


def test_resume_continues_from_the_checkpoint(trained, tmp_path):
    cfg = build(
        DQNConfig,
        out_dir=str(tmp_path / "r"),
        device="cpu",
        max_steps=1200,
        eval_every=600,
        eval_episodes=2,
        final_episodes=2,
        stop_at_threshold=False,
    )
    first = main(cfg)
    more = build(DQNConfig, **{**cfg.__dict__, "max_steps": 2400, "resume": True})
    second = main(more)
    assert first["steps"] == 1200 and second["steps"] == 2400
    # the buffer refills for learning_starts (1000) steps, then updates continue: 1400 - 1000 = 200 steps more
    assert second["metrics"]["updates"] > first["metrics"]["updates"]


def test_play_and_eval_a_saved_policy(trained, tmp_path, capsys):
    cfg, _ = trained
    result = play(
        PlayConfig(out_dir=cfg.out_dir, episodes=2, gif=str(tmp_path / "a.gif"), device="cpu")
    )
    assert len(result["returns"]) == 2 and (tmp_path / "a.gif").stat().st_size > 1000
    report = evaluate(DQNEvalConfig(out_dir=cfg.out_dir, episodes=5, device="cpu"))
    m = report["metrics"]
    assert (
        m["episodes"] == 5
        and m["threshold"] == 475.0
        and m["solved"] == (m["return_mean"] >= 475.0)
    )


def test_policy_from_another_environment_is_refused(trained):
    cfg, _ = trained
    with pytest.raises(
        ShowcaseError, match=r"CartPole-v1 \(observation size 4, 2 actions\) but Acrobot-v1"
    ):
        evaluate(DQNEvalConfig(out_dir=cfg.out_dir, env="Acrobot-v1", device="cpu"))


def test_solve_protocol_scores_a_hand_made_policy():
    always_left = lambda obs: np.zeros(len(obs), dtype=np.int64)  # noqa: E731
    protocol = SolveProtocol("CartPole-v1")
    mean, solved = protocol.check(always_left)
    returns = evaluate_policy(always_left, "CartPole-v1", 100, seed=10_000)
    assert len(returns) == 100 and mean == returns.mean() and 8 <= mean <= 11  # falls over fast
    assert not solved and protocol.threshold == 475.0 and protocol.eval_seconds > 0


def test_solve_protocol_flags_solved_only_at_the_threshold_over_all_episodes():
    def balance(obs):  # push toward the way the pole leans: keeps it up for the 500 steps
        return (obs[:, 2] + obs[:, 3] > 0).astype(np.int64)

    mean, solved = SolveProtocol("CartPole-v1").check(balance)
    assert mean >= 475.0 and solved

    calls = [0]

    def tired(obs):  # balances, then from step 460 always pushes left: below 475
        calls[0] += 1
        return balance(obs) if calls[0] < 460 else np.zeros(len(obs), dtype=np.int64)

    mean, solved = SolveProtocol("CartPole-v1").check(tired)
    assert 440 <= mean < 475.0 and not solved  # close to the bar, still below it


def test_obs_scale_maps_bounds_onto_unit_range_and_leaves_unbounded_dimensions():
    big = float(np.finfo(np.float32).max)  # CartPole's "unbounded" velocities
    scale = ObsScale(torch.tensor([-1.2, -0.07, -big]), torch.tensor([0.6, 0.07, big]))
    out = scale(torch.tensor([[-1.2, -0.07, 3.0], [0.6, 0.07, -3.0], [-0.3, 0.0, 0.5]]))
    assert torch.allclose(out, torch.tensor([[-1.0, -1.0, 3.0], [1.0, 1.0, -3.0], [0.0, 0.0, 0.5]]))


def test_scaled_observations_train_save_and_evaluate(tmp_path):
    cfg = build(
        DQNConfig,
        env="MountainCar-v0",
        out_dir=str(tmp_path / "mc"),
        device="cpu",
        max_steps=1200,
        eval_every=600,
        eval_episodes=2,
        final_episodes=2,
        learning_starts=200,
    )
    assert cfg.scale_obs and cfg.n_step == 3  # MountainCar's defaults
    report = main(cfg)
    assert report["metrics"]["episodes"] == 2 and report["metrics"]["updates"] > 0
    scored = evaluate(DQNEvalConfig(out_dir=cfg.out_dir, episodes=2, device="cpu"))
    assert (
        scored["metrics"]["threshold"] == -110.0 and -200.0 <= scored["metrics"]["return_mean"] <= 0
    )


def test_the_kept_policy_is_the_moving_average_with_ema(tmp_path, monkeypatch):
    """With --ema, evaluations play (and keep) the moving average of the online weights, which
    trails them; a resume restores it."""
    from rl.dqn import train as dqn_train

    played = []
    real = dqn_train.evaluate_and_keep

    def spy(q_net, *args, **kwargs):
        played.append({k: v.clone() for k, v in q_net.state_dict().items()})
        return real(q_net, *args, **kwargs)

    monkeypatch.setattr(dqn_train, "evaluate_and_keep", spy)
    small = {
        "eval_every": 600,
        "eval_episodes": 2,
        "final_episodes": 2,
        "learning_starts": 200,
        "stop_at_threshold": False,
    }
    out = str(tmp_path / "a")
    cfg = build(DQNConfig, env="Acrobot-v1", out_dir=out, device="cpu", max_steps=1200, **small)
    assert cfg.ema == 0.99  # Acrobot's default
    main(cfg)
    run = load_file(tmp_path / "a" / "checkpoint.safetensors")
    online = {k[8:]: v for k, v in run.items() if k.startswith("model.q.")}
    average = {k[10:]: v for k, v in run.items() if k.startswith("model.avg.")}
    assert average and average.keys() == online.keys()
    assert all(torch.equal(played[-1][k], average[k]) for k in average)
    assert not all(torch.equal(online[k], average[k]) for k in average)
    # resumed, the first evaluation falls in the replay buffer's refill, before any update: it
    # plays the restored average
    resumed = len(played)
    more = build(
        DQNConfig, **{**cfg.__dict__, "max_steps": 1800, "eval_every": 100, "resume": True}
    )
    assert main(more)["steps"] == 1800
    assert all(torch.equal(played[resumed][k], average[k]) for k in average)
