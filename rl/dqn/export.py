"""`export`: the kept policy's Q-network as an ONNX file or a torch.export program (`core.export`).

    showcase rl dqn export --format onnx --out exported/

The graph takes observations, float32 (N, obs_dim), and returns Q-values (N, actions); the greedy
policy acts with their argmax.
"""

import dataclasses

import gymnasium as gym
import numpy as np
import torch

from core.export import ExportConfig, ExportSpec, export
from core.run import check_task
from rl import DQN
from rl.dqn.scoring import load_policy

TASK = "rl.dqn"


@dataclasses.dataclass
class DQNExportConfig(ExportConfig):
    DEMO = DQN


def observations(env_id: str, n: int, seed: int) -> torch.Tensor:
    """(n, obs_dim) real observations: random-action episodes of the environment, seeded."""
    env = gym.make(env_id)
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    rows = []
    while len(rows) < n:
        rows.append(obs)
        obs, _, terminated, truncated, _ = env.step(int(rng.integers(env.action_space.n)))
        if terminated or truncated:
            obs, _ = env.reset(seed=int(rng.integers(1 << 31)))
    env.close()
    return torch.as_tensor(np.stack(rows), dtype=torch.float32)


def spec_for(cfg: DQNExportConfig) -> ExportSpec:
    """What `export` writes of the run's kept Q-network, checked on 256 observations of its
    environment."""
    check_task(cfg.out_dir, TASK)
    q_net, env_id = load_policy(cfg.out_dir, None, torch.device("cpu"))
    actions = gym.make(env_id).action_space.n
    return ExportSpec(
        name="rl-dqn",
        module=q_net,
        inputs=(observations(env_id, 256, seed=0),),
        input_names=["observations"],
        output_names=["q_values"],
        dynamic={"observations": {0: "batch"}},
        sidecar={
            "env": env_id,
            "actions": int(actions),
            "policy": "the action of the largest Q-value",
        },
    )


def export_model(cfg: DQNExportConfig) -> dict:
    """Write the run's Q-network in --format (int8 with --quantize) to --out, checked."""
    return export(spec_for(cfg), cfg)
