"""Bad flags, config files, run folders and manifests: one line, exit code 2, nothing written (no training here)."""

import json
import shutil

import pytest
import torch
from unmask.cli.main import main


def _one_line_2(capsys, argv) -> str:
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2 and "Traceback" not in err, err
    assert err.splitlines()[-1].startswith("unmask: error:")
    return err.splitlines()[-1]


BAD_TRAIN_FLAGS = [
    (["--architecture", "bogus"], "architecture must be one of"),
    (["--input-size", "5"], "input_size must be 0 or in [32, 1024]"),
    (["--input-size", "-1"], "input_size"),
    (["--seed", "-1"], "seed must not be negative"),
    (["--log-every", "0"], "log_every must be positive"),
    (["--threads", "-1"], "threads must not be negative"),
    (["--workers", "-1"], "workers must not be negative"),
    (["--val-limit", "-1"], "val_limit must not be negative"),
    (["--device", "gpu"], "device must be auto, cpu, cuda"),
    (["--label-smoothing", "5"], "label_smoothing must be in [0, 1)"),
    (["--warmup-steps", "-10"], "warmup_steps must not be negative"),
    (["--val-permille", "-1"], "val_permille must be in [0, 1000]"),
    (["--val-permille", "2000"], "val_permille must be in [0, 1000]"),
    (["--max-steps", "-5"], "max_steps must not be negative"),
    (["--samples-per-epoch", "1000000000"], "samples_per_epoch 1000000000 is over"),
]


@pytest.mark.parametrize("flags,message", BAD_TRAIN_FLAGS)
def test_bad_train_flags_are_one_line_before_anything_is_written(flags, message, tmp_path, capsys):
    out = tmp_path / "run"
    line = _one_line_2(capsys, ["train", "--manifest", str(tmp_path / "m.csv"), "--out", str(out), *flags])
    assert message in line
    assert not out.exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is present here")
def test_cuda_without_cuda_is_one_line(tmp_path, capsys):
    assert "no CUDA device" in _one_line_2(capsys, ["train", "--out", str(tmp_path / "r"), "--device", "cuda"])
    assert "no CUDA device" in _one_line_2(capsys, ["eval", "default", "--device", "cuda"])


@pytest.mark.parametrize("text,message", [
    ("train = 5\n", "must hold a table"),
    ("mix = 5\n", "mix must be a table"),
    ('[mix]\nsbi = "x"\n', "mix.sbi must be a number"),
    ("epochs = 1.5\n", "epochs must be an integer, not 1.5"),
    ("batch_size = true\n", "batch_size must be an integer"),
    ('device = "tpu"\n', "device must be auto, cpu, cuda"),
    ('cbam = "false"\n', "cbam must be true or false, not 'false'"),
    ('balance = "false"\n', "balance must be true or false"),
    ("[mix]\nreenact = 1.5\n", "bad mix"),
    ("[mix]\nreenact = -0.1\n", "bad mix"),
    ("[mix]\nswap = 0.1\n", "unknown mix keys ['swap']"),
    ("[reenact]\nmouth = 0.9\n", "reenact: mouth and smile must be in"),
    ("[reenact]\nmouht = 0.08\n", "unknown reenact keys ['mouht']"),
    ("[reenact]\nresample = [0.9, 0.5]\n", "reenact: resample must be [lo, hi]"),
    ('[reenact]\nblur = "soft"\n', "bad reenact table"),
    ("reenact = 3\n", "reenact must be a table"),
    ('[augment]\npreset = "web"\nh264_crf = [20, 60]\n', "bad augmentation ranges"),
])
def test_config_file_types_are_checked(text, message, tmp_path):
    from unmask.training.config import resolve_config
    from unmask.training.errors import ConfigError

    path = tmp_path / "run.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        resolve_config(path)
    assert message in str(info.value)


@pytest.mark.parametrize("text", ["[1, 2]", '"str"', '{"train": 5}'])
def test_json_config_must_be_an_object(text, tmp_path, capsys):
    path = tmp_path / "config.json"
    path.write_text(text)
    assert "must hold a table" in _one_line_2(capsys, ["train", "--config", str(path), "--out", str(tmp_path / "r")])


