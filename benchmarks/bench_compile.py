"""Benchmark: torch.compile (inductor, CPU) against eager for every model family the pipeline trains.

One training step = forward under the runtime's autocast + cross-entropy + backward + Adam, batch 256 of
synthetic uint8 images converted as in training (bench_models.py's step). Per family, in fresh processes:

- eager: images/s;
- compiled, cold: ``torch.compile(model)`` with an empty inductor cache: seconds until the first step is done
  (tracing + code generation + the C++ build), then images/s;
- compiled, warm: the same in a second process that finds the first one's cache on disk (what a rerun of a
  stage would pay);
- determinism: the parameters after ``--steps`` steps from the same initial weights, compiled twice in one
  process (bytes equal?) and compiled against eager (largest absolute difference: does compiling change what
  a stage computes?).

    python benchmarks/bench_compile.py [--families two_conv,vit] [--steps 20] [--json out.json]

Run it alone: two torch processes at once slow each other down.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

FAMILIES = {
    "lazy": ("lazy", {}),
    "two_conv": ("two_conv", {}),
    "shape_cnn": ("shape_cnn", {"width": 1.0}),
    "convnet": ("convnet", {"widths": [16, 32, 64], "context": 2}),
    "attention": ("attention", {}),
    "vit": ("vit", {}),
}


def _worker(family: str, steps: int, batch: int, check: bool) -> dict:
    import torch
    import torch.nn.functional as F

    from shortcutlab.models import build
    from shortcutlab.optim import Adam
    from shortcutlab.params import Compute
    from shortcutlab.runtime import resolve

    rt = resolve(Compute(device="cpu", precision="auto", threads=0))
    arch, kw = FAMILIES[family]
    gen = torch.Generator().manual_seed(0)
    x8 = torch.randint(0, 256, (batch, 3, 28, 28), dtype=torch.uint8, generator=gen)
    y = torch.randint(0, 10, (batch,), generator=gen)

    def run(compiled: bool, n: int) -> tuple[float, float, torch.nn.Module]:
        torch.manual_seed(0)
        model = rt.prepare(build(arch, **kw)).train()
        fn = torch.compile(model) if compiled else model
        opt = Adam(list(model.parameters()), lr=1e-3)

        def step():
            x = rt.input(x8.float().div_(255.0))
            with rt.autocast():
                loss = F.cross_entropy(fn(x).float(), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        t0 = time.perf_counter()
        step()
        first = time.perf_counter() - t0
        for _ in range(2):
            step()
        t0 = time.perf_counter()
        for _ in range(n):
            step()
        return first, batch * n / (time.perf_counter() - t0), model

    def flat(m):
        return torch.cat([p.detach().float().flatten() for p in m.parameters()])

    out = {"family": family, "precision": rt.describe()}
    first, ips, m_comp = run(True, steps)
    out |= {"compiled_first_step_s": first, "compiled_images_per_s": ips}
    if check:
        _, ips_eager, m_eager = run(False, steps)
        _, _, m_comp2 = run(True, steps)
        a, b, e = flat(m_comp), flat(m_comp2), flat(m_eager)
        out |= {
            "eager_images_per_s": ips_eager,
            "compiled_twice_bytes_equal": bool(torch.equal(a, b)),
            "compiled_vs_eager_max_abs_diff": float((a - e).abs().max()),
        }
    return out


def measure(family: str, steps: int, batch: int) -> dict:
    with tempfile.TemporaryDirectory() as cache:
        env = os.environ | {"TORCHINDUCTOR_CACHE_DIR": cache, "TORCHINDUCTOR_FX_GRAPH_CACHE": "1"}
        rows = []
        for check in (True, False):  # cold cache (+ eager and the determinism checks), then warm
            cmd = [sys.executable, __file__, "--worker", family, "--steps", str(steps), "--batch", str(batch)]
            cmd += ["--check"] if check else []
            res = subprocess.run(cmd, env=env, capture_output=True, text=True)
            if res.returncode:
                raise RuntimeError(f"{family}: worker failed\n{res.stderr[-3000:]}")
            rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
    cold, warm = rows
    return cold | {
        "warm_first_step_s": warm["compiled_first_step_s"],
        "warm_images_per_s": warm["compiled_images_per_s"],
    }


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--families", default=",".join(FAMILIES))
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--json", default="")
    ap.add_argument("--worker", default="")
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(_worker(args.worker, args.steps, args.batch, args.check)))
        sys.exit(0)
    rows = []
    for fam in args.families.split(","):
        r = measure(fam, args.steps, args.batch)
        rows.append(r)
        print(
            f"{fam:10s} [{r['precision']}] eager {r['eager_images_per_s']:8.0f} img/s | compiled "
            f"{r['compiled_images_per_s']:8.0f} img/s ({r['compiled_images_per_s'] / r['eager_images_per_s']:.2f}x), "
            f"first step {r['compiled_first_step_s']:5.1f} s cold, {r['warm_first_step_s']:5.1f} s warm | "
            f"compiled twice equal: {r['compiled_twice_bytes_equal']}, "
            f"vs eager max |diff| {r['compiled_vs_eager_max_abs_diff']:.2e}",
            flush=True,
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"steps": args.steps, "batch": args.batch, "rows": rows}, f, indent=2)
