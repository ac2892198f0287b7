"""Pseudo-fake generators: the registry, SBI unchanged behind it, and the reenactment fakes."""

import dataclasses
import hashlib

import numpy as np
import pytest
import torch
from unmask.training.datasets import EvalDataset, JpegReader, Mix, TrainDataset, dfdc_records
from unmask.training.fakes import GENERATORS, build, shares
from unmask.training.landmarks import face_landmarks
from unmask.training.reenact import BROWS, EYES, JAW_SIDES, OUTER_LIPS, ReenactConfig, reenact
from unmask.training.transforms import augment_config


@pytest.fixture(scope="module")
def small_set(data_dir):
    """4 train reals (with their landmarks at 64 px) and 4 train fakes."""
    recs = dfdc_records(data_dir, "train")
    reals, fakes = [r for r in recs if r.label == 0][:4], [r for r in recs if r.label == 1][:4]
    read = JpegReader(64)
    return reals, fakes, read, {r.path: face_landmarks(read(r.path)) for r in reals}


@pytest.fixture(scope="module")
def face(real_crop):
    return real_crop, face_landmarks(real_crop)


def test_sbi_behind_the_registry_draws_the_pixels_it_drew_before(small_set):
    """Digests of items made by the code before the registry (same seed, regional blends and strong preset on)."""
    reals, fakes, read, lms = small_set
    ds = TrainDataset(reals, [], fakes, lms, 16, read, augment_config("strong"), Mix(sbi=0.4, sbi_regional=0.5), seed=7)
    ds.set_epoch(3)
    h = hashlib.sha256()
    for i in range(16):
        x, _, source = ds[i]
        h.update(x.numpy().tobytes())
        h.update(source.encode())
    assert h.hexdigest() == "b2f75d736a9a3d89990d2fa37ba441b4b8418dce1c87d97ea171c30bde0be76e"
    val = EvalDataset(reals, read, landmarks=lms, make_fake=build(Mix(sbi=0.4, sbi_regional=0.5), train=False)["sbi"])
    h = hashlib.sha256()
    for i in range(4):
        h.update(val[i][0].numpy().tobytes())
    assert h.hexdigest() == "7d00d09269c742e5386bce02f311e9313bacc911f20f6ccfe7e0f249cf428a8c"  # whole-face blends


@pytest.mark.parametrize("name", GENERATORS.names())
def test_every_generator_has_a_share_and_makes_a_fixed_fake(name, face):
    img, pts = face
    assert name in {f.name for f in dataclasses.fields(Mix)}  # its [mix] key
    mix = dataclasses.replace(Mix(sbi=0.0), **{name: 0.2})
    assert list(build(mix)) == [name] and shares(mix)[name] == 0.2
    make = build(mix)[name]
    fake, mask = make(img, pts, np.random.default_rng(5))
    assert fake.shape == img.shape and fake.dtype == np.uint8 and mask.shape == img.shape[:2]
    assert np.abs(fake.astype(int) - img.astype(int)).sum() > 0
    again, _ = make(img, pts, np.random.default_rng(5))
    assert np.array_equal(fake, again)


def test_unknown_generator_names_fail_in_one_place():
    with pytest.raises(ValueError, match="unknown pseudo-fake generator 'swap'; known: reenact, sbi"):
        GENERATORS.get("swap")


def test_reenact_items_in_training(small_set):
    reals, fakes, read, lms = small_set
    mix = Mix(sbi=0.2, reenact=0.3, dfdc_fake=0.0)
    ds = TrainDataset(reals, [], fakes, lms, 24, read, augment_config("none"), mix, seed=1)
    items = [ds[i] for i in range(24)]
    sources = {s for _, _, s in items}
    assert {"reenact", "sbi", "dfdc_real"} <= sources and "dfdc_fake" not in sources
    assert all(float(y) == (s != "dfdc_real") for _, y, s in items)
    assert all(torch.equal(x, ds[i][0]) for i, (x, _, _) in enumerate(items))  # the same item whenever drawn


def test_a_generator_with_no_share_draws_nothing(small_set):
    """A reenact share of 0 leaves every item as it was without the key."""
    reals, fakes, read, lms = small_set
    a = TrainDataset(reals, [], fakes, lms, 12, read, augment_config("light"), Mix(sbi=0.3), seed=2)
    b = TrainDataset(reals, [], fakes, lms, 12, read, augment_config("light"), Mix(sbi=0.3, reenact=0.0), seed=2)
    assert all(torch.equal(a[i][0], b[i][0]) for i in range(12))


def test_reenact_changes_only_the_lower_face(face):
    img, pts = face
    for seed in range(6):
        fake, mask = reenact(img, pts, np.random.default_rng(seed), ReenactConfig(eyes_p=0.0))
        assert fake.shape == img.shape and fake.dtype == np.uint8 and mask.dtype == np.float32
        diff = np.abs(fake.astype(int) - img.astype(int)).sum(-1)
        assert (diff[mask == 0] == 0).all()  # outside the mask: the input's pixels
        assert diff[mask > 0.9].mean() > 2.0  # inside: changed
        assert mask[tuple(np.round(pts[OUTER_LIPS].mean(0)).astype(int)[::-1])] > 0.9
        # identity and most of the face boundary untouched: eyes, brows and the jaw's sides
        for i in EYES + BROWS + JAW_SIDES:
            x, y = np.round(pts[i]).astype(int)
            if 0 <= x < img.shape[1] and 0 <= y < img.shape[0]:
                assert mask[y, x] == 0, i
        ys, _ = np.nonzero(mask)
        assert ys.min() > pts[EYES, 1].max()  # the changed region starts below the eyes


def test_reenact_eyes_when_drawn(face):
    img, pts = face
    _, mask = reenact(img, pts, np.random.default_rng(0), ReenactConfig(eyes_p=1.0))
    for eye in (EYES[:6], EYES[6:]):
        x, y = np.round(pts[eye].mean(0)).astype(int)
        assert mask[y, x] > 0.5


@pytest.mark.parametrize("landmarks", [None, np.full((68, 2), np.nan, np.float32), np.zeros((68, 2), np.float32),
                                       np.zeros((5, 2), np.float32)], ids=["none", "nan", "collapsed", "five-points"])
def test_reenact_without_usable_landmarks_uses_the_template(face, landmarks):
    """No usable points: the average crop's points stand in, so the fake is still a lower-face change."""
    img, _ = face
    fake, mask = reenact(img, landmarks, np.random.default_rng(1))
    diff = np.abs(fake.astype(int) - img.astype(int)).sum(-1)
    assert (diff[mask == 0] == 0).all() and diff[mask > 0.9].mean() > 2.0
    ys, _ = np.nonzero(mask > 0.5)
    assert ys.min() > 0.35 * img.shape[0]  # below the eyes of the average crop
