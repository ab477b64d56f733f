"""Benchmark: the TopK SAE's activation (relu -> top-k -> scatter) through the C++ kernel (``sae.relu_topk``,
kernels/relu_topk.cpp) against PyTorch's operators, the same bits either way.

Two tables. The activation alone: forward, and forward + backward, per batch at the default runs' shapes, µs
(best of ``--repeat`` timings of ``--calls`` calls). The training it serves: ``sae.train_sae`` as the sae stage
calls it (standardised hidden activations of the train split, the val split as the per-epoch monitor, ``sae``
params of params.yaml) for ``--epochs`` epochs, kernel and operators alternating ``--repeat`` times: seconds per
epoch (median) and whether both trained the same SAE and history, bit for bit. ``--model`` picks the checkpoint
(default the lazy model's; needs ``dvc repro`` up to it); ``--synthetic`` uses random activations instead (no data
needed). Run it alone.

    python benchmarks/bench_sae.py [--model data/models/lazy.pt] [--epochs 10] [--repeat 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import time

import torch

from shortcutlab import sae as S

KERNEL = S.topk_extension


def use_kernel(on: bool) -> None:
    S.topk_extension = KERNEL if on else (lambda: None)


def activation_us(rows: int, cols: int, k: int, on: bool, repeat: int, calls: int) -> tuple[float, float]:
    use_kernel(on)
    pre = torch.randn(rows, cols, generator=torch.Generator().manual_seed(0))
    pg, g = pre.clone().requires_grad_(True), torch.randn(rows, cols)

    def fwd():
        S.relu_topk(pre, k)

    def both():
        pg.grad = None
        S.relu_topk(pg, k).backward(g)

    out = []
    for f in (fwd, both):
        best = float("inf")
        for _ in range(repeat):
            f()
            t0 = time.perf_counter()
            for _ in range(calls):
                f()
            best = min(best, (time.perf_counter() - t0) / calls)
        out.append(best * 1e6)
    return out[0], out[1]


def activations(model_path: str | None, synthetic: bool) -> tuple[torch.Tensor, torch.Tensor]:
    if synthetic:
        g = torch.Generator().manual_seed(0)
        return torch.randn(4096, 64, generator=g), torch.randn(1024, 64, generator=g)
    from shortcutlab.data import load_splits
    from shortcutlab.models import load_model
    from shortcutlab.params import load
    from shortcutlab.runtime import resolve

    rt = resolve(load()["compute"])
    splits = load_splits("data/dataset", names=("train", "val"))
    model = rt.prepare(load_model(model_path)[0]).eval()
    tr, av = (S.hidden_acts(model, splits[n].images(), rt=rt).cpu() for n in ("train", "val"))
    mu, sigma = tr.mean(0), tr.std(0).clamp_min(1e-6)
    return (tr - mu) / sigma, (av - mu) / sigma


def train_once(tr, av, cfg, epochs: int, on: bool) -> tuple[float, str]:
    use_kernel(on)
    t0 = time.perf_counter()
    sae, hist = S.train_sae(
        tr, "topk", cfg["expansion"] * tr.shape[1], k=cfg["k"], l1=cfg["l1"], epochs=epochs, lr=cfg["lr"],
        batch_size=cfg["batch_size"], seed=cfg["seed"], resample_every=cfg["resample_every"],
        lr_decay=cfg["lr_decay"], monitor=av,
    )  # fmt: skip
    secs = (time.perf_counter() - t0) / epochs
    digest = hashlib.sha256(b"".join(v.detach().numpy().tobytes() for v in sae.state_dict().values()))
    return secs, digest.hexdigest() + repr(hist)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="data/models/lazy.pt")
    ap.add_argument("--synthetic", action="store_true", help="random activations instead of a model's")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--calls", type=int, default=200, help="calls per timing of the activation alone")
    ap.add_argument("--json", help="also write the tables here")
    args = ap.parse_args()
    if KERNEL() is None:
        raise SystemExit("bench_sae: the kernel is not built or not used here (see the warning above)")
    cfg = {"expansion": 4, "k": 16, "l1": 5e-4, "lr": 1e-3, "batch_size": 512, "seed": 0, "resample_every": 500,
           "lr_decay": 0.3}  # fmt: skip
    if not args.synthetic:
        from shortcutlab.params import load

        s = load()["sae"]
        cfg = {key: getattr(s, key) for key in cfg}
    rows = []
    for shape in ((cfg["batch_size"], 4 * 64, cfg["k"]), (cfg["batch_size"], 64, 6), (10000, 4 * 64, cfg["k"])):
        ops, ker = (activation_us(*shape, on, args.repeat, args.calls) for on in (False, True))
        rows.append({"shape": list(shape), "ops_us": ops, "kernel_us": ker})
        print(f"activation {shape}: forward {ops[0]:.0f} -> {ker[0]:.0f} µs, forward+backward {ops[1]:.0f} -> "
              f"{ker[1]:.0f} µs")  # fmt: skip
    tr, av = activations(args.model, args.synthetic)
    runs = {True: [], False: []}
    for _ in range(args.repeat):
        for on in (False, True):
            runs[on].append(train_once(tr, av, cfg, args.epochs, on))
    same = len({d for r in runs.values() for _, d in r}) == 1
    ops, ker = (statistics.median(s for s, _ in runs[on]) for on in (False, True))
    print(f"train_sae topk on {tr.shape[0]} x {tr.shape[1]}: {ops:.3f} -> {ker:.3f} s per epoch ({ops / ker:.2f}x), "
          f"same bytes: {same}")  # fmt: skip
    use_kernel(True)
    if args.json:
        out = {"activation": rows, "train": {"ops_s_per_epoch": ops, "kernel_s_per_epoch": ker, "same_bytes": same}}
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
    if not same:
        raise SystemExit("bench_sae: the kernel trained other bytes than PyTorch's operators")


if __name__ == "__main__":
    main()
