import io
import struct
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image
from unmask.model.errors import CorruptMediaError, MediaLimitError, UnsupportedMediaError
from unmask.model.media import decode_image, read_frames_at, read_video, sample_indices, sniff, sniff_file

from tests.helpers import png_bytes


@pytest.mark.parametrize(
    "head, expected",
    [
        (b"\xff\xd8\xff\xe0", ("image", "jpeg")),
        (b"\x89PNG\r\n\x1a\n", ("image", "png")),
        (b"RIFF\0\0\0\0WEBPVP8 ", ("image", "webp")),
        (b"\0\0\0\x18ftypmp42", ("video", "mp4")),
        (b"\0\0\0\x14ftypqt  ", ("video", "mov")),
        (b"\0\0\0\x1cftypisom\0\0\x02\0isomiso2mp41", ("video", "mp4")),
        (b"\0\0\0\x20ftypavif\0\0\0\0avifmif1miafMA1B", ("image", "avif")),
        (b"\0\0\0\x1cftypmif1\0\0\0\0mif1avifmiaf", ("image", "avif")),  # AVIF as a compatible brand
        (b"\x1a\x45\xdf\xa3\x01\0\0\0webm", ("video", "webm")),
        (b"RIFF\0\0\0\0AVI LIST", ("video", "avi")),
    ],
)
def test_sniff_reads_content(head, expected):
    assert sniff(head + b"\0" * 32) == expected


@pytest.mark.parametrize("brands", [b"heic\0\0\0\0mif1heic", b"mif1\0\0\0\0mif1heic", b"heix\0\0\0\0mif1heix"])
def test_sniff_refuses_heic_with_a_way_out(brands):
    with pytest.raises(UnsupportedMediaError, match="HEIC.*convert to JPEG"):
        sniff(b"\0\0\0\x18ftyp" + brands + b"\0" * 40)


def test_avif_decodes_to_its_pixels():
    rgb = np.zeros((64, 96, 3), np.uint8)
    rgb[:, 48:] = (200, 40, 40)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="AVIF", quality=100)
    assert sniff(buf.getvalue()[:64]) == ("image", "avif")
    decoded = decode_image(buf.getvalue())
    assert decoded.shape == (64, 96, 3)
    assert np.abs(decoded.astype(int) - rgb).mean() < 4  # lossy, but the same picture


def test_sniff_refuses_text_and_empty():
    with pytest.raises(UnsupportedMediaError, match="read from the file's content"):
        sniff(b"<html>hello</html>")
    with pytest.raises(CorruptMediaError, match="empty"):
        sniff(b"")




def test_pixel_bomb_is_refused_before_decoding():
    data = png_bytes(12000, 10000)  # 120 MP of zeros compresses to a small file
    assert len(data) < 1_000_000
    with pytest.raises(MediaLimitError, match=r"^image is 12000x10000 \(120 megapixels\), over the limit of 50 megapixels$"):
        decode_image(data, 50_000_000)


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def _png_with(width: int, height: int, *chunks: bytes) -> bytes:
    """A greyscale PNG whose header claims ``width`` x ``height``, with ``chunks`` before its (tiny) pixel data."""
    ihdr = _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
    return b"\x89PNG\r\n\x1a\n" + ihdr + b"".join(chunks) + _chunk(b"IDAT", zlib.compress(b"\0" * 64)) + _chunk(b"IEND", b"")


@pytest.mark.parametrize("size, limit, says", [
    ((100_000, 100_000), 50_000_000, "image is 10 gigapixels, over the limit of 50 megapixels"),  # past Pillow's own guard
    ((60_000, 60_000), None, "image is 3.6 gigapixels, over the limit of 179 megapixels"),  # Pillow's guard is the only limit
    ((9000, 9000), 50_000_000, "image is 9000x9000 (81 megapixels), over the limit of 50 megapixels"),
])
def test_a_header_bomb_is_refused_in_human_figures(size, limit, says):
    with pytest.raises(MediaLimitError) as refused:
        decode_image(_png_with(*size), limit)
    assert refused.value.detail == says


