"""Retraining: manifest data, config file + flags, resume, fine-tune lineage, focal/mixup, eval, torchrun."""

import csv
import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch
from unmask.model.checkpoint import load_checkpoint

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def manifest(tmp_path_factory, data_dir):
    """16 crops (8 real, 8 fake, 2 frames per 'video') in unmask extract's manifest format."""
    from unmask.training.datasets import dfdc_records

    out = tmp_path_factory.mktemp("crops")
    recs = dfdc_records(data_dir, "all")
    chosen = [r for r in recs if r.label == 0][:8] + [r for r in recs if r.label == 1][:8]
    (out / "crops").mkdir()
    with (out / "manifest.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, ["path", "source", "label", "frame", "time", "face", "x1", "y1", "x2", "y2", "detection"])
        w.writeheader()
        for i, r in enumerate(chosen):
            name = f"crops/{i:02d}.jpg"
            shutil.copy(r.path, out / name)
            w.writerow({"path": name, "source": f"videos/{r.label}_{i // 2}.mp4", "label": "fake" if r.label else "real",
                        "frame": i % 2, "time": 0, "face": 0, "x1": 0, "y1": 0, "x2": 1, "y2": 1, "detection": 1})
    return out / "manifest.csv"


def _base(manifest, out):
    return dict(manifest=str(manifest), out_dir=str(out), init="none", input_size=64, epochs=1, samples_per_epoch=8,
                batch_size=4, warmup_steps=1, workers=0, threads=1, val_permille=500, progress=False, command="test")


def _cfg(manifest, out, **kw):
    from unmask.training.config import TrainConfig

    return TrainConfig(**{**_base(manifest, out), **kw})


def test_manifest_train_writes_loadable_checkpoint(manifest, tmp_path):
    from unmask.training.loop import train

    path = train(_cfg(manifest, tmp_path / "run", name="tiny"))
    model, info = load_checkpoint(path)
    assert path.name == "epoch1.safetensors" and info.name == "tiny" and info.config.input_size == 64
    assert info.training["recipe"]["manifest"] == str(manifest)
    assert info.metrics["history"][0]["step"] == 2
    assert json.loads((tmp_path / "run" / "config.json").read_text())["batch_size"] == 4
    assert model(torch.zeros(1, 3, 64, 64)).shape == (1,)


def test_resume_after_interruption_continues_from_last_step(manifest, tmp_path):
    from unmask.training.loop import train

    full = train(_cfg(manifest, tmp_path / "full", epochs=2))  # 2 steps per epoch, 4 in all
    run = tmp_path / "cut"
    train(_cfg(manifest, run, epochs=2, max_steps=3))  # "killed" after step 3, mid-epoch 2
    state = json.loads((run / "state.json").read_text())
    assert (state["step"], state["epoch"], state["step_in_epoch"]) == (3, 2, 1)
    assert not (run / "epoch2.safetensors").exists()
    resumed = train(_cfg(manifest, run, epochs=2, resume=True))
    _, info = load_checkpoint(resumed)
    assert [h["step"] for h in info.metrics["history"]] == [2, 4]
    a, b = load_checkpoint(full)[0].state_dict(), load_checkpoint(resumed)[0].state_dict()
    assert all(torch.allclose(a[k].float(), b[k].float(), atol=1e-5) for k in a)
    assert json.loads((run / "state.json").read_text())["step"] == 4


def test_stop_before_the_first_epoch_end_names_no_checkpoint(manifest, tmp_path, caplog):
    import logging

    from unmask.cli.main import main

    caplog.set_level(logging.INFO)
    out = tmp_path / "run"
    assert main(["train", "--manifest", str(manifest), "--out", str(out), "--init", "none", "--input-size", "32",
                 "--samples-per-epoch", "8", "--batch-size", "2", "--epochs", "1", "--max-steps", "1", "--workers", "0",
                 "--no-progress", "--cache-dir", ""]) == 0
    assert not list(out.glob("epoch*")) and (out / "state.json").is_file()
    assert "no epoch checkpoint yet" in caplog.text and "last checkpoint" not in caplog.text


def test_config_file_and_flag_override(tmp_path):
    import argparse

    from unmask.training.commands import add_train_parser, train_config

    toml = tmp_path / "run.toml"
    toml.write_text('epochs = 3\nlr = 0.001\nloss = "focal"\nfinetune = true\n[mix]\nsbi = 0.1\n')
    parser = argparse.ArgumentParser()
    add_train_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["train", "--config", str(toml), "--epochs", "2", "--lr-scale", "0.5"])
    cfg = train_config(args)
    assert (cfg.epochs, cfg.lr, cfg.loss) == (2, 0.001, "focal")  # flag beats file, file beats default
    assert cfg.lr_scale == 0.5 and cfg.freeze_blocks == 4  # flag beats preset; preset fills the rest
    assert cfg.mix.sbi == 0.1
    assert tomllib.loads(toml.read_text())["epochs"] == 3
    from unmask.training.errors import ConfigError

    toml.write_text("epoch = 3\n")
    with pytest.raises(ConfigError, match="unknown keys"):
        train_config(parser.parse_args(["train", "--config", str(toml)]))


