"""Training augmentation: cheap per-item degradations on uint8 crops, then whole-batch tensor ops.

Two stages, so the costly part runs once per batch in the main process:

- ``degrade`` (per item, uint8, in the DataLoader worker): down-and-up
  scaling, Gaussian blur, sensor noise, JPEG and H.264 re-compression: the
  quality losses that separate web video from training crops.
- ``BatchAugment`` (per batch, float tensors): flip, zoom/shift/rotation
  in one ``grid_sample``, brightness/contrast/saturation, cutout, then the
  model's normalisation.

Every random draw comes from a generator the caller seeds (item index,
epoch, step), so a resumed run draws the same augmentations.
"""

from __future__ import annotations

import dataclasses
import io
import math
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from .errors import ConfigError


def resize(img: np.ndarray, size: int) -> np.ndarray:
    """Square resize to ``size`` (area filter when shrinking)."""
    if img.shape[0] == size and img.shape[1] == size:
        return img
    interp = cv2.INTER_AREA if img.shape[0] > size else cv2.INTER_LINEAR
    return cv2.resize(img, (size, size), interpolation=interp)


@dataclass
class AugmentConfig:
    """Probabilities and ranges of each augmentation (a preset by name, or a preset with overrides)."""

    hflip: float = 0.5
    affine_p: float = 0.7
    zoom: tuple[float, float] = (0.94, 1.08)  # < 1 shows more context (reflected border), > 1 crops in
    shift: float = 0.04  # largest shift, share of the side
    rotate: float = 0.0  # largest rotation, degrees
    colour_p: float = 0.5
    brightness: float = 0.1  # added, in [0, 1] pixel units
    contrast: float = 0.2  # factor range 1 +- this
    saturation: float = 0.0  # factor range 1 +- this
    cutout_p: float = 0.0
    downscale_p: float = 0.0  # per item: shrink to this share of the side and back
    downscale: tuple[float, float] = (0.35, 0.9)
    blur_p: float = 0.0
    blur_sigma: tuple[float, float] = (0.5, 1.5)  # pixels
    noise_p: float = 0.0  # per item: Gaussian noise of this standard deviation (0-255 scale)
    noise_sigma: tuple[float, float] = (2.0, 8.0)
    jpeg_p: float = 0.0
    jpeg_quality: tuple[int, int] = (35, 95)
    h264_p: float = 0.0  # per item: one H.264 frame (libx264, ~5 ms a 224 px crop) at a CRF in this range
    h264_crf: tuple[int, int] = (23, 40)

    def __post_init__(self) -> None:
        for key, kind in (("zoom", float), ("downscale", float), ("blur_sigma", float), ("noise_sigma", float),
                          ("jpeg_quality", int), ("h264_crf", int)):
            value = getattr(self, key)
            if not (isinstance(value, (list, tuple)) and len(value) == 2
                    and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)):
                raise ConfigError(f"augment {key} must be a range [lo, hi] of numbers, not {value!r}")
            setattr(self, key, tuple(kind(v) for v in value))
        probs = [self.hflip, self.affine_p, self.colour_p, self.cutout_p, self.downscale_p, self.blur_p, self.noise_p,
                 self.jpeg_p, self.h264_p]
        if not all(0.0 <= p <= 1.0 for p in probs):
            raise ConfigError("augmentation probabilities must be in [0, 1]")
        if not (0.3 <= self.zoom[0] <= self.zoom[1] <= 3.0 and 0.05 <= self.downscale[0] <= self.downscale[1] <= 1.0
                and 1 <= self.jpeg_quality[0] <= self.jpeg_quality[1] <= 100
                and 0.1 <= self.blur_sigma[0] <= self.blur_sigma[1] <= 10 and 0 <= self.noise_sigma[0] <= self.noise_sigma[1] <= 50
                and 0 <= self.h264_crf[0] <= self.h264_crf[1] <= 51):
            raise ConfigError(f"bad augmentation ranges: zoom {self.zoom}, downscale {self.downscale}, jpeg {self.jpeg_quality}, "
                              f"blur_sigma {self.blur_sigma}, noise_sigma {self.noise_sigma}, h264_crf {self.h264_crf}")

    @property
    def per_item(self) -> bool:
        return self.downscale_p > 0 or self.blur_p > 0 or self.noise_p > 0 or self.jpeg_p > 0 or self.h264_p > 0


