import pytest
import torch

from shortcutlab.models import REGISTRY, build
from shortcutlab.sae import SAE, explained_variance, hidden_acts, l0, recovered, train_sae
from shortcutlab.sae_analysis import feature_labels, mutual_information


def test_explained_variance_and_l0_hand_made():
    x = torch.tensor([[1.0, 0.0], [3.0, 0.0]])  # mean (2, 0): total variance 2
    assert explained_variance(x, x) == 1.0
    assert explained_variance(x, x.mean(0).expand_as(x)) == pytest.approx(0.0)
    x_hat = torch.tensor([[1.5, 0.0], [2.5, 0.0]])  # error 0.5
    assert explained_variance(x, x_hat) == pytest.approx(1 - 0.5 / 2)
    assert explained_variance(x + 100, x_hat + 100) == pytest.approx(1 - 0.5 / 2)  # about the mean, not zero
    f = torch.tensor([[0.0, 1.0, 2.0], [0.0, 0.0, 3.0]])
    assert l0(f) == 1.5


def test_topk_keeps_exactly_k():
    torch.manual_seed(0)
    sae = SAE(16, 64, "topk", k=5)
    f = sae.encode(torch.randn(32, 16) * 5)
    assert ((f > 0).sum(1) <= 5).all() and ((f > 0).sum(1) == 5).float().mean() > 0.9


def test_decoder_norm_constraint_holds_after_training_steps():
    torch.manual_seed(0)
    acts = torch.randn(512, 8).relu()
    sae, hist = train_sae(acts, "l1", 32, k=4, l1=1e-3, epochs=2, lr=1e-2, batch_size=64, seed=0, resample_every=4)
    assert torch.allclose(sae.dec.norm(dim=1), torch.ones(32), atol=1e-5)
    assert hist[-1]["mse"] < hist[0]["mse"] * 1.5


class IdentitySAE(SAE):
    def forward(self, x):
        return x, x


def test_splicing_an_identity_sae_recovers_everything():
    torch.manual_seed(0)
    model = build("lazy").eval()
    x = torch.rand(64, 3, 28, 28)
    y = model(x).argmax(1)
    r = recovered(
        model, hidden_acts(model, x), y, IdentitySAE(64, 64), torch.zeros(64), (torch.zeros(64), torch.ones(64))
    )
    assert r["acc_recovered"] == 1.0 and r["ce_recovered_vs_zero"] == pytest.approx(1.0)
    assert r["ce_recovered_vs_mean"] == pytest.approx(1.0)


@pytest.mark.parametrize("arch", sorted(REGISTRY))
def test_logits_from_hidden_equal_the_full_forward(arch):
    torch.manual_seed(0)
    model = REGISTRY[arch]().eval()
    x = torch.rand(8, 3, 28, 28)
    with torch.no_grad():
        assert torch.allclose(model.logits_from_hidden(hidden_acts(model, x)), model(x), atol=1e-5)


