"""The benchmarks still run against today's library (a smoke run at tiny sizes: nothing is timed or asserted
about speed here; speed lives in the benchmarks' own output)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_bench_models_runs_every_family(tmp_path):
    out = tmp_path / "bench.json"
    subprocess.run(
        [
            sys.executable,
            "benchmarks/bench_models.py",
            *("--batch", "8", "--steps", "1", "--peak-size", "256", "--bandwidth-mib", "8", "--json", str(out)),
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=300,
    )
    rows = json.loads(out.read_text())["rows"]
    families = " ".join(r["family"] for r in rows)
    for family in ("lazy", "shape_cnn", "ViT", "MLP"):
        assert family in families
    assert all(r["bf16_images_per_s"] > 0 and r["fp32_images_per_s"] > 0 for r in rows)
    # bf16 activations are half the bytes of fp32 ones: a convolutional step moves less per image
    conv = next(r for r in rows if r["family"] == "two_conv")
    assert 0 < conv["bf16_mb_per_image"] < conv["fp32_mb_per_image"]
    assert all(r[f"{p}_bound"] in ("arithmetic", "bandwidth") for r in rows for p in ("bf16", "fp32"))


def test_traffic_counts_what_each_operator_reads_and_writes():
    import torch

    roofline = _load_benchmark("roofline")
    x = torch.ones(1000)  # 4,000 bytes
    assert roofline.count_traffic(lambda: torch.relu(x)).total == 8000  # read x, write the result
    assert roofline.count_traffic(lambda: x.view(10, 100).t()).total == 0  # views move nothing
    assert roofline.count_traffic(lambda: torch.empty(1000)).total == 0  # nor do unfilled allocations
    assert roofline.count_traffic(lambda: torch.zeros(1000)).total == 4000  # a fill writes
    y = torch.empty(1000)
    assert roofline.count_traffic(lambda: torch.add(x, x)).total == 8000  # x is read once
    assert roofline.count_traffic(lambda: torch.add(x, 1, out=y)).total == 8000  # an out= tensor is not read
    assert roofline.count_traffic(lambda: y.copy_(x)).total == 8000  # nor a copy's destination
    assert roofline.count_traffic(lambda: y.mul_(2)).total == 8000  # in place: read and written
    w = torch.ones(1000, 10, requires_grad=True)  # 40,000 bytes
    mode = roofline.count_traffic(lambda: (x @ w).sum().backward())
    assert mode.by_op["mm"] >= 4000 + 40000 + 40  # the forward product, and the backward reads w's input again
    assert roofline.stream_bandwidth(mib=4, reps=1, trials=1) > 0


def test_exact_maxpool_rewrites_match_pytorch_byte_for_byte():
    """bench_maxpool.py's two rewrites give PyTorch's pooled values and gradients exactly (ties included)."""
    out = _load_benchmark("bench_maxpool").main(batch=4, channels=3, size=8, repeat=1)
    assert all(r["same_bytes"] for r in out.values())


def test_roofline_check_runs(capsys):
    """The counter-against-the-clock check prints a share for each streaming operator (smoke run, not timed)."""
    _load_benchmark("roofline").check(mib=4)
    assert capsys.readouterr().out.count("of the bandwidth") == 8


def _load_benchmark(name):
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_study_rebuild_reads_our_digits_through_torchvision(tmp_path):
    """The lazy benchmark's rebuild of the study's loader: torchvision's own MNIST class reads the digits we
    wrote in its raw format, and each item is the digit times its color plus the study's bounded noise."""
    import numpy as np
    from torchvision import datasets

    bench = _load_benchmark("bench_train_lazy")
    rng = np.random.default_rng(0)
    gray = rng.integers(0, 256, (7, 28, 28), dtype=np.uint8)
    labels = np.arange(7, dtype=np.uint8) % 10
    bench.write_idx(tmp_path, gray, labels)
    mnist = datasets.MNIST(tmp_path, train=True, download=False)
    assert len(mnist) == 7
    assert np.array_equal(np.asarray(mnist[3][0]), gray[3]) and mnist[3][1] == 3
    palette = [[1.0, 0.0, 0.0]] * 10  # every color red: only the red channel carries the digit
    # the study's Dataset draws from Python's global random state: seeded here, or whatever ran before decides
    # whether this draw takes the 5% branch, which needs a second color (a one-color palette has none)
    bench.random.seed(0)
    x, y = bench.StudyBiasedMNIST(mnist, palette)[3]
    assert x.shape == (3, 28, 28) and y == 3
    digit = gray[3].astype("float32") / 255
    assert np.abs(x[0].numpy() - np.clip(digit, 0, 1)).max() <= 0.1 + 1e-6  # noise clamped to +-0.1
    assert x[1:].max() <= 0.1 + 1e-6  # green and blue: background noise only


