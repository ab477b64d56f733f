"""fused.relu_pool: the C++ ReLU + 2x2 max-pool gives PyTorch's relu -> max_pool2d bit for bit, forward and
backward, and a model trained through it has the same bytes as one trained through PyTorch's modules."""

import warnings

import pytest
import torch
from torch.nn import functional as F

from shortcutlab import fused, models, native, sae
from shortcutlab.models import build

needs_ext = pytest.mark.skipif(fused.extension() is None, reason="the extension could not be built here")
CL = torch.channels_last


def bits(t: torch.Tensor) -> torch.Tensor:
    t = t.detach().contiguous()
    if t.dtype in (torch.bfloat16, torch.float32):
        return t.view(torch.int16 if t.dtype == torch.bfloat16 else torch.int32)
    return t.reshape(-1).view(torch.uint8)  # BatchNorm's int64 counter


def awkward(shape, dtype, seed=0) -> torch.Tensor:
    """Random values with the cases a max-pool can get wrong: ties (positive, zero), -0, NaN, infinities."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randn(shape, generator=g).to(dtype)
    flat = y.view(-1)
    flat[::7] = 0.0
    flat[::11] = -0.0
    flat[5::13] = flat[4::13][: len(flat[5::13])]  # equal neighbours: ties go to the first in scan order
    flat[::97] = float("nan")
    flat[3::101] = float("inf")
    flat[6::103] = -float("inf")
    return y.contiguous(memory_format=CL)


def both_ways(y: torch.Tensor, g: torch.Tensor):
    out = []
    for f in (lambda t: F.max_pool2d(F.relu(t), 2), fused.relu_pool):
        t = y.clone().requires_grad_(True)
        p = f(t)
        p.backward(g)
        out.append((p, t.grad))
    return out


@needs_ext
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
@pytest.mark.parametrize("shape", [(16, 32, 28, 28), (8, 64, 14, 14), (4, 16, 7, 7), (3, 5, 9, 11), (2, 3, 2, 3)])
def test_kernel_matches_pytorch_bit_for_bit(shape, dtype):
    y = awkward(shape, dtype)
    g = awkward((shape[0], shape[1], shape[2] // 2, shape[3] // 2), dtype, seed=1)
    (p0, g0), (p1, g1) = both_ways(y, g)
    assert p1.is_contiguous(memory_format=CL) and p1.dtype == dtype
    for a, b, what in ((p0, p1, "forward"), (g0, g1, "gradient")):
        nan = a.isnan()
        assert torch.equal(nan, b.isnan()), f"{what}: NaN elsewhere"
        assert torch.equal(bits(a)[~nan], bits(b)[~nan]), f"{what} differs"
    assert nan.any()  # the test did exercise NaN (PyTorch's relu rewrites its payload: only NaN-ness is kept)


@needs_ext
def test_kernel_is_used_and_saves_one_byte_per_output():
    y = torch.randn(2, 8, 6, 6).to(memory_format=CL).requires_grad_(True)
    p = fused.relu_pool(y)
    assert type(p.grad_fn).__name__ == "_ReluPoolBackward"
    (code,) = p.grad_fn.saved_tensors
    assert code.dtype == torch.uint8 and code.shape == p.shape


def test_unsupported_inputs_take_pytorchs_path():
    for y in (torch.randn(2, 3, 8, 8), torch.randn(2, 3, 8, 8).double().to(memory_format=CL), torch.randn(3, 8, 8)):
        assert not fused.supported(y) or y.dim() != 4
        if y.dim() == 4:
            assert torch.equal(fused.relu_pool(y), F.max_pool2d(F.relu(y), 2))


def test_a_build_failure_warns_and_falls_back(monkeypatch):
    import torch.utils.cpp_extension as ext

    def broken(*a, **k):
        raise RuntimeError("no compiler")

    monkeypatch.setattr(ext, "load", broken)
    fused.extension.cache_clear()
    try:
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            assert fused.extension() is None
        assert any("no compiler" in str(x.message) for x in w)
        y = torch.randn(2, 4, 6, 6).to(memory_format=CL)
        assert torch.equal(fused.relu_pool(y), F.max_pool2d(F.relu(y), 2))
    finally:
        fused.extension.cache_clear()


def test_switch_off(monkeypatch):
    monkeypatch.setenv("SHORTCUTLAB_FUSED", "0")
    fused.extension.cache_clear()
    try:
        assert fused.extension() is None
    finally:
        fused.extension.cache_clear()


def test_the_kernels_step_aside_while_torch_compile_traces(monkeypatch):
    """A kernel is a torch.ops operator without a shape function for fake tensors: while torch.compile traces,
    the models take PyTorch's ops (the same bits; benchmarks/bench_compile.py compiles the models that way)."""
    monkeypatch.setattr(native, "compiling", lambda: True)

    def boom(*a, **k):
        raise AssertionError("a kernel was called while compiling")

    for name in ("_ReluPool", "_ReluAvgPool", "_BnRelu"):
        monkeypatch.setattr(getattr(fused, name), "apply", boom)
    y = torch.randn(2, 16, 8, 8).bfloat16().to(memory_format=CL)
    assert torch.equal(fused.relu_pool(y), F.max_pool2d(F.relu(y), 2))
    assert torch.equal(fused.relu_avg_pool(y, 2), F.adaptive_avg_pool2d(F.relu(y), 2))
    bn = torch.nn.BatchNorm2d(16).train()
    assert not fused._bn_applies(y, bn)


