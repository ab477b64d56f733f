"""Benchmark: the arithmetic floor of a `dvc repro` and how far a measured run is from it.

The floor of a configuration = its FLOPs / this machine's measured bf16 matmul peak. FLOPs are counted per
stage from params: forward FLOPs per image of every architecture (``torch.utils.flop_counter`` on the
configured widths) times the images each stage pushes through it (epochs x images x seeds, method
multipliers such as two views for consistency, two models for LfF, the backdoor's second-order Grad-CAM).
Conventions: training step = 3 forwards (forward + backward), an input-gradient pass (attacks, saliency) =
2 forwards, evaluation = 1. PGD is counted without early stopping (an upper bound of what it needs).
What this leaves out (small next to training): HSIC, SAE training, dataset generation, report.

    python benchmarks/floor.py [--params params.yaml] [--log repro.log [--log later.log]] [--peak-gflops G]
                               [--per-stage]

``--log``: a `dvc repro` log (our stages print "<stage>: done in <s>s"); the table then adds each group's
measured seconds and achieved share of the peak, and the run's ratio to its floor. Only the stages of the
current pipeline count (a log of an older pipeline may hold stages it no longer has). ``--peak-gflops``: the
bf16 peak measured when the logs were made, instead of measuring it now. ``--per-stage``: every stage's
FLOPs, arithmetic and roofline floors and measured seconds, the most seconds above its roofline floor first.
Attack and explain count each analysed model at its own architecture (read from where the pipeline writes it).
Run it alone.

The roofline floor beside it (``roofline.py``): each stage also has to move bytes, eager bf16 PyTorch's
operator-by-operator traffic per image (counted on one training step of its architecture) under the same
multipliers, over the measured streaming bandwidth; a stage's roofline floor is the larger of its two floors. That is
the floor an eager run can approach: the small models are bound by bandwidth, not by arithmetic.
``--bandwidth-gbs``: the bandwidth measured with the logs, instead of measuring it now.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))  # roofline.py lives beside this file
from roofline import bytes_per_forward, stream_bandwidth  # noqa: E402

from shortcutlab.debias import METHODS, arch_kwargs
from shortcutlab.models import build
from shortcutlab.params import load

N_TRAIN, N_EVAL = 50_000, 10_000  # our training split; val, hard and easy tests hold 10,000 each
SPLITS_EVAL = 50_000 + 3 * N_EVAL  # evaluate_model's final pass over every split (train included)


def matmul_peak(dtype=torch.bfloat16, n: int = 4096, reps: int = 5, trials: int = 9) -> float:
    """FLOP/s of an n x n matmul: the median of ``trials`` timings of ``reps`` products, after a warm-up trial
    (on an AMX Xeon the first trials run at two thirds of the later ones)."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    rates = []
    for _ in range(trials + 1):
        t0 = time.perf_counter()
        for _ in range(reps):
            a @ b
        rates.append(2 * n**3 * reps / (time.perf_counter() - t0))
    return statistics.median(rates[1:])


def fwd(arch: str, **kw) -> float:
    """Forward FLOPs of one image."""
    with FlopCounterMode(display=False) as fc:
        build(arch, **kw).eval()(torch.rand(1, 3, 28, 28))
    return float(fc.get_total_flops())


def training_flops(p: dict, fwd=fwd) -> tuple[dict[str, float], dict]:
    """FLOPs per training stage (DVC stage names) and the forward FLOPs of the shared architectures."""
    td = p["train_debiased"]
    conv = {"widths": list(td.convnet_widths), "context": td.convnet_context}
    f = {"lazy": fwd("lazy"), "two_conv": fwd("two_conv"), "convnet": fwd("convnet", **conv)}
    f["color_net"] = fwd("color_net")
    out: dict[str, float] = {}
    lz = p["train_lazy"]
    per_epoch_eval = 2 * N_EVAL  # val + hard test logged per epoch
    out["train-lazy"] = len(lz.seeds) * f["lazy"] * (lz.epochs * (3 * N_TRAIN + per_epoch_eval) + SPLITS_EVAL)
    for name, cfg in td.methods.items():
        arch = METHODS[name].arch
        unit = fwd(arch, **arch_kwargs(name, cfg, td)) if arch == "shape_cnn" else f[arch]
        mult = {"consistency": 6, "consistency_convnet": 6, "lff": 6}.get(name, 3)
        extra = 0.0
        if name == "rebias":
            extra = cfg.epochs * 3 * N_TRAIN * f["color_net"]
        if name == "jtt":  # identification epochs; upweighted errors ~ 5% of the data x (up - 1)
            extra = cfg.id_epochs * 3 * N_TRAIN * unit
            mult = 3 * (1 + 0.05 * (cfg.up - 1))
        if name == "suppression":
            extra = cfg.probe_epochs * 3 * N_TRAIN * unit
        seeds = len(cfg.seeds or td.seeds)
        out[f"train-debiased@{name}"] = seeds * (
            cfg.epochs * (mult * N_TRAIN + N_EVAL) * unit + SPLITS_EVAL * unit + extra
        )
    bs = p["bias_sweep"]
    for b in bs.biases:
        for name in ["lazy", *bs.methods]:
            cfg = lz if name == "lazy" else td.methods[name]
            unit = f["lazy"] if name == "lazy" else f["convnet"]
            mult = {"consistency_convnet": 6, "lff": 6, "jtt": 3.0 + 0.15 * 19}.get(name, 3)
            stage = f"bias-sweep-lazy@{b}" if name == "lazy" else f"bias-sweep@{b}-{name}"
            out[stage] = len(bs.seeds) * unit * (cfg.epochs * (mult * N_TRAIN + N_EVAL) + SPLITS_EVAL)
    ta = p["train_attention"]
    for name, run in ta.runs.items():
        unit = fwd(run.arch, **ta.arch_kwargs(run.arch))
        mult = 6 if run.method == "consistency" else 3
        out[f"train-attention@{name}"] = len(run.seeds) * unit * (run.epochs * (mult * N_TRAIN + N_EVAL) + SPLITS_EVAL)
    vit = fwd("vit", **ta.arch_kwargs("vit"))
    out["train-vit-frozen"] = len(ta.frozen.seeds) * vit * (ta.frozen.epochs * (N_TRAIN + N_EVAL) + SPLITS_EVAL)
    return out, f


