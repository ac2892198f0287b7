import dataclasses
import json
import os
import re
import stat

import pytest
import torch
from unmask.model.architectures import create_model
from unmask.model.checkpoint import (
    BUNDLED_DIR,
    CheckpointError,
    CheckpointInfo,
    list_bundled,
    load_checkpoint,
    read_info,
    resolve_checkpoint,
    save_checkpoint,
    update_metadata,
)
from unmask.model.config import default_config


def _save(tmp_path, arch="lite0", half=False, **info_kw):
    torch.manual_seed(1)
    model = create_model(arch).eval()
    info = CheckpointInfo(name="t", version="1", config=default_config(arch), **info_kw)
    return model, save_checkpoint(tmp_path / "ck", model, info, half=half)


def test_round_trip_gives_identical_outputs(tmp_path):
    model, path = _save(tmp_path, metrics={"auc": 0.9}, training={"data": "x"})
    loaded, info = load_checkpoint(path)
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))
    assert info.metrics == {"auc": 0.9} and info.training == {"data": "x"}
    assert info.config == default_config("lite0")
    assert info.created  # stamped on save


def test_the_weights_file_is_as_readable_as_its_metadata(tmp_path):
    """safetensors writes through a 0600 temp file: a service account could read the JSON but not the weights."""
    old = os.umask(0o022)
    try:
        _, path = _save(tmp_path)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == stat.S_IMODE(path.with_suffix(".json").stat().st_mode) == 0o644


def test_half_storage_is_smaller_and_close(tmp_path):
    model, full = _save(tmp_path / "full")
    _, half = _save(tmp_path / "half", half=True)
    assert half.stat().st_size < 0.6 * full.stat().st_size
    loaded, _ = load_checkpoint(half)
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        assert torch.allclose(model(x), loaded(x), atol=5e-2)


def test_metadata_that_disagrees_with_weights_is_named(tmp_path):
    _, path = _save(tmp_path)
    meta = json.loads(path.with_suffix(".json").read_text())
    meta["config"]["architecture"] = "efficientnet_b0"
    path.with_suffix(".json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="do not match the metadata's architecture 'efficientnet_b0'"):
        load_checkpoint(path)


@pytest.mark.parametrize(
    "weights, meta, message",
    [
        (b"not safetensors", None, "not a safetensors file"),
        (None, "{not json", "not valid JSON"),
        (None, json.dumps({"name": "x"}), "not an unmask checkpoint"),
        (None, json.dumps({"format": "unmask-checkpoint", "format_version": 1, "name": "x", "version": "1", "config": {"architecture": "lite0", "input_size": 5}}), "input_size: 5"),
    ],
)
def test_not_a_checkpoint_says_what_is_wrong(tmp_path, weights, meta, message):
    _, path = _save(tmp_path)
    if weights is not None:
        path.write_bytes(weights)
    if meta is not None:
        path.with_suffix(".json").write_text(meta)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(path)


def test_missing_metadata(tmp_path):
    _, path = _save(tmp_path)
    path.with_suffix(".json").unlink()
    with pytest.raises(CheckpointError, match="metadata file not found"):
        load_checkpoint(path)


def test_unknown_name_lists_bundled_models():
    with pytest.raises(CheckpointError, match="bundled models are"):
        resolve_checkpoint("no-such-model")


def test_default_resolves_to_a_bundled_checkpoint():
    path = resolve_checkpoint(None)
    assert path.parent == BUNDLED_DIR and path.is_file()
    info = read_info(path)
    assert info.metrics, "the bundled model records its measured metrics"
    assert path.stat().st_size < 50 * 1024 * 1024


@pytest.mark.parametrize("name", list_bundled())
def test_every_bundled_model_loads_strictly_with_its_card_and_calibration(name):
    model, info = load_checkpoint(resolve_checkpoint(name))
    assert info.name == name
    assert (BUNDLED_DIR / f"{name}.md").is_file(), "a bundled model ships its model card"
    assert info.config.temperature == pytest.approx(info.metrics["calibration"]["temperature"])
    assert {f["path"] for f in info.metrics["shared_files"]["files"]}, "its shared-file scores are pinned"


def test_update_metadata_rewrites_config_and_named_metrics_only(tmp_path):
    model, path = _save(tmp_path, metrics={"history": [1, 2], "calibration": {"old": True}})
    weights = path.read_bytes()
    config = dataclasses.replace(read_info(path).config, temperature=0.8).to_dict()
    update_metadata(path, config, calibration={"temperature": 0.8})
    update_metadata(path, shared_files={"frames": 32, "files": []})
    info = read_info(path)
    assert info.config.temperature == 0.8 and info.name == "t"
    assert info.metrics == {"history": [1, 2], "calibration": {"temperature": 0.8}, "shared_files": {"frames": 32, "files": []}}
    assert path.read_bytes() == weights


def test_undefined_metrics_are_written_as_null_so_the_metadata_is_strict_json(tmp_path):
    _, path = _save(tmp_path, metrics={"auc": float("nan"), "history": [{"eer": float("inf"), "loss": 0.5}]})
    update_metadata(path, calibration={"ece": float("nan")})
    text = path.with_suffix(".json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    metrics = json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} in the metadata"))["metrics"]
    assert metrics == {"auc": None, "history": [{"eer": None, "loss": 0.5}], "calibration": {"ece": None}}