def test_mutual_information_and_labels():
    digit = torch.arange(100) % 10
    color = (torch.arange(100) // 10) % 10
    f = torch.zeros(100, 3)
    f[:, 0] = (digit == 3).float()  # a shape feature
    f[:, 1] = (color == 5).float()  # a color feature
    mi_d = mutual_information(f > 0, digit)
    assert mi_d[0] > 0.4 and mi_d[1] < 1e-6
    lab = feature_labels(f, digit, color)
    assert lab["kind"].tolist() == [1, 0, -1]  # shape-like, color-like, dead


def _hist(n, loss, ev, l0, dead):
    return [
        {
            "epoch": i + 1,
            "mse": loss(i),
            "loss": loss(i),
            "val_explained_variance": ev(i),
            "val_l0_fraction": l0(i),
            "val_dead_fraction": dead(i),
        }
        for i in range(n)
    ]


def test_convergence_is_judged_on_the_held_out_readouts_not_the_creeping_objective():
    from shortcutlab.metrics import flatten
    from shortcutlab.report_analysis import is_converged
    from shortcutlab.sae import convergence

    # a power-law objective (always ~10% lower per tenth) whose readouts have settled: converged
    settled = convergence(_hist(20, lambda i: 1 / (i + 1), lambda i: 0.99, lambda i: 0.09, lambda i: 0.05))
    assert settled["tail_epochs"] == 2 and settled["rel_loss_drop"] > 0.05
    assert is_converged(settled, 64) is True
    # the dead share still swinging by 3 latents of 64 over the last tenth: not converged
    swing = convergence(_hist(20, lambda i: 1.0, lambda i: 0.99, lambda i: 0.09, lambda i: 0.05 + 3 / 64 * (i % 2)))
    assert swing["dead_fraction_tail_range"] == 3 / 64 and is_converged(swing, 64) is False
    assert is_converged(swing, 16) is True  # the same swing is within 2 latents of a 16-latent dictionary
    rising_ev = convergence(_hist(20, lambda i: 1.0, lambda i: 0.9 + 0.01 * i, lambda i: 0.09, lambda i: 0.0))
    assert is_converged(rising_ev, 64) is False
    one = convergence(_hist(1, lambda i: 1.0, lambda i: 0.9, lambda i: 0.1, lambda i: 0.0))
    assert "rel_loss_drop" not in one and is_converged(one, 64) is None  # one epoch: nothing to judge by
    # readouts that swing at the full learning rate and freeze once it decays: judged before the decay
    decayed = _hist(20, lambda i: 1.0, lambda i: 0.99, lambda i: 0.09, lambda i: 0.1 * (i % 2) if i < 14 else 0.0)
    for i, h in enumerate(decayed):
        h["lr_factor"] = 1.0 if i < 14 else (20 - i) / 7
    c = convergence(decayed)
    assert c["window_end_epoch"] == 14 and c["dead_fraction_tail_range"] == 0.1 and is_converged(c, 64) is False
    no_readouts = convergence([{"epoch": i + 1, "mse": 1.0, "loss": 1.0} for i in range(20)])
    assert is_converged(no_readouts, 64) is None
    for c in (settled, swing, one, no_readouts):
        flatten(c)  # numbers only: the metrics contract accepts it


def test_lr_decay_and_monitor():
    """lr_decay = 0 is the old constant-lr training, bit for bit (so the option changes nothing unless asked);
    a decay changes the run; the monitor only adds held-out readouts per epoch."""
    torch.manual_seed(0)
    acts = torch.randn(512, 8).relu()
    kw = dict(k=4, l1=1e-3, epochs=3, lr=1e-2, batch_size=64, seed=0, resample_every=4)
    a, ha = train_sae(acts, "topk", 32, **kw)
    b, hb = train_sae(acts, "topk", 32, lr_decay=0.0, monitor=acts[:100], **kw)
    c, _ = train_sae(acts, "topk", 32, lr_decay=0.5, **kw)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))
    assert not torch.equal(a.dec, c.dec)
    assert [h["mse"] for h in ha] == [h["mse"] for h in hb]
    assert {"val_explained_variance", "val_l0_fraction", "val_dead_fraction"} <= set(
        hb[-1]
    ) and "val_explained_variance" not in ha[-1]


def test_a_run_can_size_its_own_dictionary():
    """sae.runs.<name>.expansion / .k override the section's (the lazy TopK SAE sized to its layer)."""
    from shortcutlab.params import load

    p = load("params.yaml")
    runs, cfg = p["sae"].runs, p["sae"]
    assert runs["lazy-topk"].expansion is None and runs["lazy-topk"].k is None  # the study's 4x dictionary
    layer = runs["lazy-topk-layer"]
    assert layer.expansion == 1 and layer.k * 10 <= layer.expansion * 64 < cfg.expansion * 64