def backdoor_flops(p: dict, fwd=fwd) -> dict[str, float]:
    tb = p["train_backdoor"]
    unit = fwd("convnet", widths=list(tb.widths), context=2)
    out = {"train-backdoor-clean": tb.clean_epochs * 3 * N_TRAIN * unit}
    b, pb, ng = tb.batch_size, tb.per_batch, tb.n_negative
    for name, r in tb.runs.items():
        if r.method == "explanation":  # second-order Grad-CAM on all rows, teacher maps, KD on recolored copies
            step = 5 * (b + pb + ng) + 2 * (b + ng) + pb + 4 * b
        else:
            step = 3 * (b + pb)
        evals = (2 + 3 * len(tb.transfer)) * tb.n_eval * 2 + SPLITS_EVAL  # triggered maps, transfer, accuracy
        out[f"train-backdoor@{name}"] = unit * (tb.epochs * tb.steps * step + tb.defence_epochs * 3 * N_TRAIN + evals)
    return out


def analysed_flops(path: str, p: dict, fwd=fwd) -> float:
    """Forward FLOPs of an analysed model, from where the pipeline writes it: data/models/lazy.pt,
    data/models/debiased/<method>, data/models/backdoor/<run>.pt, data/models/attention/<run>.pt."""
    parts, stem = Path(path).parts, Path(path).stem
    if stem == "lazy":
        return fwd("lazy")
    if "debiased" in parts and stem in METHODS:
        td = p["train_debiased"]
        return fwd(METHODS[stem].arch, **arch_kwargs(stem, td.methods[stem], td))
    ta = p["train_attention"]
    if "attention" in parts and (stem in ta.runs or stem == "vit_frozen"):
        arch = "vit" if stem == "vit_frozen" else ta.runs[stem].arch
        return fwd(arch, **ta.arch_kwargs(arch))
    if "backdoor" in parts:
        return fwd("convnet", widths=list(p["train_backdoor"].widths), context=2)
    raise SystemExit(f"floor.py: analysed_models path {path!r}: architecture unknown (add it to analysed_flops)")


def analysis_flops(p: dict, fwd=fwd) -> dict[str, float]:
    at, ex = p["attack"], p["explain"]
    out: dict[str, float] = {}
    n_sevens = 1028  # hard-test 7s in MNIST's test set
    for name, path in p["analysed_models"].items():
        unit = analysed_flops(str(path), p, fwd)
        rows = len(at.eps) * ((at.n_targeted or n_sevens) * len(at.targeted_splits) + at.n_untargeted)
        out[f"attack@{name}"] = unit * rows * (2 * (at.steps + 1) * at.restarts + 3)  # PGD + FGSM
        per_image = 2 * (5 + ex.smoothgrad_samples + ex.ig_steps) + 2 * ex.deletion_steps * 7
        out[f"explain@{name}"] = unit * 2 * ex.n_images * per_image + unit * ex.sanity_images * 2 * 7
    return out


def group(stage: str) -> str:
    g = stage.split("@")[0]
    return {"bias-sweep-lazy": "bias-sweep", "train-vit-frozen": "train-attention"}.get(
        g, "train-backdoor" if g.startswith("train-backdoor") else g
    )


def pipeline_stages() -> set[str]:
    """Every stage's name, whichever dvc.yaml defines it (the names stages print: "<name>: done in ...")."""
    from dvc.repo import Repo

    with Repo(".") as repo:
        return {st.name for st in repo.index.stages}


