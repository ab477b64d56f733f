"""train-lazy: the shallow LazyCNN on the biased train split -> data/models/lazy.pt + metrics/plots."""

from shortcutlab.cli import run_stage
from shortcutlab.data import load_splits
from shortcutlab.evaluation import evaluate_model, red_one_probe
from shortcutlab.io import write_csv, write_json
from shortcutlab.models import build, save_model
from shortcutlab.runtime import resolve, seed_everything
from shortcutlab.training import FitConfig, fit, predict


def main(params):
    cfg, rt = params["train_lazy"], resolve(params["compute"])
    splits = load_splits("data/dataset", rt.device)
    seed_everything(cfg.seed)
    model = build("lazy")
    fc = FitConfig(epochs=cfg.epochs, lr=cfg.lr, batch_size=cfg.batch_size, seed=cfg.seed)
    hist = fit(model, splits["train"], fc, rt, evals={"val": splits["val"], "test_hard": splits["test_hard"]},
               desc="train-lazy")
    save_model("data/models/lazy.pt", model, "lazy", {}, {"epochs": cfg.epochs, "seed": cfg.seed})
    metrics = evaluate_model(model, splits, rt)
    metrics["red_one_probe"] = red_one_probe(model, splits["test_hard"], rt)
    metrics["train_seconds"] = sum(h["seconds"] for h in hist)
    metrics["images_per_s"] = sum(h["images_per_s"] for h in hist) / len(hist)
    write_json("metrics/train_lazy.json", metrics)
    write_csv("plots/train_lazy/curve.csv", hist)
    pred = predict(model, splits["test_hard"], rt).argmax(1).cpu()
    y = splits["test_hard"].y.cpu()
    write_csv("plots/train_lazy/confusion_hard.csv",
              [{"actual": int(a), "predicted": int(p)} for a, p in zip(y, pred, strict=True)])
    print(f"[{rt.describe()}] hard={metrics['test_hard']['acc']:.4f} easy={metrics['test_easy']['acc']:.4f} "
          f"val={metrics['val']['acc']:.4f} red1->{metrics['red_one_probe']['first_pred']}")


if __name__ == "__main__":
    run_stage("train-lazy", main)
