"""Crops re-cut as the service cuts faces: a loose crop and a tight crop of one face come out alike."""

import cv2
import numpy as np
from unmask.model.config import ModelConfig
from unmask.training.align import AlignedLoader
from unmask.training.cache import build_cache, read_rgb
from unmask.training.datasets import dfdc_records


def test_loose_and_tight_crops_of_a_face_are_cut_alike(data_dir, tmp_path):
    loader = AlignedLoader(ModelConfig("lite0", 128))
    rec = next(r for r in dfdc_records(data_dir, "val") if r.label == 0)
    tight = read_rgb(rec.path)
    side = tight.shape[0]
    loose = cv2.copyMakeBorder(tight, side // 2, side // 2, side // 2, side // 2, cv2.BORDER_REFLECT_101)  # a 2x looser crop
    cv2.imwrite(str(tmp_path / "loose.png"), cv2.cvtColor(loose, cv2.COLOR_RGB2BGR))
    a, b = loader(rec.path, 128), loader(str(tmp_path / "loose.png"), 128)
    assert a.shape == b.shape == (128, 128, 3) and loader.misses == 0
    plain_loose = cv2.resize(loose, (128, 128), interpolation=cv2.INTER_AREA)
    assert np.abs(a.astype(int) - b.astype(int)).mean() < 0.5 * np.abs(a.astype(int) - plain_loose.astype(int)).mean()


def test_no_face_is_used_as_given_and_counted(tmp_path):
    flat = np.full((96, 96, 3), 90, np.uint8)
    cv2.imwrite(str(tmp_path / "flat.png"), flat)
    loader = AlignedLoader(ModelConfig("lite0", 64))
    cache = build_cache([str(tmp_path / "flat.png")], 64, tmp_path / "c", load=loader, variant=loader.variant)
    assert cache.misses == 1 and (cache[str(tmp_path / "flat.png")] == 90).all()
    again = build_cache([str(tmp_path / "flat.png")], 64, tmp_path / "c", load=AlignedLoader(ModelConfig("lite0", 64)),
                        variant=loader.variant)
    assert again.misses == 1  # read back from the cache's index


def test_aligned_training_reads_the_crops_the_service_would_cut(data_dir, tmp_path):
    from unmask.training.cache import load_image
    from unmask.training.config import TrainConfig
    from unmask.training.loop import crop_reader

    mconfig = ModelConfig("lite0", 64)
    recs = dfdc_records(data_dir, "train")
    paths = [r.path for r in recs if r.label == 0][:2] + [r.path for r in recs if r.label == 1][:2]
    aligned = crop_reader(TrainConfig(aligned=True, cache_dir=str(tmp_path)), mconfig, paths, tmp_path)
    uncached = crop_reader(TrainConfig(aligned=True, cache=False), mconfig, paths, tmp_path)
    as_given = crop_reader(TrainConfig(cache_dir=str(tmp_path)), mconfig, paths, tmp_path)
    loader = AlignedLoader(mconfig)
    for p in paths:
        served = loader(p, 64)
        assert np.array_equal(aligned[p], served) and np.array_equal(uncached(p), served)
        assert np.array_equal(as_given[p], load_image(p, 64))
    assert loader.misses == 0 and aligned.misses == 0
    assert np.mean([np.abs(aligned[p].astype(int) - as_given[p].astype(int)).mean() for p in paths]) > 3  # a real re-cut
    assert len(list(tmp_path.glob("crops_*.npy"))) == 2  # one file each: switching never rebuilds the other


def test_each_cut_has_its_own_crops_and_landmarks_files():
    """Landmarks are cached by path: aligned points found under one crop geometry must never serve another."""
    from unmask.model.config import CropConfig
    from unmask.training.config import TrainConfig
    from unmask.training.loop import crops_name, landmarks_name

    plain, aligned = TrainConfig(), TrainConfig(aligned=True)
    tight, loose = ModelConfig("lite0", 224), ModelConfig("lite0", 224, crop=CropConfig(scale=1.3))
    assert landmarks_name(plain, tight) == landmarks_name(plain, loose) == "landmarks_224.npy"  # as given: the old file
    assert crops_name(plain, tight).startswith("crops_224_")
    names = {landmarks_name(plain, tight), landmarks_name(aligned, tight), landmarks_name(aligned, loose)}
    crops = {crops_name(plain, tight), crops_name(aligned, tight), crops_name(aligned, loose)}
    assert len(names) == len(crops) == 3