def test_any_hook_gives_the_modules_path():
    m = build("two_conv")
    assert fused.plain(m)
    h = m.conv2.register_forward_hook(lambda *a: None)
    assert not fused.plain(m)
    h.remove()
    h = torch.nn.modules.module.register_module_forward_hook(lambda *a: None)
    try:
        assert not fused.plain(m)
    finally:
        h.remove()
    assert fused.plain(m)
    assert not fused.plain(build("two_conv", channel_scale=[1.0] * 32))  # neuron suppression is a hook ...
    m = build("two_conv", channel_scale=SUPPRESSED)
    assert fused.plain(m, m._own)  # ... the model's own, which its fused path applies (scales > 0)
    h = m.conv2.register_forward_hook(lambda *a: None)
    assert not fused.plain(m, m._own)  # any other hook still gives the modules' path
    h.remove()
    m = build("two_conv", channel_scale=[0.0] + [1.0] * 31)
    assert m._own == () and not fused.plain(m, m._own)  # a zero scale: relu(y * 0) keeps -0, so the modules


def start(arch: str, kw: dict, modules_path: bool):
    """A seeded channels-last model, its Adam and the data generator; with ``modules_path`` a do-nothing hook on the
    model makes every forward call the ReLU, MaxPool and BatchNorm modules."""
    torch.manual_seed(0)
    m = build(arch, **kw).to(memory_format=CL)
    if modules_path:
        m.register_forward_hook(lambda *a: None)
    return m, torch.optim.Adam(m.parameters(), 1e-2), torch.Generator().manual_seed(1)


def train(arch: str, kw: dict, modules_path: bool, bf16: bool, steps: int = 4):
    """A few Adam steps of ``arch`` on random data (channels-last, as the pipeline trains); with
    ``modules_path`` a do-nothing hook makes every forward call the ReLU and MaxPool modules."""
    m, opt, g = start(arch, kw, modules_path)
    for _ in range(steps):
        x = torch.rand(32, 3, 28, 28, generator=g).contiguous(memory_format=CL)
        y = torch.randint(0, 10, (32,), generator=g)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(m(x).float(), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    m.eval()  # an eval-mode input gradient (attacks, saliency) through the same path
    x = torch.rand(8, 3, 28, 28, generator=g).contiguous(memory_format=CL).requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        m(x).float().logsumexp(1).sum().backward()
    return torch.cat([bits(p).flatten() for p in m.state_dict().values()]), bits(x.grad)


SUPPRESSED = [0.3 if c % 4 == 0 else 3.0 for c in range(32)]  # neuron suppression's low / high channel scales
FAMILIES = [
    ("two_conv", {}),
    ("two_conv", {"channel_scale": SUPPRESSED}),
    ("shape_cnn", {"width": 0.25}),
    ("convnet", {"widths": [16, 32, 64], "context": 2}),
    ("attention", {}),
    ("lazy", {}),  # the ReLU + average-pool kernel (bf16 only: fp32 takes PyTorch's pair either way)
]
FAMILY_IDS = ["two_conv", "suppressed", "shape_cnn", "convnet", "attention", "lazy"]


@needs_ext
@pytest.mark.parametrize("bf16", [True, False], ids=["bf16", "fp32"])
@pytest.mark.parametrize("arch,kw", FAMILIES, ids=FAMILY_IDS)
def test_training_through_the_kernel_gives_the_same_bytes(arch, kw, bf16):
    w0, gx0 = train(arch, kw, modules_path=True, bf16=bf16)
    w1, gx1 = train(arch, kw, modules_path=False, bf16=bf16)
    assert torch.equal(w0, w1), f"{arch}: trained weights differ"
    assert torch.equal(gx0, gx1), f"{arch}: input gradients differ"


def test_every_checkout_shares_one_build(tmp_path, monkeypatch):
    """The build is keyed by the source's bytes (not its path), so a second clone does not rebuild it."""
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path / "ext"))
    name, d = native.build_dir(fused.SOURCE, ["-O3"])
    assert name.startswith("shortcutlab_relu_pool_")
    copy = tmp_path / "clone" / "relu_pool.cpp"
    copy.parent.mkdir()
    copy.write_bytes(fused.SOURCE.read_bytes())
    assert native.build_dir(copy, ["-O3"]) == (name, d)
    assert (d / "relu_pool.cpp").read_bytes() == copy.read_bytes()
    copy.write_bytes(copy.read_bytes() + b"\n// changed\n")
    assert native.build_dir(copy, ["-O3"])[0] != name  # another source: another build
    assert native.build_dir(copy, ["-O2"])[0] != native.build_dir(copy, ["-O3"])[0]


