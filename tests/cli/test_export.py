"""``unmask export``: dotted checkpoint names, bad metadata and the options it takes (audit of the CLI)."""

import json
import shutil

import pytest
from unmask.cli.main import main


def _copy_pair(checkpoint, folder, stem):
    for suffix in (".safetensors", ".json"):
        shutil.copy(checkpoint.with_suffix(suffix), folder / f"{stem}{suffix}")
    return folder / f"{stem}.json"


def test_a_checkpoint_whose_name_has_a_dot_exports(tiny_checkpoint, tmp_path, capsys):
    meta = _copy_pair(tiny_checkpoint, tmp_path, "model-v1.5")
    out = tmp_path / "model.onnx"
    assert main(["-q", "export", "--model", str(meta), "--out", str(out)]) == 0
    assert out.is_file() and json.loads(capsys.readouterr().out)["max_logit_diff"] <= 1e-3


@pytest.mark.parametrize("change, field", [({"input_size": 224.7}, "input_size:"), ({"std": [0, 0, 0]}, "std:")])
def test_bad_metadata_is_one_line_and_exit_code_2(tiny_checkpoint, tmp_path, capsys, change, field):
    meta_path = _copy_pair(tiny_checkpoint, tmp_path, "bad")
    meta = json.loads(meta_path.read_text())
    meta["config"].update(change)
    meta_path.write_text(json.dumps(meta))
    out = tmp_path / "bad.onnx"
    assert main(["-q", "export", "--model", str(meta_path), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [err[0]] and err[0].startswith(f"unmask: error: {meta_path}: bad metadata: {field}"), err
    assert not out.exists()


@pytest.mark.parametrize("option", [["--device", "cuda"], ["--backend", "onnx"]])
def test_export_takes_no_device_or_backend_it_would_ignore(tmp_path, option):
    out = tmp_path / "x.onnx"
    with pytest.raises(SystemExit) as exit_:
        main(["-q", "export", *option, "--out", str(out)])
    assert exit_.value.code == 2 and not out.exists()
