"""How a policy is loaded, scored and shown: greedy episodes on separate, seeded environments,
Gymnasium's "solved" protocol, the `eval` command, the learning curve and an episode's GIF."""

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from core.checkpoint import save_weights
from core.config import ChangesDefaults, EvalConfig, TrainConfig, to_dict
from core.device import pick_device
from core.errors import ShowcaseError, non_negative, positive
from core.files import atomic_write, copy_file, save_figure
from core.logger import RunLogger
from core.report import report_eval, write_report
from core.run import BEST, WEIGHTS, Run, load_run_weights, run_config, run_step
from rl import DQN
from rl.dqn.data import check_env, make_envs, obs_bounds
from rl.dqn.model import q_network

TASK = "rl.dqn"


def greedy(q_net) -> Callable[[np.ndarray], np.ndarray]:
    """The greedy policy of a Q-network: observations (N, D) -> actions (N,)."""
    device = next(q_net.parameters()).device

    @torch.no_grad()
    def act(obs: np.ndarray) -> np.ndarray:
        return (
            q_net(torch.as_tensor(obs, dtype=torch.float32, device=device)).argmax(1).cpu().numpy()
        )

    return act


def evaluate_policy(policy, env_id: str, episodes: int, seed: int) -> np.ndarray:
    """Returns of `episodes` episodes run side by side, seeded by `seed`.

    `policy` is a Q-network (acted on greedily) or any callable from observations to actions.
    """
    act = greedy(policy) if isinstance(policy, torch.nn.Module) else policy
    envs = make_envs(env_id, episodes, same_step_reset=False)
    obs, _ = envs.reset(seed=seed)  # seeded: the same episodes for every policy
    returns, done = np.zeros(episodes), np.zeros(episodes, dtype=bool)
    while not done.all():
        obs, rewards, terminated, truncated, _ = envs.step(act(obs))
        returns += rewards * ~done
        done |= terminated | truncated
    envs.close()
    return returns


@dataclasses.dataclass
class SolveProtocol:
    """Gymnasium's "solved": the greedy policy's mean return over `episodes` consecutive episodes
    reaches the environment's reward threshold (CartPole-v1: 475 over 100). `check` plays them
    (seeded, side by side) and adds its own time to `eval_seconds`, so evaluation can be kept out
    of seconds-to-solve. One protocol judges every agent: ours and the benchmark's peer."""

    env_id: str
    episodes: int = 100
    seed: int = 10_000
    eval_seconds: float = 0.0

    @property
    def threshold(self) -> float | None:
        return gym.spec(self.env_id).reward_threshold

    def check(self, policy) -> tuple[float, bool]:
        """(mean return over the episodes, whether it meets the threshold)."""
        t0 = time.perf_counter()
        mean = float(evaluate_policy(policy, self.env_id, self.episodes, self.seed).mean())
        self.eval_seconds += time.perf_counter() - t0
        return mean, self.threshold is not None and mean >= self.threshold


def load_policy(out_dir: str, env_id: str | None, device: torch.device):
    """The kept Q-network of a run, checked against the environment it is asked to act in."""
    cfg = run_config(out_dir)
    env_id = env_id or cfg["env"]
    obs_dim, num_actions = check_env(env_id)
    if (obs_dim, num_actions) != (cfg["obs_dim"], cfg["num_actions"]):
        raise ShowcaseError(
            f"{out_dir} holds a policy for {cfg['env']} (observation size {cfg['obs_dim']}, {cfg['num_actions']} actions) "
            f"but {env_id} has observation size {obs_dim} and {num_actions} actions"
        )
    bounds = obs_bounds(env_id) if cfg.get("scale_obs") else None  # the weights hold the scale
    q_net = q_network(obs_dim, num_actions, tuple(cfg["hidden"]), bounds).to(device)
    load_run_weights(q_net, out_dir)
    return q_net.eval(), env_id


@dataclasses.dataclass
class Episodes(ChangesDefaults):
    """The greedy episodes a trained agent plays (`eval`, `play`: each changes the defaults)."""

    env: str | None = None
    """Environment id (default: the one it was trained on)."""
    episodes: int = 100
    """Greedy episodes."""
    seed: int = 100_000
    """Seed of the first episode."""

    def __post_init__(self) -> None:
        getattr(super(), "__post_init__", lambda: None)()
        positive(self, "episodes")
        non_negative(self, "seed")


@dataclasses.dataclass
class DQNEvalConfig(Episodes, EvalConfig):
    DEMO = DQN
    UNUSED: ClassVar[tuple] = ("hf_dataset", "hf_columns", "hf_split", "data_dir", "batch_size")
    """The environment is the data: no dataset, data root or batches."""


