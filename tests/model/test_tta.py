import numpy as np
import pytest
import torch
from unmask.model.tta import FLIP_AXES, apply_tta, check_tta


@pytest.mark.parametrize("name", list(FLIP_AXES))
def test_numpy_and_torch_batches_get_the_same_augmentation(name):
    batch = np.random.default_rng(0).standard_normal((2, 3, 4, 5)).astype(np.float32)
    out = apply_tta(name, batch)
    assert out.flags["C_CONTIGUOUS"]
    assert np.array_equal(out, apply_tta(name, torch.from_numpy(batch)).numpy())


def test_hflip_flips_width_only():
    batch = np.arange(6, dtype=np.float32).reshape(1, 1, 2, 3)
    assert apply_tta("hflip", batch)[0, 0].tolist() == [[2, 1, 0], [5, 4, 3]]


def test_unknown_or_empty():
    assert check_tta(["identity", "hflip"]) == ("identity", "hflip")
    with pytest.raises(ValueError, match="unknown or empty TTA"):
        check_tta(["rotate"])
    with pytest.raises(ValueError, match="unknown or empty TTA"):
        check_tta([])
