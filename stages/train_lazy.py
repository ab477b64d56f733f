"""train-lazy: the shallow LazyCNN on the biased train split -> data/models/lazy.pt + metrics/plots."""

from shortcutlab.cli import run_stage
from shortcutlab.data import load_splits
from shortcutlab.evaluation import evaluate_model, red_one_probe
from shortcutlab.io import write_csv, write_json, write_timings
from shortcutlab.models import build, save_model
from shortcutlab.runtime import resolve, seed_everything
from shortcutlab.training import FitConfig, check_gate, epoch_timings, fit, predict, strip_timing


def main(params):
    cfg, rt = params["train_lazy"], resolve(params["compute"])
    splits = load_splits("data/dataset", rt.device)
    seed_everything(cfg.seed)
    model = build("lazy")
    fc = FitConfig(epochs=cfg.epochs, lr=cfg.lr, batch_size=cfg.batch_size, seed=cfg.seed)
    hist = fit(
        model,
        splits["train"],
        fc,
        rt,
        evals={"val": splits["val"], "test_hard": splits["test_hard"]},
        desc="train-lazy",
    )
    metrics = evaluate_model(model, splits, rt)
    metrics["gate"] = check_gate("train-lazy", "train_lazy.gate", cfg.gate, model, splits["val"], rt)
    save_model("data/models/lazy.pt", model, "lazy", {}, {"epochs": cfg.epochs, "seed": cfg.seed})
    metrics["red_one_probe"] = red_one_probe(model, splits["test_hard"], rt)
    write_json("metrics/train_lazy.json", metrics)
    write_csv("plots/train_lazy/curve.csv", [strip_timing(h) for h in hist])
    write_timings("train-lazy", epoch_timings(hist))
    pred = predict(model, splits["test_hard"], rt).argmax(1).cpu()
    y = splits["test_hard"].y.cpu()
    write_csv(
        "plots/train_lazy/confusion_hard.csv",
        [{"actual": int(a), "predicted": int(p)} for a, p in zip(y, pred, strict=True)],
    )
    print(
        f"[{rt.describe()}] hard={metrics['test_hard']['acc']:.4f} easy={metrics['test_easy']['acc']:.4f} "
        f"val={metrics['val']['acc']:.4f} red1->{metrics['red_one_probe']['first_pred']}"
    )


if __name__ == "__main__":
    run_stage("train-lazy", main)