needs_avg = pytest.mark.skipif(fused.avg_extension() is None, reason="the ReLU + average-pool kernel is not used here")


def pair_avg(y: torch.Tensor, g: torch.Tensor, f):
    y = y.detach().requires_grad_(True)
    out = f(y)
    out.backward(g)
    return bits(out), bits(y.grad)


@needs_avg
@pytest.mark.parametrize("grad_layout", [torch.contiguous_format, CL], ids=["nchw_grad", "cl_grad"])
@pytest.mark.parametrize("seed", [0, 1])
def test_relu_avg_pool_gives_pytorchs_bits(seed, grad_layout):
    """Values of every sign and size, ±0, infinities; the gradient in either layout (PyTorch rounds it differently)."""
    y = awkward((64, 16, 28, 28), torch.bfloat16, seed)
    y = torch.where(y.isnan(), torch.zeros_like(y), y).contiguous(memory_format=CL)  # NaN: below
    y.mul_(torch.logspace(-6, 6, 28).to(torch.bfloat16)[:, None])  # magnitudes from 1e-6 to 1e6 down the rows
    g = (torch.randn(64, 16, 2, 2, generator=torch.Generator().manual_seed(seed)) * 3).to(torch.bfloat16)
    g = g.contiguous(memory_format=grad_layout)
    want = pair_avg(y, g, lambda t: F.adaptive_avg_pool2d(F.relu(t), 2))
    got = pair_avg(y, g, lambda t: fused.relu_avg_pool(t, 2))
    assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])


@needs_avg
def test_relu_avg_pool_falls_back_where_it_does_not_apply():
    g = torch.Generator().manual_seed(3)
    for y in (
        torch.randn(4, 16, 28, 28, generator=g).contiguous(memory_format=CL),  # fp32
        torch.randn(4, 8, 28, 28, generator=g).to(torch.bfloat16).contiguous(memory_format=CL),  # 8 channels
        torch.randn(4, 16, 27, 27, generator=g).to(torch.bfloat16).contiguous(memory_format=CL),  # overlapping windows
        torch.randn(4, 16, 28, 28, generator=g).to(torch.bfloat16),  # NCHW
    ):
        assert torch.equal(fused.relu_avg_pool(y, 2), F.adaptive_avg_pool2d(F.relu(y), 2))
    y = torch.randn(4, 16, 28, 28, generator=g).to(torch.bfloat16).contiguous(memory_format=CL)
    gout = torch.randn(4, 2, 2, 16, generator=g).to(torch.bfloat16).permute(0, 3, 2, 1)  # a gradient in no layout
    want = pair_avg(y, gout, lambda t: F.adaptive_avg_pool2d(F.relu(t), 2))
    got = pair_avg(y, gout, lambda t: fused.relu_avg_pool(t, 2))
    assert torch.equal(got[1], want[1])


