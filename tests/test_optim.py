"""shortcutlab.optim.Adam is torch.optim.Adam's update, bit for bit (it exists only to skip torch.optim's
import of torch._dynamo)."""

import math

import pytest
import torch

from shortcutlab.optim import Adam, cosine


def _train(make_opt, schedule, steps=25, wd=0.0):
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(4 * 6 * 6, 10)
    )
    x, y = torch.randn(16, 3, 8, 8), torch.randint(0, 10, (16,))
    opt, set_lr = make_opt(model.parameters(), wd)
    for i in range(steps):
        set_lr(i)
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return [p.detach().clone() for p in model.parameters()]


@pytest.mark.parametrize("schedule", ["constant", "cosine"])
@pytest.mark.parametrize("wd", [0.0, 1e-3])
def test_adam_matches_torch_bit_for_bit(schedule, wd):
    total, lr = 20, 3e-3
    f = (lambda i: cosine(i, total)) if schedule == "cosine" else (lambda i: 1.0)

    def ours(params, wd):
        opt = Adam(params, lr=lr, weight_decay=wd)
        return opt, lambda i: setattr(opt, "lr", lr * f(i))

    def reference(params, wd):
        opt = torch.optim.Adam(params, lr=lr, weight_decay=wd, foreach=False)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, f)
        return opt, lambda i: sched.step() if i else None

    for a, b in zip(_train(ours, schedule, wd=wd), _train(reference, schedule, wd=wd), strict=True):
        assert torch.equal(a, b)


def test_adam_skips_parameters_without_gradient_and_rejects_empty():
    a, b = torch.nn.Parameter(torch.ones(3)), torch.nn.Parameter(torch.ones(3))
    opt = Adam([a, b], lr=0.1)
    (a * 2).sum().backward()
    opt.step()
    assert not torch.equal(a, torch.ones(3)) and torch.equal(b, torch.ones(3))
    with pytest.raises(ValueError, match="empty"):
        Adam([], lr=0.1)


def test_cosine_schedule_ends():
    assert cosine(0, 10) == 1.0 and cosine(10, 10) == 0.0 and cosine(20, 10) == 0.0
    assert math.isclose(cosine(5, 10), 0.5)