def test_finetune_writes_parent_and_freezes_lower_blocks(manifest, tmp_path):
    from unmask.model.architectures import create_model
    from unmask.model.checkpoint import CheckpointInfo, save_checkpoint
    from unmask.model.config import ModelConfig
    from unmask.training.config import resolve_config
    from unmask.training.loop import file_sha256, train

    parent = save_checkpoint(tmp_path / "parent", create_model("lite0", cbam=True),
                             CheckpointInfo("src", "7", ModelConfig("lite0", 64), architecture_kwargs={"cbam": True}))
    cfg = resolve_config(None, {**_base(manifest, tmp_path / "ft"), "init": str(parent), "finetune": True, "cbam": True})
    assert cfg.lr_scale == 0.1 and cfg.freeze_epochs == 1
    model, info = load_checkpoint(train(cfg))
    assert info.parent.startswith("src@7 sha256:") and info.name == "src-ft"
    assert info.training["parent"]["sha256"] == file_sha256(parent)
    assert info.training["recipe"]["lr_scale"] == 0.1 and info.architecture_kwargs == {"cbam": True}
    src = load_checkpoint(parent)[0].state_dict()
    new = model.state_dict()
    assert torch.equal(src["backbone.conv_stem.weight"], new["backbone.conv_stem.weight"])  # frozen
    assert not torch.equal(src["head.weight"], new["head.weight"])  # trained


def test_focal_loss_and_mixup():
    import torch.nn.functional as F
    from unmask.training.losses import focal_loss, mixup

    logits, y = torch.tensor([3.0, -2.0, 0.5, -0.1]), torch.tensor([1.0, 0.0, 0.0, 1.0])
    assert torch.allclose(focal_loss(logits, y, gamma=0.0), F.binary_cross_entropy_with_logits(logits, y))
    easy, hard = torch.tensor([4.0]), torch.tensor([-1.0])
    one = torch.ones(1)
    ratio_easy = focal_loss(easy, one) / F.binary_cross_entropy_with_logits(easy, one)
    ratio_hard = focal_loss(hard, one) / F.binary_cross_entropy_with_logits(hard, one)
    assert ratio_easy < 0.001 and ratio_hard > 0.5  # easy examples are down-weighted
    torch.manual_seed(0)
    x, t = torch.arange(4.0).view(4, 1, 1, 1).expand(4, 3, 2, 2), torch.tensor([0.0, 1.0, 0.0, 1.0])
    mx, mt = mixup(x, t, alpha=0.4)
    assert mx.shape == x.shape and ((mt >= 0) & (mt <= 1)).all()
    assert torch.allclose(mx.mean(), x.mean()) and torch.allclose(mt.mean(), t.mean())  # a convex mix of a permutation
    assert mixup(x, t, alpha=0.0)[0] is x


