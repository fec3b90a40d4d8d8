"""Trains one demo for 3 steps on synthetic data (under torchrun) and prints how many forward
calls its model's modules made in eval mode on this rank: the validation and test decoding.

python -m torch.distributed.run --nproc_per_node 2 ddp_demo_worker.py OUT_DIR DOMAIN TASK
"""

import sys

import core.loop
from core import distributed

eval_calls = 0
real_fit = core.loop.fit


def count(module, inputs):
    global eval_calls
    if not module.training:
        eval_calls += 1


def counting_fit(model, *args, **kwargs):
    for module in model.modules():
        module.register_forward_pre_hook(count)
    return real_fit(model, *args, **kwargs)


if __name__ == "__main__":
    out_dir, domain, task = sys.argv[1:4]
    core.loop.fit = counting_fit  # before the demo's train module imports it
    from core.command import config_class
    from core.parse import build
    from showcase import catalog

    train = catalog.commands(catalog.find(domain, task))["train"]
    cfg = build(
        config_class(train), synthetic=True, max_steps=3, out_dir=out_dir, device="cpu", log_every=1
    )
    report = train(cfg)
    print(f"rank {distributed.rank()} eval calls {eval_calls} metrics {sorted(report['metrics'])}")