PRESETS: dict[str, AugmentConfig] = {
    "none": AugmentConfig(hflip=0.0, affine_p=0.0, colour_p=0.0),
    # flip, small zoom/shift, brightness/contrast: what v1 trained with, less blur/JPEG/cutout
    "light": AugmentConfig(),
    # + wider zoom (looser crops), rotation, saturation, cutout, and the quality losses of web video
    "strong": AugmentConfig(zoom=(0.75, 1.1), rotate=8.0, colour_p=0.8, brightness=0.12, contrast=0.25, saturation=0.3,
                            cutout_p=0.15, downscale_p=0.3, blur_p=0.15, jpeg_p=0.5),
}
# strong, with more and harder quality losses: down to a third of the resolution, JPEG q30-90, noise, H.264 frames
PRESETS["web"] = dataclasses.replace(PRESETS["strong"], downscale_p=0.5, downscale=(0.35, 1.0), blur_p=0.2, noise_p=0.2,
                                     jpeg_p=0.6, jpeg_quality=(30, 90), h264_p=0.25)


def augment_config(value: Any) -> AugmentConfig:
    """A preset name, a table ``{preset = NAME, key = value, ...}``, or an AugmentConfig."""
    if isinstance(value, AugmentConfig):
        return value
    if isinstance(value, str):
        value = {"preset": value}
    if not isinstance(value, dict):
        raise ConfigError(f"augment must be a preset name or a table, not {value!r}")
    values = dict(value)
    preset = values.pop("preset", "light")
    if preset not in PRESETS:
        raise ConfigError(f"unknown augment preset {preset!r}; known: {', '.join(PRESETS)}")
    fields = {f.name for f in dataclasses.fields(AugmentConfig)}
    unknown = sorted(set(values) - fields)
    if unknown:
        raise ConfigError(f"unknown augment keys {unknown}; known: {', '.join(sorted(fields))}")
    return dataclasses.replace(PRESETS[preset], **values)


def jpeg_round_trip(img: np.ndarray, quality: int) -> np.ndarray:
    """An RGB uint8 image JPEG-encoded at ``quality`` and decoded again (unchanged if OpenCV cannot encode it)."""
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(img[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1] if ok else img


def degrade(img: np.ndarray, cfg: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    """Per-item quality losses on an RGB uint8 image: down-up scaling, blur, noise, JPEG, H.264 (each with its probability).

    Noise and H.264 draw from ``rng`` only when on, so configs without them draw as they always did.
    """
    draws = rng.random(3)
    h, w = img.shape[:2]
    if draws[0] < cfg.downscale_p:
        f = rng.uniform(*cfg.downscale)
        small = cv2.resize(img, (max(8, round(w * f)), max(8, round(h * f))), interpolation=cv2.INTER_AREA)
        img = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    if draws[1] < cfg.blur_p:
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(*cfg.blur_sigma))
    if cfg.noise_p > 0 and rng.random() < cfg.noise_p:
        noise = rng.normal(0.0, rng.uniform(*cfg.noise_sigma), size=img.shape).astype(np.float32)
        img = np.clip(img + noise, 0, 255).astype(np.uint8)
    if draws[2] < cfg.jpeg_p:
        quality = int(rng.integers(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1))
        img = jpeg_round_trip(img, quality)
    if cfg.h264_p > 0 and rng.random() < cfg.h264_p:
        img = h264_frame(img, int(rng.integers(cfg.h264_crf[0], cfg.h264_crf[1] + 1)))
    return np.ascontiguousarray(img)


def h264_frame(img: np.ndarray, crf: int) -> np.ndarray:
    """``img`` (RGB uint8) encoded as one H.264 frame by libx264 at ``crf`` and decoded (the intra coding of web video).

    Odd sides are cropped to even for YUV 4:2:0 and padded back by repeating the edge.
    """
    import av

    h, w = img.shape[:2]
    even = np.ascontiguousarray(img[: h - h % 2, : w - w % 2])
    buf = io.BytesIO()
    with av.open(buf, "w", format="h264") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = even.shape[1], even.shape[0], "yuv420p"
        stream.options = {"crf": str(crf), "preset": "ultrafast", "tune": "zerolatency", "threads": "1"}
        for packet in [*stream.encode(av.VideoFrame.from_ndarray(even, format="rgb24")), *stream.encode()]:
            out.mux(packet)
    buf.seek(0)
    with av.open(buf, "r", format="h264") as inp:
        frame = next(inp.decode(video=0)).to_ndarray(format="rgb24")
    return cv2.copyMakeBorder(frame, 0, h - frame.shape[0], 0, w - frame.shape[1], cv2.BORDER_REPLICATE)


def to_chw(img: np.ndarray) -> torch.Tensor:
    """RGB uint8 HxWx3 -> uint8 3xHxW tensor (batches travel as uint8: 4x less to copy between processes)."""
    return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)