def test_numbers_in_config_keep_their_meaning():
    from unmask.training.config import resolve_config

    cfg = resolve_config(None, {"lr": 1, "cbam": False, "mix": {"sbi": 0}})
    assert cfg.lr == 1.0 and isinstance(cfg.lr, float) and cfg.cbam is False and cfg.mix.sbi == 0.0


def _run_folder(tmp_path, **saved):
    """A run folder as a killed run leaves it: state.json and config.json (no training needed)."""
    from dataclasses import asdict

    from unmask.training.config import TrainConfig

    out = tmp_path / "run"
    out.mkdir()
    (out / "state.json").write_text(json.dumps({"step": 39}))
    cfg = TrainConfig(manifest=str(tmp_path / "m.csv"), out_dir=str(out), **saved)
    (out / "config.json").write_text(json.dumps(asdict(cfg)))
    return out


def test_a_run_folder_is_not_started_afresh(tmp_path, capsys):
    out = _run_folder(tmp_path)
    line = _one_line_2(capsys, ["train", "--manifest", str(tmp_path / "m.csv"), "--out", str(out)])
    assert "already holds a run" in line and "--resume" in line
    assert json.loads((out / "state.json").read_text()) == {"step": 39}


def test_resume_refuses_a_changed_schedule(tmp_path, capsys):
    out = _run_folder(tmp_path, batch_size=2)
    base = ["train", "--manifest", str(tmp_path / "m.csv"), "--out", str(out), "--resume"]
    line = _one_line_2(capsys, [*base, "--batch-size", "8"])
    assert "batch_size 2" in line and "config.json" in line
    from unmask.training.config import resolve_config
    from unmask.training.loop import check_run_folder

    # the same settings, or only ones that leave the weights alone (workers, device, ...), resume
    check_run_folder(resolve_config(out / "config.json", {"resume": True, "workers": 0, "max_steps": 3, "device": "cpu"}))


def test_empty_cache_dir_reads_the_jpegs(tmp_path):
    import argparse

    from unmask.training.commands import add_train_parser, train_config

    parser = argparse.ArgumentParser()
    add_train_parser(parser.add_subparsers(dest="command"))
    assert train_config(parser.parse_args(["train", "--cache-dir", ""])).cache is False
    cfg = train_config(parser.parse_args(["train", "--cache-dir", str(tmp_path)]))
    assert cfg.cache is True and cfg.cache_dir == str(tmp_path)
    help_text = parser._subparsers._group_actions[0].choices["train"].format_help()
    assert "runs/cache" not in help_text and "UNMASK_CACHE_DIR" in help_text


def test_help_names_every_architecture():
    import argparse

    from unmask.model.architectures import list_architectures
    from unmask.training.commands import add_train_parser

    parser = argparse.ArgumentParser()
    p = add_train_parser(parser.add_subparsers(dest="command"))
    help_text = " ".join(p.format_help().split())
    assert all(name in help_text for name in list_architectures()) and "imagenet (lite0, lite2)" in help_text


@pytest.fixture
def crops(tmp_path, data_dir):
    from unmask.training.datasets import dfdc_records

    recs = dfdc_records(data_dir, "all")
    paths = []
    for r in [r for r in recs if r.label == 0][:2] + [r for r in recs if r.label == 1][:2]:
        paths.append(tmp_path / f"{len(paths)}.jpg")
        shutil.copy(r.path, paths[-1])
    return paths


def _manifest(tmp_path, rows, header="path,label,split"):
    path = tmp_path / "m.csv"
    path.write_text(header + "\n" + "".join(",".join(row) + "\n" for row in rows))
    return path


