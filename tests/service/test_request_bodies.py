"""Request bodies: a stalled or trickling body gets 408 and its connection closed; a malformed multipart body, 400.

The deadline tests talk raw HTTP/1.1 over sockets to the app on a real
uvicorn server on 127.0.0.1, with a 2 s ``body_idle_timeout_s`` so they are
quick: a client library would neither stall nor trickle on purpose.
"""

from __future__ import annotations

import http.client
import io
import os
import socket
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from unmask.model.config import ScoringConfig
from unmask.model.predictor import Predictor
from unmask.service.core.config import Settings
from unmask.service.main import create_app

from tests.helpers import PROBLEM, problem

from .live import serving


def problem_detail(response, status: int) -> str:
    return problem(response, status)["detail"]


IDLE_S = 2.0  # long beside the tests' own pauses (0.35 s at most), so a loaded machine's stalls do not trip it
FLOOR = 4096.0  # bytes a second
SLACK_S = 3.0  # a loaded 2-core machine answers late; a missing deadline never answers
BOUNDARY = "b0undary"


@pytest.fixture(scope="module")
def predictor(tiny_checkpoint):
    return Predictor(tiny_checkpoint, ScoringConfig(backend="torch"))


@pytest.fixture
def spool(tmp_path, monkeypatch) -> Path:
    """Where Starlette spools form parts over 1 MB (tempfile's folder), watched for leaks."""
    folder = tmp_path / "system-tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


@pytest.fixture
def port(predictor, tmp_path, spool):
    settings = Settings(data_dir=tmp_path / "data", tmp_dir=spool, body_idle_timeout_s=IDLE_S, body_min_bytes_per_s=FLOOR)
    with serving(create_app(settings, predictor)) as port:
        yield port


