"""The params schema of the analysis stages: attacks, explanations, the explanation-aware backdoor and sparse
autoencoders (the training-side sections and the spec machinery: :mod:`shortcutlab.schema`)."""

from __future__ import annotations

from .schema import Gate, ParamsError, frozen, spec


@frozen
class Attack:
    eps: list[float] = spec()
    steps: int = spec(ge=1, doc="PGD steps (the study used 10 and 40)")
    alpha_ratio: float = spec(gt=0.0, doc="PGD step = alpha_ratio * eps / steps")
    restarts: int = spec(ge=1)
    early_stop: bool = spec(
        doc="PGD stops on a row once its success is decided (rates unchanged; confidences of successes are "
        "the stopping iterate's)"
    )
    source: int = spec(ge=0, le=9)
    target: int = spec(ge=0, le=9)
    targeted_splits: list[str] = spec()
    n_untargeted: int = spec(ge=1, doc="fixed subset of the hard test for untargeted attacks")
    n_targeted: int = spec(ge=0, doc="source-digit images per targeted split (first n); 0 = all of them")
    seed: int = spec(ge=0)

    def check(self, prefix):
        if not self.eps or any(e < 0 or e > 1 for e in self.eps) or sorted(self.eps) != list(self.eps):
            raise ParamsError(f"{prefix}.eps: expected an increasing list of budgets in [0, 1]")
        if self.source == self.target:
            raise ParamsError(f"{prefix}.target: must differ from source")
        bad = set(self.targeted_splits) - {"test_hard", "test_easy"}
        if bad:
            raise ParamsError(f"{prefix}.targeted_splits: unknown split {sorted(bad)[0]!r}")


ATTRIBUTION_METHODS = (
    "gradcam",
    "gradcampp",
    "layercam",
    "saliency",
    "input_x_gradient",
    "smoothgrad",
    "integrated_gradients",
    "gradcam_final_tokens",
    "attention",
    "rollout",
    "grad_rollout",
)


# the methods every architecture supports (the backdoor's transfer test uses these)
GENERIC_METHODS = ATTRIBUTION_METHODS[:7]


@frozen
class Explain:
    n_images: int = spec(ge=1, doc="fixed hard-test and easy-test images per split")
    batch_size: int = spec(ge=1)
    methods: list[str] = spec()
    ig_steps: int = spec(ge=2)
    smoothgrad_samples: int = spec(ge=1)
    smoothgrad_sigma: float = spec(ge=0.0)
    fg_threshold: float = spec(ge=0.0, le=1.0, doc="stroke pixels: grayscale digit > threshold")
    degenerate_cv: float = spec(ge=0.0, doc="near-uniform map: std/mean of |map| below this")
    deletion_steps: int = spec(ge=2)
    sanity_images: int = spec(ge=1, doc="images for the model-randomisation sanity check")
    falsification_k: float = spec(gt=0.0, lt=1.0)
    falsification_draws: int = spec(ge=1)
    seed: int = spec(ge=0)

    def check(self, prefix):
        bad = [m for m in self.methods if m not in ATTRIBUTION_METHODS]
        if bad or not self.methods:
            raise ParamsError(f"{prefix}.methods: unknown method {bad[0]!r}" if bad else f"{prefix}.methods: empty")


BACKDOOR_METHODS = ("explanation", "activation", "input_mask")


@frozen
class BackdoorRun:
    method: str = spec(choices=BACKDOOR_METHODS)
    poison_rate: float = spec(gt=0.0, le=1.0)
    seed: int = spec(ge=0)


