import torch

from core.models import MLP


def test_mlp_shapes_and_parameter_count():
    mlp = MLP(4, [256, 256], 2)
    assert mlp(torch.zeros(5, 4)).shape == (5, 2)
    assert sum(p.numel() for p in mlp.parameters()) == 4 * 256 + 256 + 256 * 256 + 256 + 256 * 2 + 2


def test_mlp_overfits_one_batch():
    torch.manual_seed(0)
    mlp = MLP(8, [64], 3)
    x, y = torch.randn(16, 8), torch.randint(0, 3, (16,))
    opt = torch.optim.Adam(mlp.parameters(), 1e-2)
    for _ in range(200):
        loss = torch.nn.functional.cross_entropy(mlp(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.01
