"""Every bad option value is one line on stderr and exit code 2, never a traceback (issue 13)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from unmask.cli.main import main

UNMASK = str(Path(sys.executable).with_name("unmask"))
BAD = {
    "aggregation": (["--aggregation", "median"], "unknown aggregation 'median'"),
    "frames": (["--frames", "0"], "frames must be at least 1"),
    "fps": (["--fps", "0"], "sample_fps must be positive"),
    "model": (["--model", "no-such-model"], "no-such-model"),
    "device": (["--device", "cuda"], "no CUDA device"),
}


@pytest.mark.parametrize("option", BAD)
def test_a_bad_option_is_a_one_line_usage_error(option, shared_data, capsys):
    if option == "device" and torch.cuda.is_available():
        pytest.skip("this machine has CUDA: --device cuda is valid here")
    args, message = BAD[option]
    frame = shared_data / "frames" / "dfdc_real_lynaeydofd_fr0.jpg"
    assert main(["-q", "score", str(frame), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("unmask: error:") and message in err[0], err


def test_the_installed_command_prints_no_traceback(shared_data):
    frame = shared_data / "frames" / "dfdc_real_lynaeydofd_fr0.jpg"
    proc = subprocess.run([UNMASK, "score", str(frame), "--aggregation", "median"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == ["unmask: error: unknown aggregation 'median'; known: confident, max, mean"]


def test_a_pipe_is_refused_not_read(tmp_path, capsys):
    pipe = tmp_path / "clip.mp4"
    os.mkfifo(pipe)  # reading it would wait for a writer forever
    assert main(["-q", "score", str(pipe)]) == 2
    assert "not a regular file" in capsys.readouterr().err