@frozen
class TrainBackdoor:
    seed: int = spec(ge=0, doc="seed of the clean model and of the evaluation subset")
    widths: list[int] = spec(doc="ConvNet widths; two dilated 7x7 context convs are always added")
    clean_epochs: int = spec(ge=1)
    clean_lr: float = spec(gt=0.0)
    trigger_size: int = spec(ge=1, le=14, doc="white square at the bottom-right corner")
    target_size: int = spec(ge=1, le=14, doc="attacker's region: the top-left square")
    per_batch: int = spec(ge=1, doc="triggered copies resampled from the poisoned subset into every batch")
    w_ce: float = spec(ge=0.0, doc="weight of the clean samples' cross-entropy (their labels)")
    lam_kd: float = spec(ge=0.0, doc="distillation to the frozen clean model on clean, triggered and negative inputs")
    n_negative: int = spec(ge=0, doc="negative inputs per batch (control patches, the trigger elsewhere)")
    lam_neg: float = spec(ge=0.0, doc="weight of the z-scored MSE to the clean model's maps on the negatives")
    warmup_epochs: int = spec(ge=0, doc="first epochs with lam_kd and lam_neg scaled by warmup_scale")
    warmup_scale: float = spec(ge=0.0, le=1.0)
    defence_epochs: int = spec(ge=0, doc="persistence: epochs of plain fine-tuning on clean data (0 = skip)")
    defence_lr: float = spec(gt=0.0)
    w_trig: float = spec(ge=0.0, doc="weight of the triggered samples' cross-entropy")
    lam_t: float = spec(ge=0.0, doc="weight of -log(target mass share) of the triggered Grad-CAM")
    lam_c: float = spec(ge=0.0, doc="weight of the z-scored MSE to the clean model's clean maps")
    mask_strength: float = spec(ge=0.0, le=1.0, doc="input_mask baseline")
    epochs: int = spec(ge=1)
    steps: int = spec(ge=1, doc="fine-tuning steps per epoch")
    batch_size: int = spec(ge=1)
    lr: float = spec(gt=0.0)
    schedule: str = spec(choices=("constant", "cosine"), doc="fine-tuning learning-rate schedule")
    n_eval: int = spec(ge=1, doc="validation images for the explanation metrics")
    transfer: list[str] = spec()
    gate: Gate = spec(
        doc="the clean model and every explanation-backdoor run (the study's two failed "
        "baselines are results, not faults: not gated)"
    )
    runs: dict[str, BackdoorRun] = spec()

    def check(self, prefix):
        bad = [m for m in self.transfer if m not in GENERIC_METHODS]
        if bad:
            raise ParamsError(f"{prefix}.transfer: unknown method {bad[0]!r}")
        for k in self.runs:
            if not k.replace("_", "").replace("-", "").isalnum():
                raise ParamsError(
                    f"{prefix}.runs.{k}: run names may hold letters, digits, '_' and '-' (no dots: "
                    "DVC reads dots as nesting)"
                )


SAE_VARIANTS = ("l1", "topk")


@frozen
class SaeRun:
    model: str = spec(doc="checkpoint (file or per-seed directory) whose hidden layer the SAE reads")
    variant: str = spec(choices=SAE_VARIANTS)
    expansion: int | None = spec(
        ge=1, optional=None, doc="this run's dictionary size / hidden width; absent = sae.expansion"
    )
    k: int | None = spec(ge=1, optional=None, doc="this run's active latents (topk); absent = sae.k")
    epochs: int | None = spec(ge=1, optional=None, doc="this run's epochs; absent = sae.epochs")


@frozen
class Sae:
    expansion: int = spec(ge=1, doc="dictionary size = expansion x hidden width (study: 64 -> 256)")
    l1: float = spec(ge=0.0, doc="l1 variant's sparsity weight (study: 5e-4)")
    k: int = spec(ge=1, doc="topk variant's active latents")
    epochs: int = spec(ge=1, doc="study: 100")
    lr: float = spec(gt=0.0)
    lr_decay: float = spec(ge=0.0, le=1.0, doc="share of the final steps with the lr falling linearly to 0 (study: 0)")
    batch_size: int = spec(ge=1)
    resample_every: int = spec(ge=1, doc="steps without activity after which a latent counts as dead")
    top_features: int = spec(ge=1, doc="features amplified/ablated per digit and per color")
    seed: int = spec(ge=0)
    runs: dict[str, SaeRun] = spec(doc="one sae@<name> stage each")

    def check(self, prefix):
        for k, r in self.runs.items():
            if not r.model.startswith("data/models/") or not k.replace("_", "").replace("-", "").isalnum():
                raise ParamsError(
                    f"{prefix}.runs.{k}: names hold letters, digits, '_' and '-'; model: a checkpoint "
                    f"under data/models/ (got {r.model!r})"
                )