def test_lazy_step_parts_cover_the_training_step():
    import torch

    from shortcutlab.data import Split
    from shortcutlab.params import Compute

    bench = _load_benchmark("bench_train_lazy")
    n = 40
    y = torch.arange(n) % 10
    x = torch.randint(0, 256, (n, 3, 28, 28), dtype=torch.uint8)
    split = Split(x, y, y.clone(), torch.zeros(n, dtype=torch.bool), x[:, 0], torch.rand(10, 3))
    out = bench.step_parts(split, Compute(device="cpu", precision="fp32", threads=0), batch_size=16)
    assert list(out["ms_per_step"]) == ["data", "forward", "backward", "adam", "totals"]
    assert all(v > 0 for v in out["ms_per_step"].values())
    assert out["step_ms"] == sum(out["ms_per_step"].values()) and out["precision"] == "cpu/fp32"


def test_bench_noop_reports_each_variant(tiny_repo):
    from conftest import run

    proc = run([sys.executable, str(ROOT / "benchmarks" / "bench_noop.py"), "--repeat", "1"], tiny_repo)
    out = json.loads(proc.stdout)
    assert out["stages"] > 10 and out["dvc.lock lines"] > 100
    timed = [k for k in out if k.endswith("(s, median)")]
    assert len(timed) == 5 and all(out[k] > 0 for k in timed)


def _only_row(tmp_path, script: str, *args: str) -> dict:
    """Run ``benchmarks/<script> *args --json <file>`` at a smoke size and return its one result row."""
    out = tmp_path / "bench.json"
    cmd = [sys.executable, f"benchmarks/{script}", *args, "--json", str(out)]
    subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, timeout=300)
    (row,) = json.loads(out.read_text())["rows"]
    return row


def test_bench_malloc_compares_both_settings(tmp_path):
    args = ("--batch", "8", "--steps", "1", "--repeat", "1", "--workloads", "two_conv, consistency objective")
    row = _only_row(tmp_path, "bench_malloc.py", *args)
    assert row["default_images_per_s"] > 0 and row["kept_images_per_s"] > 0
    assert row["speedup"] == row["kept_images_per_s"] / row["default_images_per_s"]


def test_bench_threads_compares_one_process_with_single_thread_ones(tmp_path):
    args = ("--steps", "1", "--batch", "8", "--procs", "2", "--families", "lazy")
    row = _only_row(tmp_path, "bench_threads.py", *args)
    assert row["together_images_per_s"] > 0 and len(row["apart_images_per_s"]) == 2
    assert row["apart_over_together"] == sum(row["apart_images_per_s"]) / row["together_images_per_s"]
    bad = subprocess.run(
        [sys.executable, "benchmarks/bench_threads.py", "--families", "nope"], cwd=ROOT, capture_output=True, text=True
    )
    assert bad.returncode == 1 and "unknown ['nope']" in bad.stderr


def _can_build_cpp() -> bool:
    """torch.compile on the CPU builds C++ against Python's headers: without a compiler or them it cannot run."""
    import shutil
    import sysconfig

    has_cxx = shutil.which("g++") or shutil.which("c++")
    return bool(has_cxx) and (Path(sysconfig.get_paths()["include"]) / "Python.h").exists()


@pytest.mark.skipif(not _can_build_cpp(), reason="torch.compile needs a C++ compiler and Python's headers")
def test_bench_compile_measures_cold_and_warm_cache(tmp_path):
    out = tmp_path / "compile.json"
    cmd = [sys.executable, "benchmarks/bench_compile.py", "--families", "lazy", "--batch", "8", "--steps", "1"]
    subprocess.run(cmd + ["--json", str(out)], cwd=ROOT, check=True, capture_output=True, timeout=300)
    (row,) = json.loads(out.read_text())["rows"]
    assert row["family"] == "lazy" and row["eager_images_per_s"] > 0 and row["compiled_images_per_s"] > 0
    assert row["compiled_first_step_s"] > 0 and row["warm_first_step_s"] > 0
    assert isinstance(row["compiled_twice_bytes_equal"], bool) and row["compiled_vs_eager_max_abs_diff"] >= 0


def test_bench_noop_twin_builds_a_pipeline_of_the_same_shape(tiny_repo):
    from conftest import run

    twin = [sys.executable, str(ROOT / "benchmarks" / "bench_noop_twin.py"), "--repeat", "1", "--limit", "6"]
    out = json.loads(run(twin, tiny_repo).stdout)
    assert out["stages"] == 6 and out["file deps"] > 6 and out["params keys"] > 0
    timed = [k for k in out if k.endswith("(s, median)")]
    assert len(timed) == 4 and all(out[k] > 0 for k in timed)
    assert out["per stage (s)"] == pytest.approx(
        (out["twin (s, median)"] - out["twin, half the stages (s, median)"]) / 3
    )


