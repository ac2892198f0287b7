import csv
import json

import pytest
import torch
from unmask.model.checkpoint import load_checkpoint


def test_imagenet_mapping_loads():
    import timm
    from unmask.training.imagenet_lite import load_imagenet_lite

    backbone = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=0)
    before = backbone.conv_stem.weight.clone()
    mean, std = load_imagenet_lite(backbone, "lite0")  # raises on any shape mismatch
    assert not torch.equal(before, backbone.conv_stem.weight)
    assert mean == (0.5, 0.5, 0.5) and std == (0.5, 0.5, 0.5)


@pytest.fixture()
def tiny_data(tmp_path, data_dir):
    """A copy of a few shared crops (both splits, both labels) and UTKFace faces."""
    import shutil

    from unmask.training.datasets import dfdc_records

    root = tmp_path / "data"
    (root / "dfdc_faces" / "faces").mkdir(parents=True)
    (root / "utkface").mkdir()
    rows = []
    for split in ("train", "val"):
        recs = dfdc_records(data_dir, split)
        for label in (0, 1):
            rows += [r for r in recs if r.label == label][:3]
    with (data_dir / "dfdc_faces" / "labels.csv").open() as f:
        by_path = {str(data_dir / "dfdc_faces" / r["path"]): r for r in csv.DictReader(f)}
    with (root / "dfdc_faces" / "labels.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["path", "label", "video", "original", "group", "source_size"])
        writer.writeheader()
        for r in rows:
            row = by_path[r.path]
            shutil.copy(r.path, root / "dfdc_faces" / row["path"])
            writer.writerow(row)
    for p in sorted((data_dir / "utkface").glob("*.jpg"))[:2]:
        shutil.copy(p, root / "utkface" / p.name)
    return root


def test_two_step_train_writes_loadable_checkpoint(tiny_data, tmp_path):
    from unmask.training.loop import TrainConfig, train

    cfg = TrainConfig(
        data=str(tiny_data),
        out_dir=str(tmp_path / "run"),
        init="none",
        input_size=64,
        epochs=1,
        samples_per_epoch=8,
        batch_size=4,
        warmup_steps=1,
        workers=0,
        threads=2,
        cache_dir=str(tmp_path / "cache"),
        command="test",
    )
    path = train(cfg)
    model, info = load_checkpoint(path)
    assert info.name == "lite0-dfdc-sbi" and info.config.input_size == 64
    assert info.training["command"] == "test"
    assert set(info.metrics["dfdc_val"]) >= {"auc", "log_loss"}
    assert model(torch.zeros(1, 3, 64, 64)).shape == (1,)
    assert (tmp_path / "run" / "metrics.csv").is_file()
    json.loads(path.with_suffix(".json").read_text())


def test_eval_command_reports_json(tiny_data, tmp_path, monkeypatch):
    import argparse

    from unmask.model.architectures import create_model
    from unmask.model.checkpoint import CheckpointInfo, save_checkpoint
    from unmask.model.config import ModelConfig
    from unmask.training.commands import add_eval_parser, add_train_parser

    stem = tmp_path / "tiny"
    save_checkpoint(stem, create_model("lite0"), CheckpointInfo("tiny", "0", ModelConfig("lite0", 64)))
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    add_train_parser(sub)
    add_eval_parser(sub)
    out = tmp_path / "report.json"
    monkeypatch.chdir(tmp_path)
    args = parser.parse_args(["eval", str(stem), "--data", str(tiny_data), "--out", str(out), "--workers", "0"])
    assert args.func(args) == 0
    report = json.loads(out.read_text())
    assert {"auc", "log_loss", "ap", "eer", "accuracy"} <= set(report)
    assert report["n_real"] == 3 and report["n_fake"] == 3


def test_raw_weights_checkpoint_is_the_run_without_ema(tiny_data, tmp_path):
    from safetensors.torch import load_file
    from unmask.training.ablations import raw_weights_checkpoint
    from unmask.training.datasets import dfdc_records
    from unmask.training.loop import TrainConfig, train

    cfg = TrainConfig(data=str(tiny_data), out_dir=str(tmp_path / "run"), init="none", input_size=64, epochs=1,
                      samples_per_epoch=8, batch_size=4, warmup_steps=1, workers=0, threads=2, ema=0.9,
                      cache_dir=str(tmp_path / "cache"), command="test")
    served = train(cfg)
    raw_path = raw_weights_checkpoint(tmp_path / "run", tmp_path / "raw", dfdc_records(tiny_data, "val"))
    raw, info = load_checkpoint(raw_path)
    state = load_file(str(tmp_path / "run" / "state.safetensors"))
    ema, _ = load_checkpoint(served)
    assert all(torch.equal(v, state[f"model.{k}"]) for k, v in raw.state_dict().items())
    ema_state = ema.state_dict()
    assert not all(torch.equal(v, ema_state[k]) for k, v in raw.state_dict().items())  # not the EMA copy
    assert info.metrics["ema"] is None and info.metrics["dfdc_val"]["n_real"] == 3


def test_training_with_reenact_fakes_validates_each_generator(tiny_data, tmp_path):
    from unmask.training.config import resolve_config
    from unmask.training.loop import train

    cfg = resolve_config(None, dict(data=str(tiny_data), out_dir=str(tmp_path / "run"), init="none", input_size=64, epochs=1,
                                    samples_per_epoch=8, batch_size=4, warmup_steps=1, workers=0, threads=2,
                                    cache_dir=str(tmp_path / "cache"), command="test", augment="web",
                                    mix={"sbi": 0.2, "reenact": 0.3}))
    _, info = load_checkpoint(train(cfg))
    assert info.metrics["reenact_val"]["n_fake"] == 3 and info.metrics["sbi_val"]["n_fake"] == 3  # the val reals, faked
    assert info.training["data"]["pseudo_fakes"] == {"sbi": 0.2, "reenact": 0.3}
    assert info.training["recipe"]["mix"]["reenact"] == 0.3 and info.training["recipe"]["reenact"]["mouth"] > 0
