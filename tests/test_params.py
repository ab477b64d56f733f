import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from shortcutlab.params import ParamsError, load, validate

ROOT = Path(__file__).resolve().parents[1]


def base():
    return yaml.safe_load((ROOT / "params.yaml").read_text())


def test_repo_params_are_valid():
    p = load(ROOT / "params.yaml")
    assert p["dataset"].bias == 0.95 and p["train_lazy"].epochs >= 1


@pytest.mark.parametrize(
    "section,key,value,needle",
    [
        ("train_lazy", "epoch", 3, "train_lazy.epoch: unknown key"),
        ("dataset", "bias", 1.5, "dataset.bias: 1.5 is out of range"),
        ("dataset", "bias", "high", "dataset.bias: expected a number"),
        ("train_lazy", "epochs", 2.5, "train_lazy.epochs: expected an integer"),
        ("train_lazy", "epochs", 0, "train_lazy.epochs: 0 is out of range"),
        ("compute", "device", "tpu", "compute.device: 'tpu' is not one of"),
        ("dataset", "palette", [[1.0, 0.0, 0.0]] * 10, "dataset.palette: colors must be distinct"),
        ("dataset", "palette", [[1.0, 0.0]] * 10, "dataset.palette[0]"),
    ],
)
def test_schema_errors_name_the_key(section, key, value, needle):
    p = base()
    p[section][key] = value
    with pytest.raises(ParamsError, match=needle.replace("[", r"\[").replace("]", r"\]")):
        validate(p)


def test_analysed_models_are_checked():
    p = base()
    p["analysed_models"]["bad name"] = "data/models/lazy.pt"
    with pytest.raises(ParamsError, match="analysed_models.bad name"):
        validate(p)
    p = base()
    p["analysed_models"]["x"] = "/etc/passwd"
    with pytest.raises(ParamsError, match="analysed_models.x: '/etc/passwd' is not a checkpoint"):
        validate(p)
    p = base()
    p["analysed_models"]["x"] = 3
    with pytest.raises(ParamsError, match="analysed_models.x: expected a string"):
        validate(p)


def test_study_presets_analyse_the_four_recipes(tmp_path):
    from shortcutlab.preset import apply

    (tmp_path / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    apply("study", tmp_path / "params.yaml", ROOT / "presets")
    models = load(tmp_path / "params.yaml")["analysed_models"]
    assert {"consistency", "focal", "shape_cnn", "suppression", "lazy", "vit"} <= set(models)


def test_unknown_section():
    p = base()
    p["trian_lazy"] = {}
    with pytest.raises(ParamsError, match="trian_lazy: unknown section"):
        validate(p)


def test_ints_are_accepted_as_floats():
    p = base()
    p["dataset"]["bias"] = 1
    assert validate(p)["dataset"].bias == 1.0 and isinstance(validate(p)["dataset"].bias, float)


def test_stage_exits_nonzero_and_writes_nothing(tmp_path):
    p = base()
    p["train_lazy"]["epoch"] = 3
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(p))
    proc = subprocess.run(
        [sys.executable, str(ROOT / "stages/train_lazy.py")], cwd=tmp_path, capture_output=True, text=True
    )
    assert proc.returncode != 0
    assert "train_lazy.epoch: unknown key" in proc.stderr
    assert sorted(x.name for x in tmp_path.iterdir()) == ["params.yaml"]


def test_missing_input_file_is_named(tmp_path):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(base()))
    proc = subprocess.run(
        [sys.executable, str(ROOT / "stages/make_dataset.py")], cwd=tmp_path, capture_output=True, text=True
    )
    assert proc.returncode != 0 and "data/raw/mnist.npz" in proc.stderr


def test_bias_sweep_method_must_be_configured():
    p = yaml.safe_load((ROOT / "params.yaml").read_text())
    p["bias_sweep"]["methods"] = ["vanilla", "nope"]
    with pytest.raises(ParamsError, match=r"bias_sweep.methods: 'nope' is not a train_debiased.methods entry"):
        validate(p)
    p["bias_sweep"]["methods"] = ["vanilla"]
    p["bias_sweep"]["biases"] = [0.95, 1.0]
    with pytest.raises(ParamsError, match=r"bias_sweep.biases"):
        validate(p)