def test_a_stem_with_a_dot_keeps_it(tmp_path):
    """"model-v1.5" is the whole stem: only .json / .safetensors are stripped, so ".5" survives (and "cal.v2")."""
    model = create_model("lite0").eval()
    info = CheckpointInfo(name="t", version="1.5", config=default_config("lite0"))
    weights = save_checkpoint(tmp_path / "model-v1.5", model, info)
    assert weights == tmp_path / "model-v1.5.safetensors" and (tmp_path / "model-v1.5.json").is_file()
    for given in ("model-v1.5", "model-v1.5.json", "model-v1.5.safetensors"):
        assert resolve_checkpoint(tmp_path / given) == weights
        assert load_checkpoint(tmp_path / given)[1].version == "1.5"


# Each passed the old check yet failed later: a NaN score, a wrong AUC, a traceback.
BAD_CONFIG = [
    ({"std": [0, 0, 0]}, "std:"),
    ({"std": [0.2, 0.2]}, "std:"),
    ({"mean": "abc"}, "mean:"),
    ({"mean": [123.7, 116.3, 103.5]}, "mean:"),  # 0-255 scale: pixels are normalised from [0, 1]
    ({"crop": 5}, "crop:"),
    ({"crop": {"scale": "big"}}, "crop scale:"),
    ({"tta": "hflip"}, "tta:"),
    ({"tta": ["bogus"]}, "tta:"),
    ({"tta": []}, "tta:"),
    ({"architecture": "bogusnet"}, "architecture: unknown 'bogusnet'"),
    ({"input_size": 224.7}, "input_size:"),
    ({"input_size": True}, "input_size:"),
    ({"threshold": 1.5}, "threshold:"),
    ({"temperature": "1"}, "temperature:"),
]


@pytest.mark.parametrize("change, field", BAD_CONFIG, ids=[str(c) for c, _ in BAD_CONFIG])
def test_unusable_metadata_is_refused_when_read_naming_the_field(tmp_path, change, field):
    _, path = _save(tmp_path)
    meta_path = path.with_suffix(".json")
    meta = json.loads(meta_path.read_text())
    meta["config"].update(change)
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match=f"^{re.escape(str(meta_path))}: bad metadata: {field}"):
        read_info(path)


@pytest.mark.parametrize("kwargs, message", [({"bogus": 1}, "architecture_kwargs: .*bogus"), ([1], r"architecture_kwargs: \[1\]")])
def test_architecture_kwargs_the_model_does_not_take_are_bad_metadata(tmp_path, kwargs, message):
    _, path = _save(tmp_path)
    meta_path = path.with_suffix(".json")
    meta = json.loads(meta_path.read_text())
    meta["architecture_kwargs"] = kwargs
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match=f"bad metadata: {message}"):
        load_checkpoint(path)