def evaluate(cfg: DQNEvalConfig) -> dict:
    """Mean and std of greedy returns of the kept policy over --episodes seeded episodes, and
    whether the mean meets the environment's reward threshold; saves episode.gif (the first
    episode) in the run dir."""
    t0 = time.perf_counter()
    device = pick_device(cfg.device)
    q_net, env_id = load_policy(cfg.out_dir, cfg.env, device)
    returns = evaluate_policy(q_net, env_id, cfg.episodes, cfg.seed)
    metrics = {
        "return_mean": float(returns.mean()),
        "return_std": float(returns.std()),
        "episodes": len(returns),
    }
    threshold = gym.spec(env_id).reward_threshold  # solved: a mean of at least this (None: no bar)
    metrics |= {
        "threshold": threshold,
        "solved": threshold is not None and metrics["return_mean"] >= threshold,
    }
    gif = Path(cfg.out_dir) / "episode.gif"
    write_gif(q_net, env_id, cfg.seed, str(gif))
    verdict = (
        "no threshold"
        if threshold is None
        else f"{'meets' if metrics['solved'] else 'below'} the threshold {threshold:g}"
    )
    summary = (
        f"{env_id}: {metrics['return_mean']:.1f} ± {metrics['return_std']:.1f} over {cfg.episodes} "
        f"episodes ({verdict}); wrote {gif}"
    )
    return report_eval(
        cfg, TASK, metrics, run_step(cfg.out_dir), time.perf_counter() - t0, device, summary
    )


def plot_curve(curve: list, path: Path, env_id: str, threshold: float | None) -> None:
    """The learning curve: greedy evaluation return against environment steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    if curve:
        steps, returns = zip(*curve, strict=True)
        ax.plot(steps, returns, marker="o", markersize=3)
    if threshold is not None:
        ax.axhline(threshold, color="gray", linestyle="--", label=f"threshold {threshold:g}")
        ax.legend()
    ax.set(xlabel="environment steps", ylabel="greedy return (mean)", title=f"DQN on {env_id}")
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)


@torch.no_grad()
def write_gif(q_net, env_id: str, seed: int, path: str, max_frames: int = 500) -> None:
    """An animated GIF of one greedy episode (rgb_array frames at half size, every other one)."""
    import gymnasium as gym
    from PIL import Image

    device = next(q_net.parameters()).device
    env = gym.make(env_id, render_mode="rgb_array")
    obs, _ = env.reset(seed=seed)
    frames = [Image.fromarray(env.render())]
    done = False
    while not done and len(frames) < max_frames:
        action = (
            q_net(torch.as_tensor(obs, dtype=torch.float32, device=device)[None]).argmax(1).item()
        )
        obs, _, terminated, truncated, _ = env.step(action)
        done = terminated or truncated
        frames.append(Image.fromarray(env.render()))
    env.close()
    small = [f.resize((f.width // 2, f.height // 2)) for f in frames[::2]]
    atomic_write(
        Path(path),
        lambda tmp: small[0].save(
            tmp, format="GIF", save_all=True, append_images=small[1:], duration=40, loop=0
        ),
    )


def evaluate_and_keep(
    q_net: nn.Module,
    protocol: SolveProtocol,
    run: Run,
    cfg: TrainConfig,
    meta: dict,
    logger: RunLogger,
    eps: float,
) -> None:
    """Evaluate the greedy policy; keep it in best.safetensors if it is the best so far; mark the
    run solved when it meets the threshold (with --stop-at-threshold)."""
    state, extra, step = run.state, run.state.extra, run.state.step
    mean, solved = protocol.check(q_net)
    extra["eval_seconds"] = protocol.eval_seconds
    extra["curve"].append([step, mean])
    logger.log("eval", step, {"return_mean": mean, "epsilon": eps})
    if state.best is None or mean > state.best:
        state.best, state.best_step = mean, step
        kept = {"config": {**to_dict(cfg), **meta}, "step": step, "return_mean": mean}
        save_weights(q_net, run.dir / BEST, kept)
    if solved and cfg.stop_at_threshold:  # seconds of learning, evaluation excluded
        extra.update(solved_step=step, solved_seconds=run.seconds() - protocol.eval_seconds)


def finish(cfg: TrainConfig, run: Run, device: torch.device) -> dict:
    """Keep the best policy as the run's weights, score it on fresh episodes, report."""
    state, extra = run.state, run.state.extra
    copy_file(run.dir / BEST, run.dir / WEIGHTS)  # the kept policy is the best one
    wall = run.seconds()
    kept, _ = load_policy(cfg.out_dir, cfg.env, device)
    final_episodes = 2 if cfg.synthetic else cfg.final_episodes
    returns = evaluate_policy(kept, cfg.env, final_episodes, seed=cfg.seed + 100_000)
    threshold = gym.spec(cfg.env).reward_threshold if cfg.stop_at_threshold else None
    plot_curve(extra["curve"], run.dir / "curve.png", cfg.env, threshold)
    metrics = {
        "return_mean": float(returns.mean()),
        "return_std": float(returns.std()),
        "episodes": len(returns),
        "best_eval_return": state.best,
        "best_step": state.best_step,
        "steps_to_solve": extra["solved_step"],
        "seconds_to_solve": extra["solved_seconds"],
        "eval_seconds": extra["eval_seconds"],
        "updates": extra["updates"],
    }
    report = write_report(cfg, TASK, metrics, state.step, wall, device)
    print(
        f"{cfg.env}: kept policy (step {state.best_step}) scores {returns.mean():.1f} "
        f"± {returns.std():.1f} over {len(returns)} episodes; {state.step} steps in {wall:.1f}s"
    )
    return report