def test_eval_report_known_scores_and_threshold():
    from unmask.training.calibration import pick_threshold
    from unmask.training.datasets import FaceRecord
    from unmask.training.evaluate import report

    recs = [FaceRecord(f"{i}.jpg", label, "g", "", video, manip) for i, (label, video, manip) in enumerate(
        [(0, "r1", ""), (0, "r1", ""), (0, "r2", ""), (1, "f1", "A"), (1, "f1", "A"), (1, "f2", "B")])]
    labels = np.array([r.label for r in recs])
    probs = np.array([0.1, 0.6, 0.3, 0.5, 0.9, 0.2])
    rep = report(recs, labels, probs, 0.5)
    # frame AUC: of 9 real/fake pairs the fake wins 5 (0.5>0.1,0.3; 0.9>all; 0.2>0.1) -> 6/9
    assert rep["frame"]["auc"] == pytest.approx(6 / 9) and rep["auc"] == rep["frame"]["auc"]
    # video scores: r1 0.35, r2 0.3, f1 0.7, f2 0.2 -> fake wins 2 of 4 pairs
    assert rep["video"]["auc"] == pytest.approx(0.5) and rep["video"]["n_videos"] == 4
    assert rep["per_manipulation"]["A"]["auc"] == pytest.approx(5 / 6) and rep["per_manipulation"]["B"]["n_fake"] == 1
    t = pick_threshold(labels, probs, "youden")
    j = (probs[labels == 1] >= t).mean() - (probs[labels == 0] >= t).mean()
    assert t in (0.2, 0.5) and j == pytest.approx(1 / 3)  # both give TPR - FPR = 1/3, the best here
    assert 0 < pick_threshold(labels, probs, "eer") < 1


def test_eval_command_on_manifest_calibrates_a_copy(manifest, tmp_path):
    import argparse

    from unmask.model.architectures import create_model
    from unmask.model.checkpoint import CheckpointInfo, save_checkpoint
    from unmask.model.config import ModelConfig
    from unmask.training.commands import add_eval_parser

    stem = tmp_path / "tiny"
    save_checkpoint(stem, create_model("lite0"), CheckpointInfo("tiny", "0", ModelConfig("lite0", 64)))
    before = stem.with_suffix(".json").read_text()
    parser = argparse.ArgumentParser()
    add_eval_parser(parser.add_subparsers())
    out = tmp_path / "eval" / "report.json"
    args = parser.parse_args(["eval", str(stem), "--manifest", str(manifest), "--out", str(out), "--workers", "0",
                              "--roc", str(tmp_path / "roc.png"), "--calibrate", "youden"])
    assert args.func(args) == 0
    rep = json.loads(out.read_text())
    assert rep["n_real"] == 8 and rep["video"]["n_videos"] == 8 and rep["tta"] == ["identity", "hflip"]
    assert (tmp_path / "roc.png").read_bytes()[:4] == b"\x89PNG"
    copy = Path(rep["calibration"]["written_to"])
    assert copy.parent == out.parent and load_checkpoint(copy)[1].config.threshold == rep["calibration"]["threshold"]
    copy_info = load_checkpoint(copy)[1]  # named after its file, the source as its parent: served, it can be told apart
    assert copy_info.name == "tiny-calibrated" and copy_info.parent.startswith("tiny@0 sha256:")
    assert stem.with_suffix(".json").read_text() == before  # the source is untouched without --in-place