def test_relu_avg_pool_loads_from_inside_no_grad_and_autocast():
    """The load-time check runs its own backward: the first call may come from predict (no_grad, autocast)."""
    fused.avg_extension.cache_clear()
    try:
        y = torch.randn(4, 16, 28, 28).to(torch.bfloat16).contiguous(memory_format=CL)
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            out = fused.relu_avg_pool(y, 2)
        assert torch.equal(out, F.adaptive_avg_pool2d(F.relu(y), 2))
    finally:
        fused.avg_extension.cache_clear()


@pytest.mark.parametrize("bf16", [True, False], ids=["bf16", "fp32"])
@pytest.mark.parametrize("heads", [4, 2], ids=["head_dim16", "head_dim32"])
def test_vit_attention_scale_folded_into_q_gives_the_same_bytes(monkeypatch, bf16, heads):
    """Scaling q by a power of two before q @ k^T is exact: the ViT trains to the same bytes (head dim 16: scale 1/4);
    a head dim whose scale is not a power of two (32) keeps the fp32 product, and the same bytes trivially."""
    from shortcutlab.models import SelfAttention

    kw = {"dim": 64, "depth": 2, "heads": heads, "mlp": 64}
    monkeypatch.setattr(SelfAttention, "fold_scale", False)
    w0, gx0 = train("vit", kw, modules_path=False, bf16=bf16)
    monkeypatch.setattr(SelfAttention, "fold_scale", True)
    w1, gx1 = train("vit", kw, modules_path=False, bf16=bf16)
    assert torch.equal(w0, w1) and torch.equal(gx0, gx1)


# Submodules each family's fused path still calls as modules (models.py passes them to fused.plain as ``calls``):
# a hook on one of them, or inside one, must keep the fused path and see the modules' path's values and gradients.
CALLED = [
    ("lazy", {}, ["classifier", "classifier.2"]),
    ("shape_cnn", {"width": 0.25}, ["block3", "pool", "fc"]),
    ("convnet", {"widths": [16, 32, 64], "context": 0}, ["pool", "fc"]),
    ("attention", {}, ["score", "attention", "pool", "fc"]),
]


def hooked_training(monkeypatch, arch: str, kw: dict, layer: str, modules_path: bool):
    """Three bf16 Adam steps whose loss also uses what a hook on ``layer`` captured (as ReBias uses the ConvNet's
    pooled features), then an eval-mode input gradient through it: every byte, and which path each forward took."""
    from shortcutlab import models

    taken = []

    def spy(*a, **k):
        taken.append(fused.plain(*a, **k))
        return taken[-1]

    monkeypatch.setattr(models, "plain", spy)
    m, opt, g = start(arch, kw, modules_path)
    for _ in range(3):
        x = torch.rand(32, 3, 28, 28, generator=g).contiguous(memory_format=CL)
        y = torch.randint(0, 10, (32,), generator=g)
        with torch.autocast("cpu", dtype=torch.bfloat16), models.capture(m, layer) as box:
            loss = F.cross_entropy(m(x).float(), y) + box["a"].float().square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    m.eval()
    x = torch.rand(8, 3, 28, 28, generator=g).contiguous(memory_format=CL).requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16), models.capture(m, layer) as box:
        (m(x).float().logsumexp(1).sum() + box["a"].float().sum()).backward()
    state = torch.cat([bits(p).flatten() for p in m.state_dict().values()])
    return state, bits(x.grad), bits(box["a"]), taken


@needs_ext
@pytest.mark.parametrize("arch,kw,layers", CALLED, ids=[c[0] for c in CALLED])
def test_a_hook_on_a_module_the_fused_path_calls_keeps_it(monkeypatch, arch, kw, layers):
    for layer in layers:
        *want, via_modules = hooked_training(monkeypatch, arch, kw, layer, modules_path=True)
        *got, via_fused = hooked_training(monkeypatch, arch, kw, layer, modules_path=False)
        assert not any(via_modules) and all(via_fused), f"{arch}/{layer}: the wrong path ran"
        for a, b, what in zip(want, got, ("trained state", "input gradient", "captured value"), strict=True):
            assert torch.equal(a, b), f"{arch}, hook on {layer}: {what} differs"
    m = build(arch, **kw)
    m.get_submodule(layers[0]).register_forward_hook(lambda *a: None)
    assert fused.plain(m, calls=layers[:1]) and not fused.plain(m)  # a hook elsewhere: the modules' path, as before