def test_manifest_short_row_and_odd_split_are_one_line(crops, tmp_path, capsys):
    rows = [[p.name, "real" if i < 2 else "fake", "train"] for i, p in enumerate(crops)]
    short = _manifest(tmp_path, [*rows, [crops[0].name]])
    for cmd in (["train", "--out", str(tmp_path / "r")], ["eval", "default"]):
        assert f"{short}:6: 1 fields, the header has 3" in _one_line_2(capsys, [*cmd, "--manifest", str(short)])
    odd = _manifest(tmp_path, [[p.name, "real" if i < 2 else "fake", "validation"] for i, p in enumerate(crops)])
    line = _one_line_2(capsys, ["train", "--manifest", str(odd), "--out", str(tmp_path / "r")])
    assert "split 'validation'" in line and "not train, val or test" in line
    for split in ("val", "train"):
        assert "split 'validation'" in _one_line_2(capsys, ["eval", "default", "--manifest", str(odd), "--split", split])
    held = _manifest(tmp_path, [[p.name, "real" if i < 2 else "fake", "val"] for i, p in enumerate(crops)])
    assert "no training rows" in _one_line_2(capsys, ["train", "--manifest", str(held), "--out", str(tmp_path / "r")])
    assert "no crops to score" in _one_line_2(capsys, ["eval", "default", "--manifest", str(held), "--split", "train"])


@pytest.mark.parametrize("flags,message", [
    (["--batch-size", "0"], "--batch-size must be positive"),
    (["--batch-size", "-4"], "--batch-size must be positive"),
    (["--limit", "-1"], "--limit must not be negative"),
    (["--workers", "-1"], "--workers must not be negative"),
    (["--device", "gpu"], "device must be auto, cpu, cuda"),
    (["--calibrate", "fpr", "--target-fpr", "2"], "--target-fpr must be in [0, 1)"),
    (["--calibrate", "fpr", "--target-fpr", "-1"], "--target-fpr must be in [0, 1)"),
    (["--calibrate", "uncertain", "--uncertain-level", "0"], "--uncertain-level must be in (0, 1]"),
])
def test_bad_eval_flags_are_one_line(flags, message, tmp_path, capsys):
    out = tmp_path / "report.json"
    assert message in _one_line_2(capsys, ["eval", "default", "--manifest", str(tmp_path / "m.csv"), "--out", str(out), *flags])
    assert not out.exists()


def test_eval_outputs_are_checked_before_scoring(crops, tmp_path, capsys):
    manifest = _manifest(tmp_path, [[p.name, "real" if i < 2 else "fake"] for i, p in enumerate(crops)], "path,label")
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    roc, scores = tmp_path / "new" / "roc.png", tmp_path / "new" / "scores.csv"
    base = ["eval", "default", "--manifest", str(manifest), "--workers", "0", "--roc", str(roc), "--scores", str(scores)]
    line = _one_line_2(capsys, [*base, "--out", str(blocker / "report.json")])
    assert "a file stands where its folder should be" in line
    assert not roc.exists() and not scores.exists()  # nothing written before the refusal
    line = _one_line_2(capsys, [*base, "--calibrate", "eer", "--save-as", str(blocker / "copy")])
    assert "copy.safetensors" in line and not roc.exists()
    assert "is a folder" in _one_line_2(capsys, [*base, "--out", str(tmp_path)])


def test_roc_png_makes_its_folder(tmp_path):
    import numpy as np
    from unmask.training.evaluate import roc_png

    path = roc_png(np.array([0, 1, 0, 1]), np.array([0.1, 0.9, 0.4, 0.6]), tmp_path / "new" / "roc.png", "t")
    assert path.read_bytes()[:4] == b"\x89PNG"


def test_threshold_for_fpr_refuses_a_rate_outside_0_1():
    import numpy as np
    from unmask.training.calibration import threshold_for_fpr

    with pytest.raises(ValueError, match="in \\[0, 1\\)"):
        threshold_for_fpr(np.array([0.1, 0.2]), 2.0)


def _recipe_files():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    return sorted([*root.glob("docs/long_run*.toml"), *root.glob("docs/recipes/*.toml"),
                   *root.glob("docs/experiments/configs/*.toml")])


