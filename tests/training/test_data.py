import numpy as np
import pytest
import torch
from unmask.training.cache import build_cache, load_image
from unmask.training.datasets import EvalDataset, JpegReader, Mix, TrainDataset, dfdc_records, is_val_group
from unmask.training.fakes import build
from unmask.training.landmarks import face_landmarks
from unmask.training.sbi import REGIONS, self_blend
from unmask.training.transforms import PRESETS, BatchAugment, augment_config, degrade, normalize


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


@pytest.mark.parametrize("region", sorted(REGIONS))
def test_regional_sbi_stays_near_its_region(real_crop, region):
    pts = face_landmarks(real_crop)
    part = pts[REGIONS[region]]
    others = np.delete(pts, REGIONS[region], axis=0)
    for seed in range(5):
        fake, mask = self_blend(real_crop, pts, np.random.default_rng(seed), region)
        assert mask.max() > 0.2  # never an unchanged "fake"
        ys, xs = np.nonzero(mask > 0.5 * mask.max())
        centre = np.array([xs.mean(), ys.mean()])
        # the blend's centre is nearer its own region than the rest of the face's landmarks are on average
        assert np.linalg.norm(centre - part.mean(0)) < np.linalg.norm(others - part.mean(0), axis=1).mean()
        diff = np.abs(fake.astype(int) - real_crop.astype(int)).sum(-1)
        assert (diff[mask == 0] == 0).all()
    whole = self_blend(real_crop, pts, np.random.default_rng(0))[1] > 0
    assert (mask > 0).sum() < whole.sum()  # a part, not the whole face


def test_cache_holds_the_jpeg_pixels_and_is_reused(data_dir, tmp_path):
    recs = dfdc_records(data_dir, "val")[:6]
    paths = [r.path for r in recs]
    cache = build_cache(paths, 96, tmp_path / "crops")
    assert cache.images.shape == (6, 96, 96, 3) and cache.images.dtype == np.uint8
    for p in paths:
        assert np.array_equal(cache[p], load_image(p, 96))
    mtime = (tmp_path / "crops.npy").stat().st_mtime_ns
    again = build_cache(list(reversed(paths)), 96, tmp_path / "crops")  # same set: reused, not rebuilt
    assert (tmp_path / "crops.npy").stat().st_mtime_ns == mtime and len(again) == 6
    bigger = build_cache(paths, 64, tmp_path / "crops")  # another size: rebuilt
    assert bigger.size == 64


def test_train_items_from_cache_equal_items_from_jpegs(data_dir, tmp_path):
    recs = dfdc_records(data_dir, "train")
    reals, fakes = [r for r in recs if r.label == 0][:4], [r for r in recs if r.label == 1][:4]
    cache = build_cache([r.path for r in reals + fakes], 64, tmp_path / "c")
    jpeg = JpegReader(64)
    lms = {r.path: face_landmarks(jpeg(r.path)) for r in reals}
    aug = augment_config("strong")
    a = TrainDataset(reals, [], fakes, lms, 12, cache, aug, Mix(sbi=0.3), seed=5)
    b = TrainDataset(reals, [], fakes, lms, 12, jpeg, aug, Mix(sbi=0.3), seed=5)
    for ds in (a, b):
        ds.set_epoch(2)
    items_a, items_b = [a[i] for i in range(12)], [b[i] for i in range(12)]
    assert {s for _, _, s in items_a} >= {"sbi", "dfdc_real", "dfdc_fake"}
    for (xa, ya, sa), (xb, yb, sb) in zip(items_a, items_b):
        assert xa.dtype == torch.uint8 and xa.shape == (3, 64, 64)
        assert torch.equal(xa, xb) and float(ya) == float(yb) and sa == sb
    assert torch.equal(a[3][0], a[3][0])  # an item is the same whenever it is drawn again
    regional = TrainDataset(reals, [], fakes, lms, 12, cache, aug, Mix(sbi=0.3, sbi_regional=1.0), seed=5)
    regional.set_epoch(2)
    for i, (x, _, source) in enumerate(items_a):  # only the SBI items change, and they stay SBI
        xr, _, sr = regional[i]
        assert sr == source and torch.equal(xr, x) == (source != "sbi")


