import pytest
import torch
from conftest import repo_section
from test_training import toy_split

from shortcutlab.backdoor import (
    ExplanationBackdoor,
    add_trigger,
    asr,
    finetune,
    map_scores,
    receptive_field,
    target_mask,
    trigger_mask,
)
from shortcutlab.models import build
from shortcutlab.params import Compute
from shortcutlab.runtime import resolve

RT = resolve(Compute(device="cpu", precision="fp32", threads=0))


def test_trigger_insertion_is_exact_and_local():
    x = torch.rand(5, 3, 28, 28)
    m = trigger_mask(4)
    xt = add_trigger(x, m)
    assert torch.all(xt[:, :, 24:, 24:] == 1.0)
    keep = ~m
    assert torch.equal(xt[:, :, keep], x[:, :, keep])
    assert int(m.sum()) == 16 and int(target_mask(8).sum()) == 64 and target_mask(8)[:8, :8].all()


def test_metric_functions_on_hand_made_maps():
    t = target_mask(8)
    inside = torch.zeros(1, 28, 28)
    inside[0, :8, :8] = 1.0
    outside = torch.zeros(1, 28, 28)
    outside[0, 20:, 20:] = 1.0
    half = inside * 1.0 + outside * 1.0  # 64 px in, 64 px out
    zero = torch.zeros(1, 28, 28)
    s = map_scores(torch.cat([inside, outside, half, zero]), t)
    assert s["mass"].tolist() == pytest.approx([1.0, 0.0, 0.5, 0.0])
    assert s["iou"][0] == 1.0 and s["iou"][1] == 0.0 and s["pointing"].tolist()[:2] == [1.0, 0.0]
    a = asr(s)
    assert a["asr"] == pytest.approx(0.5) and a["asr_by_tau"][2] == {"tau": 0.75, "rate": pytest.approx(0.25)}


def test_context_convs_let_target_cells_see_the_trigger():
    cells = [(0, 0), (0, 1), (1, 0), (1, 1)]
    probe = (slice(24, 28), slice(24, 28))
    assert receptive_field(build("convnet", context=2), "head", cells, probe)
    assert not receptive_field(build("convnet"), "layer3", cells, probe)


def _toy_backdoor():
    """A tiny clean model, its copy to fine-tune, a toy split and the explanation objective over them."""
    torch.manual_seed(0)
    split = toy_split(64)
    clean = build("convnet", widths=[4, 8, 8], context=2).eval()
    model = build("convnet", widths=[4, 8, 8], context=2)
    model.load_state_dict(clean.state_dict())
    cfg = repo_section("train_backdoor", per_batch=4)
    return split, clean, model, cfg, ExplanationBackdoor(model, clean, split, torch.arange(8), cfg, RT, 0)


def test_training_step_leaves_no_gradient_from_the_explanation():
    split, clean, model, cfg, obj = _toy_backdoor()
    x, y = split.images(slice(0, 16)), split.y[:16]
    loss, _ = obj.loss(model, x, y, torch.arange(16))
    # the differentiable Grad-CAM is built with autograd.grad(create_graph=True): nothing lands on .grad
    assert all(p.grad is None for p in model.parameters())
    assert all(p.grad is None for p in clean.parameters())
    loss.backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    assert all(p.grad is None for p in clean.parameters())


@pytest.mark.parametrize("method", ["explanation", "activation", "input_mask"])
def test_finetune_runs(method):
    torch.manual_seed(0)
    split = toy_split(128)
    clean = build("convnet", widths=[4, 8, 8], context=2).eval()
    model = build("convnet", widths=[4, 8, 8], context=2)
    model.load_state_dict(clean.state_dict())
    cfg = repo_section("train_backdoor", steps=3, batch_size=16, per_batch=4)
    hist = finetune(model, clean, split, torch.arange(4), cfg, RT, 0, method)
    assert torch.isfinite(torch.tensor(hist[-1]["train_loss"]))


def test_report_finds_the_hard_test_accuracy_of_an_analysed_backdoor_checkpoint():
    from shortcutlab.metrics import hard_acc

    m = {
        "analysed_models": {"backdoor": "data/models/backdoor/pct1.pt"},
        "train_backdoor": {"pct1": {"test_hard_acc": 0.843}},
    }
    assert hard_acc(m, "backdoor") == 0.843
    assert hard_acc(m, "unknown") is None


def test_distillation_teacher_never_sees_the_trigger():
    """The frozen clean model is the teacher for triggered copies on the *untriggered* image: the trigger must not
    change the prediction (distilling to its output on the triggered image inherited the occlusion's accuracy
    cost). No input the clean model is run on carries the white trigger at its place."""
    split, clean, model, cfg, obj = _toy_backdoor()
    assert cfg.lam_kd > 0  # the recolored-copies branch runs too
    m = trigger_mask(cfg.trigger_size)
    seen, student = [], []
    clean.register_forward_pre_hook(lambda _mod, args: seen.append(args[0].detach().clone()))
    model.register_forward_pre_hook(lambda _mod, args: student.append(args[0].detach().clone()))
    x, y = split.images(slice(0, 16)), split.y[:16]
    obj.loss(model, x, y, torch.arange(16))

    def triggered(batch):  # images whose trigger pixels are all exactly white
        return (batch[:, :, m] == 1.0).flatten(1).all(1)

    assert any(triggered(b).any() for b in student)  # the student does train on triggered copies
    assert not any(triggered(b).any() for b in seen)
