"""Every bad option value is one line on stderr and exit code 2, never a traceback (issue 13)."""

import os
import socket
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


def test_a_file_name_in_an_error_is_shown_escaped(tmp_path, capsys):
    """A name with an ESC or a right-to-left override reaches the terminal escaped (it could colour it, or read backwards)."""
    assert main(["-q", "score", str(tmp_path / "no\u202egpj.exe\x1b[31m")]) == 2
    err = capsys.readouterr().err
    assert err == f"unmask: error: {tmp_path}/no\\u202egpj.exe\\x1b[31m: no such file or folder\n"


def test_a_pipe_is_refused_not_read(tmp_path, capsys):
    pipe = tmp_path / "clip.mp4"
    os.mkfifo(pipe)  # reading it would wait for a writer forever
    assert main(["-q", "score", str(pipe)]) == 2
    assert "not a regular file" in capsys.readouterr().err


def _one_line_error(args, env=None):
    proc = subprocess.run([UNMASK, "-q", *args], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, HF_HUB_OFFLINE="1", **(env or {})))
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("unmask: error:"), (proc.returncode, proc.stderr)
    return lines[0]


def test_serve_stops_at_once_with_one_line_on_a_bad_model_port_or_setting():
    assert "no checkpoint 'no-such-model'" in _one_line_error(["serve", "--model", "no-such-model"])
    assert "port: Input should be less than or equal to 65535" in _one_line_error(["serve", "--port", "99999"])
    assert "max_frames" in _one_line_error(["serve"], env={"UNMASK_MAX_FRAMES": "many"})
    assert "over max_frames" in _one_line_error(["serve"], env={"UNMASK_FRAMES": "200"})
    assert "not a host name" in _one_line_error(["serve"], env={"UNMASK_CALLBACK_HOSTS": "not a host!!", "UNMASK_CALLBACK_SECRET": "s"})
    # Settings this machine cannot honour: before, the server started and then failed every request (500) or never got ready.
    assert "tmp_dir" in _one_line_error(["serve"], env={"UNMASK_TMP_DIR": "/nonexistent/spool"})
    assert "data_dir: cannot create /proc/nope" in _one_line_error(["serve", "--data-dir", "/proc/nope"])
    assert "allowed_root" in _one_line_error(["serve", "--allowed-root", "/nonexistent"])
    if not torch.cuda.is_available():
        assert "no CUDA device" in _one_line_error(["serve", "--device", "cuda"])
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert f"cannot listen on 127.0.0.1:{port}" in _one_line_error(["serve", "--port", str(port)])  # was exit 134


def test_an_out_folder_that_cannot_be_made_is_a_usage_error(shared_data, tmp_path, capsys):
    (tmp_path / "file").write_text("")
    clip = shared_data / "clips" / "ffpp_real_004.mp4"
    assert main(["-q", "extract", str(clip), "--out", str(tmp_path / "file" / "crops")]) == 2
    assert "Not a directory" in capsys.readouterr().err


def test_actors_below_one_is_an_argument_error(shared_data, capsys):
    frame = shared_data / "frames" / "dfdc_real_lynaeydofd_fr0.jpg"
    with pytest.raises(SystemExit) as exited:  # argparse's own exit 2, before ray is imported
        main(["-q", "score", str(frame), "--engine", "ray", "--actors", "0"])
    assert exited.value.code == 2 and "--actors: 0: must be at least 1" in capsys.readouterr().err


def test_a_save_folder_that_cannot_be_written_is_a_usage_error_before_scoring(shared_data, tmp_path, capsys):
    (tmp_path / "file").write_text("")
    frame = shared_data / "frames" / "dfdc_real_lynaeydofd_fr0.jpg"
    assert main(["-q", "score", str(frame), "--save", str(tmp_path / "file" / "pictures")]) == 2  # before: scored, then exit 1
    assert "Not a directory" in capsys.readouterr().err


def test_keygen_with_stdout_closed_fails_instead_of_losing_the_key():
    proc = subprocess.run([UNMASK, "keygen"], stderr=subprocess.PIPE, text=True, timeout=60, preexec_fn=lambda: os.close(1))
    assert proc.returncode == 2 and "standard output is closed" in proc.stderr


def test_ctrl_c_before_the_command_runs_is_exit_130_without_a_traceback(monkeypatch):
    def interrupted():  # as when Ctrl-C lands while the parser imports torch and timm for the training commands
        raise KeyboardInterrupt

    monkeypatch.setattr("unmask.cli.main.build_parser", interrupted)
    assert main(["score", "x.jpg"]) == 130


def test_a_job_database_or_media_dir_that_cannot_be_used_stops_serve_and_worker_at_once_with_one_line(postgres_server, tmp_path):
    """Each case once, on serve or worker (both check through the same code, before the model loads)."""
    from tests.service.live import free_port

    data = ["--data-dir", str(tmp_path / "data")]
    assert "unsupported scheme 'mysql'" in _one_line_error(["serve", *data, "--database-url", "mysql://u:p@127.0.0.1/jobs"])
    unreachable = _one_line_error(["serve", *data, "--database-url", postgres_server.url(port=free_port())])
    assert "database_url: cannot connect to unmask@127.0.0.1:" in unreachable and "refused" in unreachable.lower()
    wrong = _one_line_error(["worker", *data], env={"UNMASK_DATABASE_URL": postgres_server.url(password="wrong-password")})
    assert "password authentication failed" in wrong and "wrong-password" not in wrong
    assert "media_dir: cannot create /proc/nope" in _one_line_error(["serve", *data, "--media-dir", "/proc/nope"])
    (tmp_path / "file").write_text("")
    assert "media_dir: cannot create" in _one_line_error(["worker", *data, "--media-dir", str(tmp_path / "file")])
