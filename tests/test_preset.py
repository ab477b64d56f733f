from pathlib import Path

import pytest
import yaml

from shortcutlab.params import ParamsError, load
from shortcutlab.preset import apply

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", ["study", "full"])
def test_presets_apply_and_validate(tmp_path, name):
    (tmp_path / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    merged = apply(name, tmp_path / "params.yaml", ROOT / "presets")
    p = load(tmp_path / "params.yaml")
    preset = yaml.safe_load((ROOT / "presets" / f"{name}.yaml").read_text())
    for section, values in preset.items():
        for key in values:
            assert key in merged[section]
    assert p["train_lazy"].epochs == load(ROOT / "params.yaml")["train_lazy"].epochs


def test_unknown_preset(tmp_path):
    (tmp_path / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    with pytest.raises(ParamsError, match="no such preset"):
        apply("nope", tmp_path / "params.yaml", ROOT / "presets")