def test_batch_augment_shapes_ranges_and_seed(real_crop):
    x = torch.from_numpy(np.stack([real_crop[:128, :128]] * 8)).permute(0, 3, 1, 2).contiguous()
    aug = BatchAugment(PRESETS["strong"], (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    out1 = aug(x.clone(), torch.Generator().manual_seed(1))
    out2 = aug(x.clone(), torch.Generator().manual_seed(1))
    assert out1.shape == (8, 3, 128, 128) and out1.dtype == torch.float32
    assert torch.equal(out1, out2)
    assert -1.0 - 1e-6 <= float(out1.min()) and float(out1.max()) <= 1.0 + 1e-6
    plain = normalize(x, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    assert not torch.equal(out1, plain)  # something was augmented
    none = BatchAugment(PRESETS["none"], (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))(x.clone(), torch.Generator().manual_seed(1))
    assert torch.allclose(none, plain, atol=1e-6)  # the "none" preset only normalises


def test_degrade_keeps_shape_and_changes_pixels(real_crop):
    cfg = augment_config({"preset": "none", "jpeg_p": 1.0, "jpeg_quality": [20, 20], "downscale_p": 1.0})
    out = degrade(real_crop, cfg, np.random.default_rng(0))
    assert out.shape == real_crop.shape and out.dtype == np.uint8
    assert np.abs(out.astype(int) - real_crop.astype(int)).mean() > 1.0


def test_augment_config_rejects_unknown_keys_and_presets():
    from unmask.training.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown augment keys"):
        augment_config({"preset": "light", "jpeg": 1})
    with pytest.raises(ConfigError, match="unknown augment preset"):
        augment_config("heavy")
    assert augment_config({"preset": "strong", "jpeg_p": 0.1}).jpeg_p == 0.1


def test_eval_dataset_sbi_items_are_fixed(data_dir):
    recs = [r for r in dfdc_records(data_dir, "val") if r.label == 0][:2]
    read = JpegReader(64)
    lms = {r.path: face_landmarks(read(r.path)) for r in recs}
    ds = EvalDataset(recs, read, landmarks=lms, make_fake=build(Mix(sbi=0.3), train=False)["sbi"])
    assert torch.equal(ds[0][0], ds[0][0]) and float(ds[0][1]) == 1.0


def test_web_video_losses_noise_and_h264(real_crop):
    from unmask.training.transforms import h264_frame

    for key in ("noise_p", "h264_p"):
        cfg = augment_config({"preset": "none", key: 1.0})
        out = degrade(real_crop, cfg, np.random.default_rng(0))
        assert out.shape == real_crop.shape and out.dtype == np.uint8
        assert np.abs(out.astype(int) - real_crop.astype(int)).mean() > 0.5, key
        assert np.array_equal(out, degrade(real_crop, cfg, np.random.default_rng(0)))  # seeded
    odd = real_crop[:63, :65]
    low, high = h264_frame(odd, 45), h264_frame(odd, 20)
    assert low.shape == odd.shape and low.dtype == np.uint8
    assert np.abs(low.astype(int) - odd).mean() > np.abs(high.astype(int) - odd).mean()  # a higher CRF loses more
    web = PRESETS["web"]
    assert web.jpeg_quality == (30, 90) and web.downscale == (0.35, 1.0) and web.noise_p > 0 and web.h264_p > 0


@pytest.mark.parametrize("table,message", [
    ({"noise_sigma": [8, 2]}, "bad augmentation ranges"),
    ({"h264_crf": [20, 60]}, "bad augmentation ranges"),
    ({"blur_sigma": 1.0}, "blur_sigma must be a range"),
    ({"jpeg_quality": ["a", "b"]}, "jpeg_quality must be a range"),
    ({"h264_p": 2.0}, "probabilities must be in [0, 1]"),
])
def test_augment_ranges_are_checked(table, message):
    from unmask.training.errors import ConfigError

    with pytest.raises(ConfigError, match=message.replace("[", "\\[")):
        augment_config({"preset": "web", **table})


@pytest.mark.parametrize("tta", [("identity", "hflip"), ("hflip", "identity"), ("hflip",), ("identity",)])
def test_eval_views_in_a_reused_buffer_equal_normalize_then_flip(real_crop, tta):
    from unmask.model.tta import apply_tta
    from unmask.training.evaluate import tta_views_into

    x = torch.from_numpy(np.stack([real_crop[:64, :64], real_crop[64:128, 64:128], real_crop[:64, 64:128]])).permute(0, 3, 1, 2).contiguous()
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    expected = torch.cat([apply_tta(t, normalize(x, mean, std)) for t in tta]).numpy()
    buffer = np.full((len(tta) * len(x) + 2, 3, 64, 64), np.nan, dtype=np.float32)  # larger and dirty, as reused
    got = tta_views_into(buffer[: len(tta) * len(x)], x, tta, mean, std)
    assert np.array_equal(got, expected)  # bit for bit: the pinned card figures must not move