def test_a_png_text_bomb_is_a_limit_in_plain_words():
    ztxt = _chunk(b"zTXt", b"comment\0\0" + zlib.compress(b"a" * (2 << 20)))  # 2 MB of text in 2 KB
    with pytest.raises(MediaLimitError) as refused:
        decode_image(_png_with(8, 8, ztxt), 50_000_000)
    assert refused.value.detail == "a compressed text chunk (PNG metadata) inflates to over 1 MB, the most read of one"
    many = [_chunk(b"zTXt", b"k%d\0\0" % i + zlib.compress(b"a" * (1 << 20))) for i in range(65)]  # 65 MB in all
    with pytest.raises(MediaLimitError) as refused:
        decode_image(_png_with(8, 8, *many), 50_000_000)
    assert refused.value.detail == "its text chunks (PNG metadata) hold over 64 MB in all, the most read"


def test_exif_orientation_is_applied():
    img = Image.fromarray(np.zeros((20, 40, 3), dtype=np.uint8))
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    buf = io.BytesIO()
    img.save(buf, format="JPEG", exif=exif)
    assert decode_image(buf.getvalue()).shape == (40, 20, 3)


@pytest.mark.parametrize("kind", ["png16", "tiff16", "float01", "float255"])
def test_deep_and_float_greyscale_keep_their_pixels(kind):
    """Pillow's convert("RGB") turns these into a white or black picture; decode_image must not."""
    grey = np.random.default_rng(0).integers(0, 256, (24, 32)).astype(np.uint8)
    stored = {"png16": (grey.astype(np.uint16) * 257, ".png"), "tiff16": (grey.astype(np.uint16) * 257, ".tiff"),
              "float01": (grey.astype(np.float32) / 255, ".tiff"), "float255": (grey.astype(np.float32), ".tiff")}
    array, ext = stored[kind]
    ok, buf = cv2.imencode(ext, array)
    assert ok
    rgb = decode_image(buf.tobytes())
    assert rgb.shape == (24, 32, 3) and rgb.dtype == np.uint8
    assert np.array_equal(rgb[..., 0], grey) and np.array_equal(rgb[..., 2], grey)


@pytest.mark.parametrize(
    "values, expected",
    [
        ([np.nan, 0.0, 0.5, 1.0], [0, 0, 128, 255]),  # 0-1 with a NaN first: Pillow's extrema would be NaN
        ([-3.0, 127.6, 300.0, np.inf], [0, 128, 255, 255]),  # 0-255, clipped
    ],
)
def test_float_greyscale_rounds_clips_and_ignores_nan(values, expected):
    ok, buf = cv2.imencode(".tiff", np.array([values], dtype=np.float32))
    assert ok
    rgb = decode_image(buf.tobytes())
    assert rgb[0, :, 1].tolist() == expected


def test_exif_orientation_is_applied_to_deep_greyscale():
    img = Image.fromarray(np.full((20, 40), 30000, dtype=np.uint16))
    exif = img.getexif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    img.save(buf, format="PNG", exif=exif)
    rgb = decode_image(buf.getvalue())
    assert rgb.shape == (40, 20, 3) and (rgb == 30000 >> 8).all()


def test_corrupt_and_truncated(bad_files):
    with pytest.raises(CorruptMediaError):
        decode_image(bad_files["truncated_jpeg"].read_bytes())
    with pytest.raises(UnsupportedMediaError):
        sniff_file(bad_files["text"])
    with pytest.raises(CorruptMediaError):
        list(read_video(bad_files["truncated_video"]))


def test_sample_indices_spread_evenly():
    idx = sample_indices(300, 30.0, frames=32)
    assert len(idx) == 32 and idx[0] >= 0 and idx[-1] <= 299
    gaps = np.diff(idx)
    assert gaps.min() >= 9 and gaps.max() <= 10
    assert sample_indices(10, 30.0, frames=32) == list(range(10))
    assert len(sample_indices(300, 30.0, sample_fps=2.0)) == 20
    assert sample_indices(300, 30.0, frames=20, sample_fps=2.0) == sample_indices(300, 30.0, sample_fps=2.0)
    assert sample_indices(300, 30.0, frames=4, sample_fps=2.0) == sample_indices(300, 30.0, frames=4)  # frames caps it

def test_read_video_forward_keeps_requested_frames(shared_data):
    clip = shared_data / "clips" / "ffpp_real_004.mp4"
    frames = list(read_video(clip, frames=8))
    assert [f.index for f in frames] == sample_indices(309, 25.0, frames=8)
    assert frames[1].time == pytest.approx(frames[1].index / 25.0, abs=1e-3)
    assert frames[0].image.shape == (720, 1280, 3)