def test_bench_relu_pool_times_both_paths_and_checks_the_bytes(tmp_path):
    from shortcutlab import fused

    if fused.extension() is None:
        pytest.skip("the fused kernel could not be built here")
    out = tmp_path / "relu_pool.json"
    args = ("--batch", "8", "--steps", "1", "--repeat", "1", "--pools", "1", "--families", "two_conv", "attention CNN")
    cmd = [sys.executable, "benchmarks/bench_relu_pool.py", *args, "--json", str(out)]
    subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, timeout=300)
    res = json.loads(out.read_text())
    assert len(res["pools"]) == 1 and res["pools"][0]["pytorch_ms"] > 0 and res["pools"][0]["fused_ms"] > 0
    assert set(res["families"]) == {"two_conv", "attention CNN"}
    assert all(r["same_bytes"] is True and r["fused_images_per_s"] > 0 for r in res["families"].values())


def test_bench_bn_relu_times_both_paths_and_checks_the_bytes(tmp_path):
    from shortcutlab import fused

    if fused.bn_extension() is None:
        pytest.skip("the BatchNorm kernel is not used here")
    out = tmp_path / "bn_relu.json"
    cmd = [sys.executable, "benchmarks/bench_bn_relu.py", "--batch", "8", "--steps", "1", "--repeat", "1"]
    subprocess.run([*cmd, "--json", str(out)], cwd=ROOT, check=True, capture_output=True, timeout=300)
    res = json.loads(out.read_text())
    assert len(res["blocks"]) == 3 and all(r["before_ms"] > 0 and r["kernel_ms"] > 0 for r in res["blocks"])
    assert all(r["same_bytes"] is True and r["kernel_images_per_s"] > 0 for r in res["models"].values())


def test_profile_step_ranks_operators_and_their_matmul_share(tmp_path):
    out = tmp_path / "profile.json"
    cmd = [sys.executable, "benchmarks/profile_step.py", "--family", "ViT", "--batch", "8", "--steps", "1"]
    subprocess.run([*cmd, "--json", str(out)], cwd=ROOT, check=True, capture_output=True, timeout=300)
    res = json.loads(out.read_text())
    ops = list(res["ops_ms_per_step"].values())
    assert res["step_ms"] > 0 and ops == sorted(ops, reverse=True)
    assert "aten::bmm" in res["ops_ms_per_step"] and 0 < res["matmul_and_conv_share"] < 1
    assert res["profiled_ms_per_step"] == pytest.approx(sum(ops))


def test_probe_hsic_threads_finds_the_default_estimator_thread_invariant():
    cmd = [sys.executable, "benchmarks/probe_hsic_threads.py", "--batch", "64", "--repeat", "2"]
    out = subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True, timeout=300).stdout
    rows = {line.split()[0]: line for line in out.splitlines() if "batch 64" in line}
    assert set(rows) == {"median", "published"}, out
    assert "same bits" in rows["median"], out  # the default's penalty: one thread and every core agree


def test_bench_grad_layout_times_both_ways_and_checks_the_bytes(tmp_path):
    out = tmp_path / "grad_layout.json"
    cmd = [sys.executable, "benchmarks/bench_grad_layout.py", "--batch", "8", "--steps", "1", "--repeat", "1"]
    subprocess.run([*cmd, "--json", str(out)], cwd=ROOT, check=True, capture_output=True, timeout=300)
    res = json.loads(out.read_text())
    assert set(res) == {"convnet (+2 context convs)", "attention CNN"}
    for row in res.values():
        for use in ("train", "input_grad"):
            assert row[use]["same_bytes"] is True and row[use]["on_images_per_s"] > 0


def test_bench_sae_times_both_paths_and_checks_the_bytes(tmp_path):
    from shortcutlab import sae

    if sae.topk_extension() is None:
        pytest.skip("the ReLU + top-k kernel is not used here")
    out = tmp_path / "sae.json"
    args = ("--synthetic", "--epochs", "1", "--repeat", "1", "--calls", "2", "--json", str(out))
    subprocess.run([sys.executable, "benchmarks/bench_sae.py", *args], cwd=ROOT, check=True, timeout=300)
    res = json.loads(out.read_text())
    assert res["train"]["same_bytes"] and len(res["activation"]) == 3
    assert all(v > 0 for r in res["activation"] for v in r["ops_us"] + r["kernel_us"])