def test_eval_command_fits_the_uncertain_band_in_place_and_a_new_threshold_refits_it(manifest, tmp_path):
    from unmask.cli.main import main
    from unmask.model.architectures import create_model
    from unmask.model.checkpoint import CheckpointInfo, read_info, save_checkpoint
    from unmask.model.config import ModelConfig
    from unmask.training.calibration import fit_uncertain_band

    stem = tmp_path / "banded"
    torch.manual_seed(1)  # not the weights of the session's tiny_checkpoint: the ONNX cache is keyed by their hash alone
    save_checkpoint(stem, create_model("lite0"), CheckpointInfo("banded", "0", ModelConfig("lite0", 64),
                                                                metrics={"calibration": {"method": "temperature"}}))
    scores, report = tmp_path / "scores.csv", tmp_path / "report.json"
    common = ["-q", "eval", str(stem), "--manifest", str(manifest), "--workers", "0", "--in-place", "--out", str(report)]
    assert main([*common, "--calibrate", "uncertain", "--uncertain-level", "1", "--scores", str(scores)]) == 0
    rows = list(csv.DictReader(scores.open()))
    labels, probs = [int(r["label"]) for r in rows], [float(r["prob_fake"]) for r in rows]
    expected = fit_uncertain_band(labels, probs, 0.5, 1.0)  # a random model: wrong often enough for a band at 100%
    info = read_info(stem)
    assert expected is not None and info.config.uncertain_band == pytest.approx(expected, abs=1e-5)
    assert info.config.uncertain_level == 1.0 and info.metrics["uncertain_band"]["band"] == list(info.config.uncertain_band)
    assert info.metrics["calibration"] == {"method": "temperature"}  # the temperature's record is kept
    assert main([*common, "--calibrate", "youden"]) == 0  # a new threshold: the band is refitted around it, same level
    info = read_info(stem)
    threshold, band = info.config.threshold, info.config.uncertain_band
    assert threshold == json.loads(report.read_text())["calibration"]["threshold"] and info.config.uncertain_level == 1.0
    assert info.metrics["uncertain_band"]["threshold"] == threshold and (band is None or band[0] <= threshold <= band[1])


def test_missing_extra_is_one_line_exit_2(manifest, tmp_path, monkeypatch, capsys):
    from unmask.cli.main import main

    monkeypatch.setitem(sys.modules, "dlib", None)  # import dlib -> ImportError (SBI needs its landmarks)
    code = main(["train", "--manifest", str(manifest), "--out", str(tmp_path / "x"), "--init", "none", "--sbi", "0.25",
                 "--input-size", "64", "--samples-per-epoch", "4", "--batch-size", "4", "--epochs", "1",
                 "--workers", "0", "--no-progress", "--cache-dir", str(tmp_path / "cache")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1].startswith("unmask: error:") and "dlib" in err[-1]
    assert "Traceback" not in "\n".join(err)


@pytest.mark.slow
def test_torchrun_two_processes_on_cpu(manifest, tmp_path):
    out = tmp_path / "ddp"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    cmd = [str(Path(sys.executable).parent / "torchrun"), "--nproc_per_node", "2", "--master_port", "29517",
           "-m", "unmask.training.commands", "train", "--manifest", str(manifest), "--out", str(out),
           "--init", "none", "--input-size", "64", "--epochs", "1", "--samples-per-epoch", "16", "--batch-size", "4",
           "--workers", "0", "--threads", "1", "--val-permille", "500", "--no-progress", "--device", "cpu"]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    model, info = load_checkpoint(out / "epoch1")
    assert info.training["world_size"] == 2
    assert info.metrics["history"][0]["step"] == 2  # 16 samples / (4 per rank x 2 ranks)
    assert json.loads((out / "state.json").read_text())["step"] == 2


def test_sigterm_saves_state_then_stops(manifest, tmp_path, monkeypatch):
    import signal

    from unmask.training import loop

    real_mixup, calls = loop.mixup, []

    def mixup_then_signal(x, y, alpha):  # the "kill" arrives during step 2
        calls.append(1)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGTERM)
        return real_mixup(x, y, alpha)

    monkeypatch.setattr(loop, "mixup", mixup_then_signal)
    before = signal.getsignal(signal.SIGTERM)  # not always SIG_DFL: e.g. ray.init installs its own
    with pytest.raises(KeyboardInterrupt):
        loop.train(_cfg(manifest, tmp_path / "run", epochs=2))
    assert json.loads((tmp_path / "run" / "state.json").read_text())["step"] == 2  # step 2 finished, then saved
    assert signal.getsignal(signal.SIGTERM) is before  # the handler that was there is put back