def test_portrait_clip_keeps_its_orientation(shared_data):
    frame = next(read_video(shared_data / "clips" / "dfdc_fake_brtujopkby.mp4", frames=1))
    assert frame.image.shape[0] > frame.image.shape[1]


def test_video_limits(shared_data):
    clip = shared_data / "clips" / "ffpp_real_004.mp4"
    with pytest.raises(MediaLimitError, match="over the limit of 5 s"):
        list(read_video(clip, max_duration=5))
    with pytest.raises(MediaLimitError, match="pixels"):
        list(read_video(clip, max_pixels=1000))


def _rotate_90(mp4: bytes) -> bytes:
    """Set a 90-degree display matrix in the video track's tkhd box (as phones do)."""
    import struct

    out = bytearray(mp4)
    pos = 0
    while (pos := out.find(b"tkhd", pos + 1)) != -1:
        matrix = pos + 4 + (52 if out[pos + 4] == 1 else 40)
        width, height = struct.unpack(">II", out[matrix + 36 : matrix + 44])
        if width:  # skip the audio track
            out[matrix : matrix + 36] = struct.pack(">9i", 0, 65536, 0, -65536, 0, 0, height, 0, 1 << 30)
    return bytes(out)


def test_rotation_metadata_is_honoured(shared_data, tmp_path):
    rotated = tmp_path / "rotated.mp4"
    rotated.write_bytes(_rotate_90((shared_data / "clips" / "ffpp_real_004.mp4").read_bytes()))
    frame = next(read_video(rotated, frames=1))
    assert frame.image.shape == (1280, 720, 3)  # the file's pixels are 1280x720 landscape


@pytest.mark.parametrize("suffix, fourcc, kind", [("mov", "mp4v", "mov"), ("avi", "MJPG", "avi"), ("mkv", "MJPG", "mkv"), ("webm", "VP80", "webm")])
def test_every_supported_container_is_sniffed_and_read(shared_data, tmp_path, suffix, fourcc, kind):
    import cv2

    path = tmp_path / f"clip.{suffix}"
    cap = cv2.VideoCapture(str(shared_data / "clips" / "ffpp_real_004.mp4"))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 25, (320, 180))
    for _ in range(20):
        ok, frame = cap.read()
        writer.write(cv2.resize(frame, (320, 180)))
    writer.release()
    assert sniff_file(path) == ("video", kind)
    frames = list(read_video(path, frames=8))
    assert len(frames) == 8 and frames[0].image.shape == (180, 320, 3)


def test_frames_skipped_by_the_decoder_leave_the_kept_frames_unchanged(shared_data):
    """The reader skips unreferenced frames it does not keep; OpenCV decoding every frame gives the same pixels."""
    import cv2

    clip = shared_data / "clips" / "ffpp_real_004.mp4"
    frames = list(read_video(clip, frames=6))
    cap = cv2.VideoCapture(str(clip))
    expected = {}
    for index in range(frames[-1].index + 1):
        ok, bgr = cap.read()
        if index in {f.index for f in frames}:
            expected[index] = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    cap.release()
    assert [f.index for f in frames] == sample_indices(309, 25.0, frames=6)
    for frame in frames:
        assert np.array_equal(frame.image, expected[frame.index]), frame.index


def test_b_frames_in_avi_are_counted_in_display_order(tmp_path):
    """AVI has no presentation time stamps: the reader counts decoded frames, as a player shows them."""
    import av

    path = tmp_path / "bframes.avi"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=25, options={"x264-params": "bframes=3:b-pyramid=normal"})
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(30):
            image = np.full((48, 64, 3), i * 8, dtype=np.uint8)  # frame i is grey level 8 i
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    frames = list(read_video(path, frames=5))
    assert [f.index for f in frames] == sample_indices(30, 25.0, frames=5)
    for frame in frames:
        assert abs(float(frame.image.mean()) - 8 * frame.index) < 4, frame.index


def test_read_frames_at_gives_the_frames_read_video_sampled(shared_data):
    clip = shared_data / "clips" / "ffpp_real_004.mp4"
    sampled = list(read_video(clip, frames=5))
    again = list(read_frames_at(clip, [f.index for f in reversed(sampled)]))  # any order in, file order out
    assert [i for i, _ in again] == [f.index for f in sampled]
    assert all(np.array_equal(image, f.image) for (_, image), f in zip(again, sampled))
    assert [i for i, _ in read_frames_at(clip, [3, 10**6])] == [3]  # past the end: stops quietly