def _open_files_under(folder: Path) -> list[str]:
    """Files under ``folder`` this process holds open (a spooled part is an unnamed file: ``folder/#123 (deleted)``)."""
    targets = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            targets.append(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:
            continue
    return [t for t in targets if t.startswith(str(folder))]


def _start(port: int, path: str, length: int | None) -> socket.socket:
    """A POST of a multipart body with its headers sent: Content-Length ``length``, or chunked when None."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=IDLE_S + SLACK_S + 5)
    framing = f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked"
    sock.sendall(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
                 f"{framing}\r\n\r\n".encode())
    return sock


def _send(sock: socket.socket, data: bytes, chunked: bool) -> None:
    sock.sendall(f"{len(data):x}\r\n".encode() + data + b"\r\n" if chunked else data)


def _answer(sock: socket.socket) -> tuple[http.client.HTTPResponse, bytes]:
    response = http.client.HTTPResponse(sock)
    response.begin()
    return response, response.read()


def _closed(sock: socket.socket) -> bool:
    """Whether the server closed the connection (at once: uvicorn would close an idle one after 5 s)."""
    sock.settimeout(1.0)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    finally:
        sock.close()


def _part_head(field: str, filename: str) -> bytes:
    return (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{filename}\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode()


def _body(field: str, filename: str, data: bytes) -> bytes:
    return _part_head(field, filename) + data + f"\r\n--{BOUNDARY}--\r\n".encode()


def _timeout_problem(response, body: bytes) -> str:
    import json

    assert response.status == 408 and response.getheader("content-type") == PROBLEM, body
    assert response.getheader("connection") == "close"
    problem = json.loads(body)
    assert problem["status"] == 408 and problem["type"].endswith("/request_timeout")
    return problem["detail"]


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
@pytest.mark.parametrize("route, field", [("/v1/jobs", "file"), ("/v1/images", "files")])
def test_a_stalled_body_gets_408_within_the_deadline_and_leaves_nothing(port, spool, tmp_path, route, field, chunked):
    sock = _start(port, route, None if chunked else 5_000_000)
    _send(sock, _part_head(field, "big.jpg") + b"\xff" * 1_500_000, chunked)  # past the 1 MB a form part keeps in memory
    sent = time.monotonic()
    while not _open_files_under(spool) and time.monotonic() - sent < IDLE_S * 0.9:  # a loaded machine spools late
        time.sleep(0.02)
    assert _open_files_under(spool), "the part was not spooled to a file: this test would see no leak"
    response, body = _answer(sock)
    waited = time.monotonic() - sent
    assert f"no bytes of the request body arrived for {IDLE_S:g} s" in _timeout_problem(response, body)
    assert IDLE_S * 0.9 <= waited <= IDLE_S + SLACK_S, waited
    assert _closed(sock)
    assert _open_files_under(spool) == [] and list(spool.iterdir()) == []  # the spooled part is closed, nothing left
    uploads = tmp_path / "data" / "uploads"
    assert not uploads.exists() or list(uploads.iterdir()) == []


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_body_trickling_under_the_floor_rate_gets_408(port, spool, chunked):
    sock = _start(port, "/v1/jobs", None if chunked else 5_000_000)
    _send(sock, _part_head("file", "slow.jpg"), chunked)
    started = time.monotonic()
    try:
        while time.monotonic() - started < IDLE_S + SLACK_S + 2:  # 200 bytes every 0.2 s: 1 KB/s, never idle for IDLE_S
            _send(sock, b"\xff" * 200, chunked)
            time.sleep(0.2)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server answered and closed while this client still sent
    response, body = _answer(sock)
    assert "the request body arrived too slowly" in _timeout_problem(response, body) and "under the floor of 4096 bytes a second" in body.decode()
    assert _closed(sock)
    assert _open_files_under(spool) == []


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_slow_upload_above_the_floor_succeeds(port, chunked):
    noise = np.random.default_rng(0).integers(0, 256, (200, 200, 3), dtype=np.uint8)
    image = io.BytesIO()
    Image.fromarray(noise).save(image, format="PNG")  # 120 KB that score fast: 9 KB each 0.35 s is over the floor
    body = _body("files", "noise.png", image.getvalue())
    sock = _start(port, "/v1/images", None if chunked else len(body))
    pieces = 14
    step = -(-len(body) // pieces)
    started = time.monotonic()
    for at in range(0, len(body), step):  # 14 pieces, 0.35 s apart: over twice the idle timeout in all, never idle that long
        _send(sock, body[at:at + step], chunked)
        time.sleep(0.35)
    if chunked:
        sock.sendall(b"0\r\n\r\n")
    assert time.monotonic() - started > 2 * IDLE_S
    response, answer = _answer(sock)
    sock.close()
    assert response.status == 200, answer
    assert b'"path":"noise.png"' in answer


def test_the_deadline_settings_have_their_defaults():
    settings = Settings()
    assert settings.body_idle_timeout_s == 15.0 and settings.body_min_bytes_per_s == 10_240


@pytest.fixture(scope="module")
def client(predictor, tmp_path_factory):
    with TestClient(create_app(Settings(data_dir=tmp_path_factory.mktemp("data")), predictor)) as c:
        yield c




@pytest.mark.parametrize("route, field", [("/v1/images", "files"), ("/v1/jobs", "file")])
def test_a_multipart_body_without_its_closing_boundary_is_400_saying_so(client, shared_data, route, field):
    whole = _body(field, "frame.jpg", (shared_data / "frames" / "dfdc_real_lynaeydofd_fr0.jpg").read_bytes())
    headers = {"content-type": f"multipart/form-data; boundary={BOUNDARY}"}
    for cut in (whole[: len(whole) - len(f"--{BOUNDARY}--\r\n")], whole[:5000]):  # no closing line; a Content-Length too small
        detail = problem_detail(client.post(route, content=cut, headers=headers), 400)
        assert f"ends before its closing boundary --{BOUNDARY}-- after {len(cut)} bytes" in detail
    assert "is empty" in problem_detail(client.post(route, content=b"", headers=headers), 400)
    assert f"does not start with --{BOUNDARY}" in problem_detail(client.post(route, content=b"hello", headers=headers), 400)


def test_other_malformed_multipart_is_400_saying_what_is_wrong(client):
    bad_header = f"--{BOUNDARY}\r\nNo colon here\r\n\r\nx\r\n--{BOUNDARY}--\r\n".encode()
    detail = problem_detail(client.post("/v1/images", content=bad_header,
                                  headers={"content-type": f"multipart/form-data; boundary={BOUNDARY}"}), 400)
    assert detail.startswith("the body is not valid multipart/form-data: ") and "header" in detail
    detail = problem_detail(client.post("/v1/images", content=b"x", headers={"content-type": "multipart/form-data"}), 400)
    assert "names no boundary" in detail