def test_grad_channels_last_keeps_the_value_and_hands_the_gradient_back_channels_last():
    model = torch.nn.Linear(2, 2)  # no hooks: the gradient is handed back channels-last
    x = torch.randn(4, 8, 7, 7).contiguous(memory_format=CL).requires_grad_(True)
    y = fused.grad_channels_last(x, model)
    assert torch.equal(y, x) and y.stride() == x.stride()
    seen = {}
    h = x.register_hook(lambda g: seen.setdefault("g", g))
    y.mean((2, 3)).sum().backward()  # mean's backward writes NCHW
    h.remove()
    assert seen["g"].is_contiguous(memory_format=CL) and not seen["g"].is_contiguous()
    assert torch.equal(x.grad, torch.full_like(x, 1 / 49))
    for z in (torch.randn(4, 8, 7, 7, requires_grad=True), torch.randn(4, 8, 7, 7).contiguous(memory_format=CL)):
        assert fused.grad_channels_last(z, model) is z  # NCHW, or no gradient wanted: nothing to do
    model.register_forward_hook(lambda *a: None)
    assert fused.grad_channels_last(x, model) is x  # a hook watches the model: the gradient as the pool writes it


FAMILIES_ROUTED = [("convnet", {"widths": [16, 32, 64], "context": 2}), ("attention", {})]
# a module the fused path still calls, under a hook, and the end of it that sees the routed features
WATCHED = {"convnet": ("pool", "input"), "attention": ("score", "input")}


@pytest.mark.parametrize("arch,kw", FAMILIES_ROUTED)
def test_the_pooled_features_get_their_gradient_channels_last(monkeypatch, arch, kw):
    """The ConvNet's fused path hands its last ReLU a channels-last gradient (threshold backward at full speed; in
    training the BatchNorm kernel's backward); the attention CNN's features get both their gradients channels-last.
    test_training_through_the_kernel_gives_the_same_bytes checks the bytes."""
    seen = {}

    def watched(x, model):
        x.register_hook(lambda g: seen.setdefault("g", g))  # the gradient that reaches the last block's output
        return fused.grad_channels_last(x, model)

    monkeypatch.setattr(models, "grad_channels_last", watched)
    m = build(arch, **kw).to(memory_format=CL).eval()
    x = torch.rand(4, 3, 28, 28).contiguous(memory_format=CL).requires_grad_(True)
    m(x).sum().backward()
    assert seen["g"].is_contiguous(memory_format=CL) and not seen["g"].is_contiguous()


@pytest.mark.parametrize("arch,kw", FAMILIES_ROUTED)
def test_a_hook_on_the_last_block_reads_the_gradient_as_before(arch, kw):
    """Grad-CAM++ and LayerCAM reduce the gradient at the CAM layer; a channels-last one would sum in another order
    (the shape CNN's explain metrics changed in their last bits at full size when it was routed whatever the hooks).
    Under a hook on a module the fused path still calls, the gradient that reaches the pooled features is the one the
    modules' path gives: the same values and the same strides. (For these two families it is the same even without
    grad_channels_last's no-hook condition; the unit test above checks the condition.)"""
    name, end = WATCHED[arch]
    grads = []
    for everywhere in (False, True):  # that module's hook alone (the fused path), or every module's path
        torch.manual_seed(0)
        m = build(arch, **kw).to(memory_format=CL).eval()
        seen: dict = {}

        def watch(mod, i, o, seen=seen):
            (i[0] if end == "input" else o).register_hook(lambda g: seen.setdefault("g", g))

        m.get_submodule(name).register_forward_hook(watch)
        if everywhere:
            m.register_forward_hook(lambda *a: None)
        x = torch.rand(4, 3, 28, 28, generator=torch.Generator().manual_seed(1)).contiguous(memory_format=CL)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            m(x).float().logsumexp(1).sum().backward()
        grads.append(seen["g"])
    assert grads[0].stride() == grads[1].stride() and torch.equal(bits(grads[0]), bits(grads[1]))


# ------------------------------------------------------------------------- the TopK SAE's ReLU + top-k (session 31)
needs_topk = pytest.mark.skipif(sae.topk_extension() is None, reason="the ReLU + top-k kernel is not used here")


