"""sae@<model>-<variant>: a sparse autoencoder on a model's hidden layer, its metrics on held-out
activations, feature analysis on bias-conflicting images and causal interventions
-> data/sae/<name>.pt, metrics/sae/<name>.json, plots/sae/<name>.png."""

import sys

import torch

from shortcutlab import figures
from shortcutlab.cli import run_stage
from shortcutlab.data import load_splits
from shortcutlab.io import save_state, write_json
from shortcutlab.models import load_model
from shortcutlab.runtime import resolve
from shortcutlab.sae import feature_labels, hidden_acts, intervene, recovered, sae_metrics, train_sae


def main(params, name, path, variant):
    cfg = params["sae"]
    torch.manual_seed(cfg.seed)
    rt = resolve(params["compute"])
    splits = load_splits("data/dataset", "cpu", names=("train", "val", "test_hard"))
    model, ckpt = load_model(path)
    model = rt.prepare(model).eval()

    def acts(x):  # hidden activations under the runtime's precision, kept as float32 on the CPU
        return hidden_acts(model, x.to(rt.device), rt=rt).cpu()

    tr = acts(splits["train"].images())
    mu, sigma = tr.mean(0), tr.std(0).clamp_min(1e-6)
    std = (tr - mu) / sigma  # standardised per unit: the SAE sees every unit on one scale
    m = cfg.expansion * tr.shape[1]
    sae, hist = train_sae(std, variant, m, k=cfg.k, l1=cfg.l1, epochs=cfg.epochs, lr=cfg.lr,
                          batch_size=cfg.batch_size, seed=cfg.seed, resample_every=cfg.resample_every)
    sae.eval()
    save_state(f"data/sae/{name}.pt", {"state_dict": sae.state_dict(), "variant": variant, "k": cfg.k,
                                        "mu": mu, "sigma": sigma, "model": path})
    val = splits["val"]
    av = acts(val.images())
    hard = splits["test_hard"]
    ah = acts(hard.images())
    model.to("cpu")  # the rest (recovery, interventions) runs the head on cached activations, on the CPU
    out = {"held_out": sae_metrics(sae, (av - mu) / sigma), "dictionary": m, "hidden": tr.shape[1],
           "recovery": recovered(model, av, val.y, sae, tr.mean(0), (mu, sigma)), "final_train_mse": hist[-1]["mse"]}
    with torch.no_grad():
        fh = sae.encode((ah - mu) / sigma)
    lab = feature_labels(fh, hard.y, hard.color)
    live = lab["live"]
    kinds = lab["kind"]
    out["features"] = {"live": int(live.sum()), "color_like": int((kinds == 0).sum()),
                       "shape_like": int((kinds == 1).sum()), "mixed": int((kinds == 2).sum()),
                       "mean_entropy_bits": float(lab["entropy"][live].mean()) if live.any() else 0.0,
                       "mean_polysemanticity": float(lab["poly"][live].float().mean()) if live.any() else 0.0,
                       "mean_mi_digit": float(lab["mi_digit"][live].mean()) if live.any() else 0.0,
                       "mean_mi_color": float(lab["mi_color"][live].mean()) if live.any() else 0.0,
                       "max_digits_per_feature": int(lab["poly"][live].max()) if live.any() else 0,
                       # digit selectivity of a feature: 1 - mean/max of its per-digit mean activation
                       "digit_selectivity": float((1 - lab["per_digit"].mean(0) / lab["per_digit"].amax(0)
                                                   .clamp_min(1e-12))[live].mean()) if live.any() else 0.0}
    # interventions, error term kept, over every held-out (hard-test) sample of the class / color
    per_color = torch.stack([fh[hard.color == c].mean(0) for c in range(10)])
    dig, col = {}, {}
    for d in range(10):
        feats = lab["per_digit"][d].topk(cfg.top_features).indices.tolist()
        sel = hard.y == d
        dig[str(d)] = {"amplify": intervene(model, ah[sel], sae, (mu, sigma), feats, 3.0, d),
                       "ablate": intervene(model, ah[sel], sae, (mu, sigma), feats, 0.0, d)}
    for c in range(10):
        score = per_color[c] - per_color.mean(0)
        feats = score.topk(cfg.top_features).indices.tolist()
        other = hard.color != c  # steering: push images of other colors toward color c's digit
        col[str(c)] = {"steer": intervene(model, ah[other], sae, (mu, sigma), feats, 3.0, c),
                       "ablate_own": intervene(model, ah[~other], sae, (mu, sigma), feats, 0.0, c)}
    out["interventions"] = {"digit": dig, "color": col}
    out["interventions_summary"] = {
        "digit_amplify_delta_p": sum(v["amplify"]["delta_p"] for v in dig.values()) / 10,
        "digit_ablate_delta_p": sum(v["ablate"]["delta_p"] for v in dig.values()) / 10,
        "digit_ablate_flip_rate": sum(v["ablate"]["flip_rate"] for v in dig.values()) / 10,
        "color_steer_to_class_rate": sum(v["steer"]["to_class_rate"] for v in col.values()) / 10,
        "color_ablate_delta_p": sum(v["ablate_own"]["delta_p"] for v in col.values()) / 10}
    write_json(f"metrics/sae/{name}.json", out)
    top = lab["live"].nonzero().squeeze(1)[:40]
    figures.heatmap(f"plots/sae/{name}.png", torch.cat([lab["per_digit"][:, top], per_color[:, top]]).numpy(),
                    "feature", "digit 0-9 | color 0-9", title=f"{name}: mean activation (hard test)", fmt=".1f")
    h = out["held_out"]
    print(f"{name}: L0 {h['l0']:.1f}/{m} EV {h['explained_variance']:.4f} dead {h['dead_fraction']:.3f} "
          f"acc recovered {out['recovery']['acc_recovered']:.4f}; features {out['features']}")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit("usage: sae.py <name> <checkpoint> <l1|topk>")
    run_stage(f"sae@{sys.argv[1]}", lambda p: main(p, *sys.argv[1:]))
