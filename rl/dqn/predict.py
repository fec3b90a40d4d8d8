"""`play`: greedy episodes of a kept policy, with an optional GIF; the app's tab."""

import dataclasses
import json
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from core.config import InferenceConfig
from core.demo import Tab, Widget
from core.device import pick_device
from rl import DQN
from rl.dqn.scoring import Episodes, evaluate_policy, load_policy, write_gif


@dataclasses.dataclass
class PlayConfig(Episodes, InferenceConfig):
    """Play episodes with the trained agent and print their returns (--json: one object)."""

    DEMO = DQN
    DEFAULTS: ClassVar[dict] = {"episodes": 5, "seed": 1000}

    gif: str | None = None
    """Write an animation of the first episode to this file."""


def play(cfg: PlayConfig) -> dict:
    """Play greedy episodes with a saved policy; print returns; optionally save a GIF."""
    q_net, env_id = load_policy(cfg.out_dir, cfg.env, pick_device(cfg.device))
    returns = evaluate_policy(q_net, env_id, cfg.episodes, cfg.seed).tolist()
    if cfg.gif:
        write_gif(q_net, env_id, cfg.seed, cfg.gif)
    result = {"env": env_id, "returns": returns, "return_mean": float(np.mean(returns))}
    print(
        json.dumps(result)
        if cfg.json
        else f"{env_id}: returns {[round(r, 1) for r in returns]} (mean {result['return_mean']:.1f})"
    )
    if cfg.gif and not cfg.json:
        print(f"wrote {cfg.gif}")
    return result


def app_tab():
    """`showcase app`: play one episode of the kept policy -> its animation and its return."""
    import tempfile

    def load(run_dir: str, device: torch.device):
        q_net, env_id = load_policy(run_dir, None, device)
        return q_net, env_id, Path(tempfile.mkdtemp(prefix="showcase-episodes-"))

    def infer(session, seed) -> tuple:
        q_net, env_id, folder = session
        seed = int(seed)
        (episode_return,) = evaluate_policy(q_net, env_id, 1, seed).tolist()
        gif = folder / f"episode-{seed}.gif"
        write_gif(q_net, env_id, seed, str(gif))
        return str(gif), f"{env_id}, seed {seed}: return {episode_return:.1f}"

    return Tab(
        inputs=[Widget("slider", "episode seed", {"minimum": 0, "maximum": 1000, "value": 7})],
        outputs=[Widget("image", "the episode"), Widget("text", "return", {"lines": 1})],
        load=load,
        infer=infer,
        button="Play an episode",
    )