def topk_both_ways(pre: torch.Tensor, k: int, g: torch.Tensor):
    out = []
    for f in (sae._relu_topk_torch, sae.relu_topk):
        p = pre.clone().requires_grad_(True)
        y = f(p, k)
        y.backward(g)
        out.append((y.detach(), p.grad))
    return out


@needs_topk
@pytest.mark.parametrize(
    "rows,cols,k",
    [(512, 256, 16), (300, 64, 6), (64, 512, 16), (50, 100, 32), (7, 20, 16), (5, 3, 3), (40, 1100, 16)],
)
def test_relu_topk_gives_pytorchs_bits(rows, cols, k):
    g = torch.Generator().manual_seed(rows + cols + k)
    pre = torch.randn(rows, cols, generator=g)
    pre[: rows // 3] -= 2.5  # rows with fewer than k positive entries: zeros are kept among the k
    pre.view(-1)[::17] = -0.0
    pre[-2:, 1::3] = pre[-2:, ::3][:, : len(range(1, cols, 3))]  # equal neighbours: ties wherever the cut falls
    (want, gwant), (got, ggot) = topk_both_ways(pre, k, torch.randn(rows, cols, generator=g))
    assert torch.equal(bits(got), bits(want)) and torch.equal(bits(ggot), bits(gwant))
    assert ((got > 0).sum(1) <= k).all()


@needs_topk
def test_relu_topk_picks_among_tied_entries_as_pytorch_does_and_ranks_nan_first():
    pre = torch.tensor(
        [
            [1.0, 3.0, 2.0, 3.0, 2.0, 0.5, 2.0],  # three 2.0s straddle the cut: PyTorch's own selection picks one
            [float("nan"), 1.0, 4.0, -1.0, 2.0, 3.0, 0.0],  # NaN ranks first
            [-1.0, -0.0, 0.0, -2.0, 0.0, -0.0, 5.0],  # one positive entry: the two zeros kept are PyTorch's pick
            [float("nan"), float("nan"), 1.0, float("nan"), float("nan"), 2.0, 3.0],  # four NaNs for three places
        ]
    )
    for k in (3, 2):
        got, want = sae.relu_topk(pre, k), sae._relu_topk_torch(pre, k)
        assert torch.equal(got.isnan(), want.isnan())
        assert torch.equal(bits(got.nan_to_num(7.0)), bits(want.nan_to_num(7.0)))
        assert ((got != 0).sum(1) <= k).all()
    assert torch.equal(sae.relu_topk(pre, 3)[1, 1:], torch.tensor([0.0, 4.0, 0.0, 0.0, 3.0, 0.0]))


def test_relu_topk_falls_back_where_it_does_not_apply(monkeypatch):
    pre = torch.randn(8, 32)
    for x, k in ((pre.double(), 4), (pre.t(), 4), (pre, 65 if pre.shape[1] > 64 else 33)):
        if k > x.shape[1]:
            continue
        assert torch.equal(sae.relu_topk(x, k), sae._relu_topk_torch(x, k))
    monkeypatch.setattr(sae, "topk_extension", lambda: None)  # no kernel: PyTorch's ops
    assert torch.equal(sae.relu_topk(pre, 4), sae._relu_topk_torch(pre, 4))


@needs_topk
def test_a_topk_sae_trained_through_the_kernel_has_the_same_bytes(monkeypatch):
    acts = torch.randn(600, 16, generator=torch.Generator().manual_seed(0))

    def train():
        model, hist = sae.train_sae(
            acts,
            "topk",
            64,
            k=4,
            l1=0.0,
            epochs=3,
            lr=1e-3,
            batch_size=128,
            seed=0,
            resample_every=2,
            monitor=acts[:100],
        )  # resampling and AuxK every few steps
        return model.state_dict(), hist

    with_kernel = train()
    monkeypatch.setattr(sae, "topk_extension", lambda: None)
    without = train()
    assert with_kernel[1] == without[1]
    for k, v in with_kernel[0].items():
        assert torch.equal(bits(v), bits(without[0][k])), k


def test_relu_topk_steps_aside_while_torch_compile_traces(monkeypatch):
    monkeypatch.setattr(native, "compiling", lambda: True)

    def boom(*a, **k):
        raise AssertionError("the kernel was called while compiling")

    monkeypatch.setattr(sae._ReluTopk, "apply", boom)
    pre = torch.randn(8, 32)
    assert torch.equal(sae.relu_topk(pre, 4), sae._relu_topk_torch(pre, 4))