def normalize(x: torch.Tensor, mean, std, out: torch.Tensor | None = None) -> torch.Tensor:
    """uint8 (or [0, 1] float) N x 3 x H x W -> float32 normalised by the model's mean/std; written into ``out``
    when given (a buffer reused batch after batch), else into a new tensor. Either way the same values."""
    if out is None:
        out = torch.empty_like(x, dtype=torch.float32 if x.dtype == torch.uint8 else x.dtype)
    out.copy_(x)
    if x.dtype == torch.uint8:
        out.div_(255.0)
    m = torch.tensor(mean, dtype=out.dtype, device=out.device).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=out.dtype, device=out.device).view(1, 3, 1, 1)
    return out.sub_(m).div_(s)


class BatchAugment:
    """Flip, zoom/shift/rotation, colour and cutout on a whole uint8 batch, then normalisation."""

    def __init__(self, cfg: AugmentConfig, mean, std) -> None:
        self.cfg, self.mean, self.std = cfg, mean, std

    def __call__(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        cfg = self.cfg
        x = x.float().div_(255.0)
        n = x.shape[0]

        def uniform(lo: float, hi: float) -> torch.Tensor:
            return lo + (hi - lo) * torch.rand(n, generator=g)

        def chosen(p: float) -> torch.Tensor:
            return torch.rand(n, generator=g) < p

        flip = chosen(cfg.hflip)
        x[flip] = x[flip].flip(-1)
        warp = chosen(cfg.affine_p)
        zoom = torch.exp(uniform(math.log(cfg.zoom[0]), math.log(cfg.zoom[1])))
        angle = uniform(-cfg.rotate, cfg.rotate) * (math.pi / 180)
        tx, ty = uniform(-2 * cfg.shift, 2 * cfg.shift), uniform(-2 * cfg.shift, 2 * cfg.shift)  # grid spans [-1, 1]
        if warp.any():
            cos, sin = torch.cos(angle[warp]) / zoom[warp], torch.sin(angle[warp]) / zoom[warp]
            theta = torch.stack([torch.stack([cos, -sin, tx[warp]], 1), torch.stack([sin, cos, ty[warp]], 1)], 1)
            grid = F.affine_grid(theta, list(x[warp].shape), align_corners=False)
            x[warp] = F.grid_sample(x[warp], grid, mode="bilinear", padding_mode="reflection", align_corners=False)
        colour = chosen(cfg.colour_p)
        bright = uniform(-cfg.brightness, cfg.brightness)
        contrast = uniform(1 - cfg.contrast, 1 + cfg.contrast)
        saturation = uniform(1 - cfg.saturation, 1 + cfg.saturation)
        if colour.any():
            y = x[colour]
            gray = (0.299 * y[:, 0] + 0.587 * y[:, 1] + 0.114 * y[:, 2]).unsqueeze(1)
            y = gray + (y - gray) * saturation[colour].view(-1, 1, 1, 1)
            level = gray.mean((2, 3), keepdim=True)
            y = (y - level) * contrast[colour].view(-1, 1, 1, 1) + level + bright[colour].view(-1, 1, 1, 1)
            x[colour] = y.clamp_(0.0, 1.0)
        cut = chosen(cfg.cutout_p)
        ch, cw = uniform(0.1, 0.3), uniform(0.1, 0.3)
        cy, cx = uniform(0.0, 1.0), uniform(0.0, 1.0)
        if cut.any():
            h, w = x.shape[2:]
            rows = (torch.arange(h).view(1, h, 1) + 0.5) / h
            cols = (torch.arange(w).view(1, 1, w) + 0.5) / w
            box = ((rows - cy.view(-1, 1, 1)).abs() < ch.view(-1, 1, 1) / 2) & ((cols - cx.view(-1, 1, 1)).abs() < cw.view(-1, 1, 1) / 2)
            x[cut] = x[cut] * (~box[cut]).unsqueeze(1)
        return normalize(x, self.mean, self.std)
