"""check-params: validate the whole params.yaml before any other stage runs -> data/params.ok.

Every stage depends on data/params.ok, whose bytes never change while params.yaml is valid: a valid edit
reruns only the stages whose own params changed; an invalid one fails here, before DVC removes any other
stage's outputs, so the workspace stays as it was. It also checks what needs several sections at once: the
bias sweep's point at ``dataset.bias`` is read from train-debiased and train-lazy, so their seeds must cover
``bias_sweep.seeds`` (sweep_point.check)."""

from shortcutlab import sweep_point
from shortcutlab.cli import run_stage
from shortcutlab.io import write_text


def main(params):
    sweep_point.check(params)
    write_text("data/params.ok", "params.yaml: valid\n")


if __name__ == "__main__":
    run_stage("check-params", main)
