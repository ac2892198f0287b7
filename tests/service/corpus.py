"""A corpus of bad (and borderline) files made from the shared data, with the answer each must get.

Each entry: (name, bytes, route, expected). ``route`` is the synchronous
endpoint the file is meant for; ``expected`` is a problem's (status, type)
or a record's status. The same answer is expected from ``POST /v1/jobs``:
the problem at submission, or a done job whose result has that status.
Entries marked ``sync_only`` test the synchronous endpoint's own checks
(wrong endpoint, its shorter duration cap). ``python -m tests.service.corpus``
prints the table.
"""

from __future__ import annotations

import io
import struct
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

IMAGES, VIDEOS = "/v1/images", "/v1/videos"
UNSUPPORTED = (415, "unsupported_media")
CORRUPT = (422, "corrupt_media")
LIMIT = (413, "limit_exceeded")


@dataclass
class BadFile:
    name: str
    data: bytes
    route: str
    expected: tuple[int, str] | str  # (status, problem type) or a record status
    what: str
    sync_only: bool = False


def _saved(image: Image.Image, format: str, **options) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=format, **options)
    return buf.getvalue()


def _png(image: Image.Image) -> bytes:
    return _saved(image, "PNG")


def _jpeg(image: Image.Image) -> bytes:
    return _saved(image.convert("RGB"), "JPEG")


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def _png_header(width: int, height: int, *chunks: bytes) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` and whose data is a few bytes: a pixel bomb's shape.

    ``chunks`` go between the header and the pixel data (text chunks, say)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + b"".join(chunks) + _chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + _chunk(b"IEND", b""))


def _video(frames: int, fps: float, size=(64, 48), fourcc="MJPG", suffix=".avi", image: Image.Image | None = None) -> bytes:
    """``frames`` frames of noise, or of ``image`` when given."""
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / f"v{suffix}")
        writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*fourcc), fps, size)
        rng = np.random.default_rng(0)
        still = None if image is None else cv2.cvtColor(np.asarray(image.convert("RGB").resize(size)), cv2.COLOR_RGB2BGR)
        for _ in range(frames):
            writer.write(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8) if still is None else still)
        writer.release()
        return Path(path).read_bytes()


def _audio_only(mp4: bytes) -> bytes:
    """The clip with its only track's handler turned from video to sound: an MP4 with no video stream."""
    at = mp4.index(b"hdlr") + 12
    return mp4[:at] + b"soun" + mp4[at + 4:]


def _encoded(array: np.ndarray, ext: str) -> bytes:
    """OpenCV's encoding: it writes 16-bit and float images that Pillow cannot."""
    ok, buf = cv2.imencode(ext, array)
    assert ok
    return buf.tobytes()


def _exif_rotated(image: Image.Image) -> bytes:
    """The photo stored on its side with EXIF orientation 6 (how phones save portrait shots)."""
    exif = Image.Exif()
    exif[0x0112] = 6
    return _saved(image.rotate(90, expand=True), "JPEG", exif=exif)


def _corrupt_idat(png: bytes) -> bytes:
    at = png.index(b"IDAT") + 20
    return png[:at] + bytes(b ^ 0x5A for b in png[at:at + 200]) + png[at + 200:]


def corpus(shared_data: Path) -> list[BadFile]:
    """The files, made fresh (nothing is stored)."""
    jpeg = (shared_data / "frames" / "dfdc_real_lynaeydofd_fr0.jpg").read_bytes()
    mp4 = (shared_data / "clips" / "ffpp_real_004.mp4").read_bytes()
    photo = Image.open(io.BytesIO(jpeg))
    png = _png(photo.resize((320, 180)))
    gif = _saved(photo.resize((32, 32)), "GIF")
    webp = _saved(photo.resize((320, 180)), "WEBP")
    bmp = _saved(photo.resize((64, 64)), "BMP")
    face = photo.crop((640, 60, 1240, 660))  # 600 x 600 around the frame's one face (~190 px)
    return [
        BadFile("empty.jpg", b"", IMAGES, CORRUPT, "zero bytes"),
        BadFile("empty.mp4", b"", VIDEOS, CORRUPT, "zero bytes"),
        BadFile("cut.jpg", jpeg[: len(jpeg) // 3], IMAGES, CORRUPT, "JPEG cut at a third"),
        BadFile("head.jpg", jpeg[:300], IMAGES, CORRUPT, "JPEG header only"),
        BadFile("soi_eoi.jpg", b"\xff\xd8\xff\xd9", IMAGES, CORRUPT, "JPEG start and end markers only"),
        BadFile("cut.png", png[: len(png) // 2], IMAGES, CORRUPT, "PNG cut in half"),
        BadFile("idat.png", _corrupt_idat(png), IMAGES, CORRUPT, "PNG with scrambled pixel data"),
        BadFile("cut.webp", webp[:60], IMAGES, CORRUPT, "WebP cut"),
        BadFile("cut.bmp", bmp[:80], IMAGES, CORRUPT, "BMP cut"),
        BadFile("junk.tif", b"II*\x00" + b"\x07" * 200, IMAGES, CORRUPT, "TIFF magic, junk after"),
        BadFile("cut.mp4", mp4[: len(mp4) // 10], VIDEOS, CORRUPT, "MP4 cut at a tenth (no index)"),
        BadFile("head.mp4", mp4[:64], VIDEOS, CORRUPT, "MP4 first 64 bytes"),
        BadFile("junk.mkv", b"\x1a\x45\xdf\xa3" + b"\x01" * 300, VIDEOS, CORRUPT, "Matroska magic, junk after"),
        BadFile("junk.avi", b"RIFF\x00\x10\x00\x00AVI LIST" + b"\x02" * 300, VIDEOS, CORRUPT, "AVI magic, junk after"),
        BadFile("junk.mov", b"\x00\x00\x00\x14ftypqt  " + b"\x03" * 300, VIDEOS, CORRUPT, "QuickTime magic, junk after"),
        BadFile("zero_frames.avi", _video(0, 25.0), VIDEOS, CORRUPT, "a video with no frame"),
        BadFile("audio_only.mp4", _audio_only(mp4), VIDEOS, CORRUPT, "an MP4 whose only track is sound"),
        BadFile("notes.jpg", b"this is not an image\n" * 10, IMAGES, UNSUPPORTED, "text named .jpg"),
        BadFile("page.html", b"<!doctype html><html><body><img src=x onerror=alert(1)></body></html>", IMAGES, UNSUPPORTED, "HTML"),
        BadFile("data.json", b'{"image": "base64..."}', IMAGES, UNSUPPORTED, "JSON"),
        BadFile("doc.pdf", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n", IMAGES, UNSUPPORTED, "PDF"),
        BadFile("archive.zip", b"PK\x03\x04" + b"\x00" * 100, VIDEOS, UNSUPPORTED, "ZIP"),
        BadFile("anim.gif", gif, IMAGES, UNSUPPORTED, "GIF (not a supported format)"),
        BadFile("vector.svg", b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>', IMAGES, UNSUPPORTED, "SVG"),
        BadFile("sound.wav", b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\x00" * 40, VIDEOS, UNSUPPORTED, "WAV audio"),
        BadFile("zeros.bin", b"\x00" * 4096, IMAGES, UNSUPPORTED, "4 KB of NUL bytes"),
        BadFile("random.bin", np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes(), VIDEOS, UNSUPPORTED,
                "4 KB of random bytes"),
        BadFile("polyglot.jpg", b"\xff\xd8\xff\xe0" + b"<html><script>alert(1)</script></html>" * 20, IMAGES, CORRUPT,
                "polyglot: JPEG magic, HTML body"),
        BadFile("jpeg_zip.jpg", jpeg + b"PK\x03\x04" + b"\x00" * 200, IMAGES, "ok", "polyglot: a real JPEG with a ZIP appended"),
        BadFile("bomb.png", _png(Image.new("L", (12000, 10000))), IMAGES, LIMIT, "pixel bomb: 120 M pixels, 0.1 MB"),
        BadFile("bomb_header.png", _png_header(100_000, 100_000), IMAGES, LIMIT, "header claims 10 G pixels"),
        BadFile("thin.png", _png_header(60_000_000, 1), IMAGES, LIMIT, "60 M x 1 pixels"),
        BadFile("text_bomb.png", _png_header(8, 8, _chunk(b"zTXt", b"comment\0\0" + zlib.compress(b"a" * (2 << 20)))), IMAGES, LIMIT,
                "a text chunk (metadata) inflating from 2 KB to 2 MB"),
        BadFile("one.png", _png(Image.new("RGB", (1, 1))), IMAGES, "no_face", "1 x 1 pixel"),
        BadFile("small.jpg", _jpeg(photo.resize((29, 29))), IMAGES, "no_face", "29 x 29 pixels"),
        BadFile("strip.png", _png(Image.new("RGB", (4000, 20), (120, 90, 60))), IMAGES, "no_face", "4000 x 20 pixels"),
        BadFile("long.avi", _video(12, 0.002), VIDEOS, LIMIT, "12 frames at 0.002 fps: 6000 s long"),
        BadFile("clip.jpg", mp4, IMAGES, UNSUPPORTED, "a video sent to /v1/images (named .jpg)", sync_only=True),
        BadFile("frame.mp4", jpeg, VIDEOS, UNSUPPORTED, "an image sent to /v1/videos (named .mp4)", sync_only=True),
        # Unusual but valid encodings of one photo: each must be decoded to the face, not refused.
        BadFile("deep.png", _encoded(cv2.cvtColor(np.asarray(face), cv2.COLOR_RGB2BGR).astype(np.uint16) * 257, ".png"),
                IMAGES, "ok", "16 bits a channel PNG"),
        BadFile("deep_gray.png", _encoded(np.asarray(face.convert("L")).astype(np.uint16) * 257, ".png"), IMAGES, "ok",
                "16-bit greyscale PNG"),
        BadFile("float.tif", _encoded(np.asarray(face.convert("L")).astype(np.float32) / 255, ".tiff"), IMAGES, "ok",
                "32-bit float greyscale TIFF (0-1)"),
        BadFile("cmyk.jpg", _saved(face.convert("CMYK"), "JPEG"), IMAGES, "ok", "CMYK JPEG"),
        BadFile("gray.jpg", _saved(face.convert("L"), "JPEG"), IMAGES, "ok", "greyscale JPEG"),
        BadFile("progressive.jpg", _saved(face, "JPEG", progressive=True), IMAGES, "ok", "progressive JPEG"),
        BadFile("palette.png", _png(face.convert("P")), IMAGES, "ok", "256-colour palette PNG"),
        BadFile("alpha.png", _png(face.convert("RGBA")), IMAGES, "ok", "PNG with an alpha channel"),
        BadFile("rotated.jpg", _exif_rotated(face), IMAGES, "ok", "JPEG stored sideways, EXIF orientation 6"),
        BadFile("pages.tif", _saved(face, "TIFF", save_all=True, append_images=[face]), IMAGES, "ok",
                "two-page TIFF (the first page is scored)"),
        BadFile("one_frame.avi", _video(1, 25.0, (480, 480), image=face), VIDEOS, "ok", "a video of one frame"),
        BadFile("photo.avif", _saved(face, "AVIF", quality=90), IMAGES, "ok", "AVIF"),
        BadFile("iphone.heic", b"\0\0\0\x18ftypheic\0\0\0\0mif1heic" + b"\0" * 200, IMAGES, UNSUPPORTED,
                "HEIC (an iPhone photo's brands; refused with how to get JPEG)"),
        BadFile("icon.ico", _saved(face.resize((64, 64)), "ICO"), IMAGES, UNSUPPORTED, "Windows icon"),
        BadFile("photo.jp2", _saved(face.resize((128, 128)), "JPEG2000"), IMAGES, UNSUPPORTED, "JPEG 2000"),
        BadFile("tiny.avi", _video(5, 25.0, (8, 8)), VIDEOS, "no_face", "8 x 8 pixel frames"),
        BadFile("huge.avi", _video(3, 25.0, (4000, 4000), image=Image.new("RGB", (8, 8))), VIDEOS, "no_face",
                "4000 x 4000 black frames"),
        BadFile("three_min.avi", _video(9, 0.05), VIDEOS, LIMIT, "180 s: over the synchronous cap, fine for a job", sync_only=True),
    ]


if __name__ == "__main__":
    from ..conftest import SHARED_DATA

    print("| file | what | route | expected |\n|---|---|---|---|")
    for bad in corpus(SHARED_DATA):
        expected = bad.expected if isinstance(bad.expected, str) else f"{bad.expected[0]} {bad.expected[1]}"
        print(f"| `{bad.name}` | {bad.what} | {bad.route}{' (sync only)' if bad.sync_only else ''} | {expected} |")
