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


def _comments(text: str) -> list[str]:
    return [line.split("#", 1)[1] for line in text.splitlines() if "#" in line]


@pytest.mark.parametrize("name", ["study", "full"])
def test_preset_keeps_every_comment_and_every_untouched_key(tmp_path, name):
    original = (ROOT / "params.yaml").read_text()
    (tmp_path / "params.yaml").write_text(original)
    apply(name, tmp_path / "params.yaml", ROOT / "presets")
    after = (tmp_path / "params.yaml").read_text()
    assert _comments(after) == _comments(original)  # every comment, in order
    preset = yaml.safe_load((ROOT / "presets" / f"{name}.yaml").read_text())
    before, merged = yaml.safe_load(original), yaml.safe_load(after)

    def untouched(a, b, over, path=""):
        for k, v in a.items():
            if isinstance(over, dict) and k in over:
                if isinstance(v, dict) and isinstance(over[k], dict):
                    untouched(v, b[k], over[k], f"{path}{k}.")
                continue
            assert b[k] == v, f"{path}{k} changed"

    untouched(before, merged, preset)