def measured(logs: list[str], stages: set[str] | None = None) -> dict[str, float]:
    """Seconds per stage (DVC's stage names); with several logs a stage's time comes from the last log that ran
    it (a run that reused earlier stages from the cache, completed by the log of the run that computed them).
    With ``stages``, a stage not among them is left out (the pipeline no longer has it)."""
    per_stage: dict[str, float] = {}
    for log in logs:
        for stage, secs in re.findall(r"^(\S+): done in ([\d.]+)s", open(log).read(), re.M):
            # two stages print other names: bias-sweep-lazy@<b> (as bias-sweep@<b>-lazy), train-vit-frozen
            name = re.sub(r"^bias-sweep@(.+)-lazy$", r"bias-sweep-lazy@\1", stage)
            name = "train-vit-frozen" if name == "train-attention@vit_frozen" else name
            if stages is None or name in stages:
                per_stage[name] = float(secs)
    return per_stage


def by_group(per_stage: dict[str, float]) -> dict[str, float]:
    out: dict[str, float] = defaultdict(float)
    for stage, v in per_stage.items():
        out[group(stage)] += v
    return out


def stage_bytes(p: dict) -> dict[str, float]:
    """Bytes each stage must move in eager bf16 (``roofline.bytes_per_forward`` per image in place of forward
    FLOPs, under the same multipliers): the numerator of the bandwidth floor."""
    train, _ = training_flops(p, bytes_per_forward)
    return train | backdoor_flops(p, bytes_per_forward) | analysis_flops(p, bytes_per_forward)


def print_stages(flops: dict[str, float], wall: dict[str, float], peak: float, floors: dict[str, float]) -> None:
    """Every stage with FLOPs, the most seconds above its roofline floor first."""
    print(f"\n{'stage':32} {'TFLOP':>8} {'floor s':>8} {'roofline s':>10} {'measured s':>11} {'above roofline s':>17}")
    rows = [(s, fl, wall[s]) for s, fl in flops.items() if s in wall]
    for s, fl, w in sorted(rows, key=lambda r: floors[r[0]] - r[2]):
        print(f"{s:32} {fl / 1e12:8.2f} {fl / peak:8.1f} {floors[s]:10.1f} {w:11.1f} {w - floors[s]:17.1f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--log", action="append", default=[], help="repeatable: later logs override earlier ones")
    ap.add_argument("--peak-gflops", type=float, default=0.0, help="the bf16 peak measured with the logs")
    ap.add_argument("--bandwidth-gbs", type=float, default=0.0, help="the streaming bandwidth measured with the logs")
    ap.add_argument("--per-stage", action="store_true", help="also every stage, the most seconds above floor first")
    a = ap.parse_args()
    p = load(a.params)
    train, _ = training_flops(p)
    flops = train | backdoor_flops(p) | analysis_flops(p)
    moved = stage_bytes(p)
    peak = a.peak_gflops * 1e9 if a.peak_gflops else matmul_peak()
    bw = a.bandwidth_gbs * 1e9 if a.bandwidth_gbs else stream_bandwidth()
    roof = {s: max(fl / peak, moved[s] / bw) for s, fl in flops.items()}  # each stage at its own bound
    per_stage = measured(a.log, pipeline_stages() if a.log else None)
    wall = by_group(per_stage)
    print(f"bf16 matmul peak ({'given' if a.peak_gflops else 'measured, 4096^2'}): {peak / 1e9:.0f} GFLOP/s; ", end="")
    print(f"streaming bandwidth ({'given' if a.bandwidth_gbs else 'measured, 256 MiB'}): {bw / 1e9:.1f} GB/s")
    head = ("group", "TFLOP", "floor s", "TB moved", "roofline s", "measured s", "share of peak", "of roofline")
    print("{:18} {:>8} {:>8} {:>9} {:>11} {:>11} {:>14} {:>12}".format(*head))
    groups, gbytes, groof = by_group(flops), by_group(moved), by_group(roof)
    for g, fl in sorted(groups.items(), key=lambda kv: -kv[1]):
        w = wall.get(g)
        shares = f"{100 * fl / peak / w:13.1f}% {100 * groof[g] / w:11.1f}%" if w else ""
        print(f"{g:18} {fl / 1e12:8.1f} {fl / peak:8.0f} {gbytes[g] / 1e12:9.2f} {groof[g]:11.0f} ", end="")
        print(f"{f'{w:.0f}' if w else '':>11} {shares}")
    total, floor, roofline = sum(groups.values()), sum(groups.values()) / peak, sum(roof.values())
    print(f"{'total':18} {total / 1e12:8.1f} {floor:8.0f} {sum(moved.values()) / 1e12:9.2f} {roofline:11.0f}")
    if per_stage:
        w = sum(per_stage.values())
        print(f"stage bodies: {w:.0f} s = {w / floor:.2f}x the arithmetic floor, {w / roofline:.2f}x the roofline one")
        print("(the run's wall time adds DVC's per-stage cost)")
        if a.per_stage:
            print_stages(flops, per_stage, peak, roof)


if __name__ == "__main__":
    main()
