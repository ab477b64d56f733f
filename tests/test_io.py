import numpy as np
import pytest
import torch

from shortcutlab import io
from shortcutlab.models import build, load_model, save_model


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.bin"
    with pytest.raises(RuntimeError):
        with io.atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


def test_npz_roundtrip_refuses_pickles(tmp_path):
    io.write_npz(tmp_path / "a.npz", x=np.arange(5, dtype=np.uint8))
    assert io.read_npz(tmp_path / "a.npz")["x"].tolist() == [0, 1, 2, 3, 4]
    with pytest.raises(TypeError):
        io.write_npz(tmp_path / "b.npz", x=np.array([{"a": 1}], dtype=object))
    np.save(tmp_path / "c.npy", np.array([{"a": 1}], dtype=object))  # numpy pickles object arrays
    with pytest.raises(ValueError):
        np.load(tmp_path / "c.npy", allow_pickle=False)


def test_json_rejects_non_finite(tmp_path):
    with pytest.raises(ValueError):
        io.write_json(tmp_path / "m.json", {"a": float("nan")})
    assert not (tmp_path / "m.json").exists()


def test_checkpoint_roundtrip_weights_only(tmp_path):
    torch.manual_seed(0)
    m = build("lazy")
    save_model(tmp_path / "m.pt", m, "lazy", {}, {"seed": 0})
    m2, ckpt = load_model(tmp_path / "m.pt")
    x = torch.rand(2, 3, 28, 28)
    assert torch.equal(m.eval()(x), m2(x)) and ckpt["meta"]["seed"] == 0


def test_checkpoint_with_code_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"arch": "lazy", "x": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(Exception, match="(?i)weights only|unsupported|global"):
        load_model(tmp_path / "evil.pt")


def test_checkpoint_bytes_do_not_depend_on_the_file_name(tmp_path):
    state = {"w": torch.arange(6.0).view(2, 3), "meta": {"seed": 0}}
    io.save_state(tmp_path / "a.pt", state)
    io.save_state(tmp_path / "sub" / "b.pt", state)
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "sub" / "b.pt").read_bytes()
