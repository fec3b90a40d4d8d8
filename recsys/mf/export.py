"""`export`: the recommender's scoring function as an ONNX file or a torch.export program
(`core.export`).

    showcase recsys mf export --format onnx --out exported/

The graph takes user rows, int64 (N,), and returns every item's score for each, float32 (N, items):
the predicted rating (methods map and bayes; clip it to 1-5 stars) or a ranking score (bpr). The
sidecar maps rows to the dataset's user and item ids and the items to their titles.
"""

import dataclasses

import torch
from torch import nn

from core.export import ExportConfig, ExportSpec, export
from core.run import check_task, run_config
from recsys import MF
from recsys.mf.model import BiasedMF
from recsys.mf.predict import load_run

TASK = "recsys.mf"


class Scorer(nn.Module):
    """User rows -> all item scores; the SVD++ history is folded into the user vectors."""

    def __init__(self, model: BiasedMF) -> None:
        super().__init__()
        with torch.no_grad():
            users = model.user_factors
            if model.implicit is not None:
                users = users + model.history @ model.implicit  # (U, dim)
        self.user_vectors = nn.Buffer(users.detach().clone())  # (U, dim)
        self.user_bias = nn.Buffer(model.user_bias.detach().clone())  # (U,)
        self.item_factors = nn.Buffer(model.item_factors.detach().clone())  # (I, dim)
        self.item_bias = nn.Buffer(model.item_bias.detach() + model.global_mean)  # (I,)

    def forward(self, users: torch.Tensor) -> torch.Tensor:  # users: (N,) int64
        vectors = self.user_vectors[users]  # (N, dim)
        return (
            self.item_bias + self.user_bias[users, None] + vectors @ self.item_factors.T
        )  # (N, I)


@dataclasses.dataclass
class MFExportConfig(ExportConfig):
    DEMO = MF


def spec_for(cfg: MFExportConfig) -> ExportSpec:
    """What `export` writes of the run's scoring function, checked on the users of 256 test
    ratings."""
    check_task(cfg.out_dir, TASK)
    model, train, test = load_run(cfg.out_dir, cfg.data_dir, torch.device("cpu"))
    return ExportSpec(
        name="recsys-mf",
        module=Scorer(model).eval(),
        inputs=(test.users[:256].clone(),),
        input_names=["users"],
        output_names=["scores"],
        dynamic={"users": {0: "batch"}},
        sidecar={
            "method": run_config(cfg.out_dir)["method"],
            "user_ids": [str(u) for u in train.user_ids],
            "item_ids": [str(i) for i in train.item_ids],
            "titles": list(train.titles),
            "scores": "predicted stars (clip to 1-5) for map and bayes; a ranking score for bpr",
        },
    )


def export_model(cfg: MFExportConfig) -> dict:
    """Write the run's scoring function in --format (int8 with --quantize) to --out, checked."""
    return export(spec_for(cfg), cfg)