def test_all_options_train_two_steps(manifest, tmp_path):
    from unmask.training.loop import train

    cfg = _cfg(manifest, tmp_path / "run", batch_size=2, accum_steps=2, loss="focal", mixup=0.4, ema=0.9, cbam=True,
               freeze_blocks=2, freeze_epochs=1, balance=False)
    model, info = load_checkpoint(train(cfg))
    assert info.metrics["history"][0]["step"] == 2  # 8 samples / (2 x 2 accumulated)
    assert info.metrics["ema"] == 0.9 and info.architecture_kwargs == {"cbam": True}
    state = json.loads((tmp_path / "run" / "state.json").read_text())
    assert state["step"] == 2 and state["scheduler"]["last_epoch"] == 2


def test_ema_average():
    from unmask.training.state import EMA

    model = torch.nn.Linear(1, 1, bias=False)
    torch.nn.init.constant_(model.weight, 0.0)
    ema = EMA(model, decay=0.5)
    torch.nn.init.constant_(model.weight, 1.0)
    ema.update(model, 100)  # past the warm-up: decay 0.5
    ema.update(model, 101)
    assert ema.shadow["weight"].item() == pytest.approx(0.75)
    warm = EMA(model, decay=0.999)
    torch.nn.init.constant_(model.weight, 0.0)
    warm.update(model, 0)  # first update: decay min(0.999, 1/10) = 0.1
    assert warm.shadow["weight"].item() == pytest.approx(0.1)


def test_data_errors_are_one_line(tmp_path):
    from unmask.training.commands import _one_line
    from unmask.training.datasets import DataError, manifest_records
    from unmask.training.errors import TrainingError

    csv_path = tmp_path / "m.csv"
    csv_path.write_text("path,label\nmissing.jpg,fake\n")
    with pytest.raises(DataError, match="1 of 1 files not found"):
        manifest_records(csv_path)

    def worker_failure(args):  # what DataLoader re-raises from a worker
        raise DataError("Caught DataError in DataLoader worker process 0.\nOriginal Traceback ...\n"
                        "unmask.training.datasets.DataError: x.jpg: cannot read image")

    with pytest.raises(TrainingError) as info:
        _one_line(worker_failure)(None)
    assert str(info.value) == "x.jpg: cannot read image"


def test_class_balance_mix():
    from unmask.training.config import TrainConfig, resolve_config
    from unmask.training.loop import epoch_mix as _mix

    m = _mix(TrainConfig(manifest="m.csv"), 10, 30)
    assert (m.real, m.dfdc_fake, m.sbi) == (0.5, 0.5, 0.0)  # balanced, no SBI on a manifest
    m = _mix(resolve_config(None, {"manifest": "m.csv", "mix": {"sbi": 0.1}}), 10, 30)
    assert m.real == pytest.approx(m.dfdc_fake + m.sbi)
    assert _mix(TrainConfig(), 10, 30).sbi == 0.25  # the shared-data recipe
    m = _mix(TrainConfig(manifest="m.csv", balance=False), 10, 30)
    assert m.dfdc_fake / m.real == pytest.approx(3.0)
    m = _mix(resolve_config(None, {"mix": {"sbi": 0.3, "sbi_regional": 0.5, "utk_share": 0.2}}), 10, 30)
    assert (m.sbi_regional, m.utk_share) == (0.5, 0.2)  # the other shares pass through as configured
    m = _mix(resolve_config(None, {"mix": {"sbi": 0.2, "reenact": 0.1}}), 10, 30)
    assert (m.sbi, m.reenact) == (0.2, 0.1) and m.dfdc_fake == pytest.approx(0.2)  # stored fakes fill what both leave