@pytest.mark.parametrize("path", _recipe_files(), ids=lambda p: p.name)
def test_shipped_configs_validate(path):
    import tomllib

    from unmask.training.config import resolve_config

    plan = tomllib.loads(path.read_text())
    if "run" not in plan:
        resolve_config(path, {"device": "cpu"})
        return
    for run in plan["run"]:  # an ablation plan (python -m unmask.training.ablations): each variant over its base
        values = {k: v for k, v in run.items() if k not in {"name", "raw_weights_of"}}
        resolve_config(None, {**plan.get("base", {}), **values, "device": "cpu"})


@pytest.mark.parametrize("name", ["lite0-dfdc-sbi", "lite0-dfdc-sbi-utk"])
def test_bundled_recipes_validate_and_keep_their_mix(name):
    from unmask.model.checkpoint import BUNDLED_DIR
    from unmask.training.config import TrainConfig

    recipe = json.loads((BUNDLED_DIR / f"{name}.json").read_text())["training"]["recipe"]
    cfg = TrainConfig(**{**recipe, "device": "cpu"})
    assert cfg.mix.sbi == recipe["mix"]["sbi"] and cfg.mix.reenact == 0.0
    assert cfg.augment.noise_p == 0.0 and cfg.augment.h264_p == 0.0  # no new augmentation in an old recipe


def test_the_reenact_recipe_and_its_control_differ_only_in_the_reenact_share():
    from dataclasses import asdict
    from pathlib import Path

    from unmask.training.config import resolve_config

    root = Path(__file__).resolve().parents[2]
    recipe = resolve_config(root / "docs/recipes/lite0-dfdc-sbi-reenact.toml", {"device": "cpu"})
    control = resolve_config(root / "docs/experiments/configs/control-sbi.toml", {"device": "cpu"})
    assert recipe.mix.reenact > 0 and control.mix.reenact == 0 and recipe.init == "lite0-dfdc-sbi-utk"
    a, b = asdict(recipe), asdict(control)
    assert {k for k in a if a[k] != b[k]} == {"mix", "name"}
    assert {k for k in a["mix"] if a["mix"][k] != b["mix"][k]} == {"reenact"}
    assert recipe.samples_per_epoch == 12800 and recipe.augment.h264_p > 0


def test_a_run_saved_before_the_reenact_keys_resumes(tmp_path, capsys):
    """A config.json written before reenact and the web-video augmentation existed: same run, so it resumes."""
    out = _run_folder(tmp_path)
    saved = json.loads((out / "config.json").read_text())
    del saved["reenact"], saved["mix"]["reenact"]
    for key in ("blur_sigma", "noise_p", "noise_sigma", "h264_p", "h264_crf"):
        del saved["augment"][key]
    (out / "config.json").write_text(json.dumps(saved))
    from unmask.training.config import resolve_config
    from unmask.training.loop import check_run_folder

    check_run_folder(resolve_config(out / "config.json", {"resume": True}))
    line = _one_line_2(capsys, ["train", "--config", str(out / "config.json"), "--resume", "--sbi", "0.3"])
    assert "mix" in line  # a changed share is still refused
    from unmask.training.errors import ConfigError

    cfg = resolve_config(out / "config.json", {"resume": True, "mix": {**saved["mix"], "reenact": 0.1}})
    with pytest.raises(ConfigError, match="mix"):
        check_run_folder(cfg)


def test_the_bundled_default_was_made_by_its_recipe_file():
    import tomllib
    from pathlib import Path

    from unmask.model.checkpoint import BUNDLED_DIR, DEFAULT_MODEL
    from unmask.training.config import resolve_config

    saved = json.loads((BUNDLED_DIR / f"{DEFAULT_MODEL}.json").read_text())["training"]["recipe"]
    path = Path(__file__).resolve().parents[2] / "docs" / "recipes" / f"{DEFAULT_MODEL}.toml"
    assert set(tomllib.loads(path.read_text())) <= set(saved)
    cfg = resolve_config(path, {"device": "cpu"})
    for key in ("init", "lr", "epochs", "samples_per_epoch", "seed", "use_utkface"):
        assert getattr(cfg, key) == saved[key], key
    assert {k: v for k, v in saved["mix"].items() if v} == {k: v for k, v in vars(cfg.mix).items() if v}
