import numpy as np
from unmask.training.datasets import dfdc_records, is_val_group
from unmask.training.landmarks import face_landmarks
from unmask.training.sbi import self_blend
from unmask.training.transforms import augment, to_tensor


def test_group_split_is_disjoint(data_dir):
    train = dfdc_records(data_dir, "train")
    val = dfdc_records(data_dir, "val")
    assert not {r.group for r in train} & {r.group for r in val}
    assert len(train) + len(val) == len(dfdc_records(data_dir, "all"))
    assert 0.05 < len(val) / (len(train) + len(val)) < 0.15
    assert all(is_val_group(r.group) for r in val)


def test_landmarks_on_real_crop(real_crop):
    pts = face_landmarks(real_crop)
    h, w = real_crop.shape[:2]
    assert pts.shape == (68, 2)
    assert (pts[:, 0] >= -0.2 * w).all() and (pts[:, 0] < 1.2 * w).all()
    assert (pts[:, 1] >= -0.2 * h).all() and (pts[:, 1] < 1.2 * h).all()
    # the face is in the crop: landmarks centre near the crop centre
    assert np.abs(pts.mean(0) - (w / 2, h / 2)).max() < 0.25 * w


def test_sbi_changes_face_only(real_crop):
    pts = face_landmarks(real_crop)
    fake, mask = self_blend(real_crop, pts, np.random.default_rng(3))
    assert fake.shape == real_crop.shape and fake.dtype == np.uint8
    inside = mask > 0.5 * mask.max()  # the blend ratio scales the mask
    assert inside.any()
    diff = np.abs(fake.astype(int) - real_crop.astype(int)).sum(-1)
    assert diff[inside].mean() > 1.0
    far = mask == 0
    assert far.any()
    assert (diff[far] == 0).all()
    # corners are far from the face hull
    assert (fake[:5, :5] == real_crop[:5, :5]).all()


def test_augment_and_tensor(real_crop):
    out = augment(real_crop, 128, np.random.default_rng(0))
    assert out.shape == (128, 128, 3) and out.dtype == np.uint8
    x = to_tensor(out, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    assert x.shape == (3, 128, 128)
    assert -1.0 <= float(x.min()) and float(x.max()) <= 1.0
