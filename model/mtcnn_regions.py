"""MTCNN restricted to regions of an image, computing there what a full-frame pass computes.

The whole image is one region: that is unmask's full pass (``fast_mtcnn``),
the same boxes as facenet-pytorch's ``detect_face`` at 1.4x its speed, since
pyramid levels and the RNet/ONet crops are summed from one integral image
instead of one ``interpolate`` call per level and per candidate box.

facenet-pytorch's ``detect_face`` runs its proposal net (PNet) on every level
of an image pyramid of the whole frame. Running it on a crop around a face
instead finds the face too, but a crop's pyramid is resampled differently,
so the boxes move a few pixels and the classifier's scores with them (up to
0.1 on a shared clip). Here each pyramid level is computed only inside the
regions, yet exactly as the full level would be there:

- a level is an area resampling (bins ``[floor(i*H/h), ceil((i+1)*H/h))``);
  a window of it is summed from an integral image over the same bins, which
  is exact for integer pixels (``area_window``; tested against torch);
- PNet has no padding and one stride-2 pooling, so on a window that starts
  at an even offset its outputs equal the full level's outputs there.

The candidates then go through facenet-pytorch's own refinement stages
(RNet, ONet, box regression, non-maximum suppression), copied from its
``detect_face`` so the steps and thresholds are the same.
"""

from __future__ import annotations

import itertools
import math

import cv2
import numpy as np
import torch
from facenet_pytorch import MTCNN
from facenet_pytorch.models.utils.detect_face import batched_nms_numpy, bbreg, fixed_batch_process, pad, rerec
from torchvision.ops.boxes import batched_nms

Region = tuple[int, int, int, int]  # x1, y1, x2, y2 in pixels of the image


def pyramid_scales(height: int, width: int, min_face: float, factor: float) -> list[float]:
    """The scales facenet-pytorch's detect_face uses (same loop, same float steps)."""
    m = 12.0 / min_face
    minl = min(height, width) * m
    scales, scale = [], m
    while minl >= 12:
        scales.append(scale)
        scale *= factor
        minl *= factor
    return scales


def integral_image(image: np.ndarray) -> np.ndarray:
    """(H+1, W+1, C) running sums of an (H, W, C) uint8 image, zero first row and column.

    OpenCV's integral (int32 where no sum can overflow it, else float64) is
    exact and about 25x faster than two numpy cumsums.
    """
    depth = cv2.CV_32S if image.shape[0] * image.shape[1] * 255 < 2**31 else cv2.CV_64F
    out = cv2.integral(np.ascontiguousarray(image), sdepth=depth)
    return out if out.ndim == 3 else out[:, :, None]


def area_window(
    integral: np.ndarray, image_size: tuple[int, int], level_size: tuple[int, int], rows: tuple[int, int], cols: tuple[int, int],
    origin: tuple[int, int] = (0, 0),
) -> np.ndarray:
    """Rows ``[r0, r1)`` and columns ``[c0, c1)`` of the image area-resampled to ``level_size``, (C, rows, cols) float32.

    The bins are those of torch's adaptive average pooling (``interpolate(mode="area")``);
    ``integral`` covers the rectangle of the image whose top-left corner is ``origin`` (x, y).
    """
    (height, width), (lh, lw), (r0, r1), (c0, c1), (ox, oy) = image_size, level_size, rows, cols, origin
    i, j = np.arange(r0, r1), np.arange(c0, c1)
    top, bottom = (i * height) // lh - oy, -((-(i + 1) * height) // lh) - oy
    left, right = (j * width) // lw - ox, -((-(j + 1) * width) // lw) - ox
    sums = (integral[bottom][:, right] - integral[top][:, right] - integral[bottom][:, left] + integral[top][:, left]).astype(np.float32)
    kh = (bottom - top).astype(np.float32)[:, None, None]
    kw = (right - left).astype(np.float32)[None, :, None]
    return np.ascontiguousarray((sums / kh / kw).transpose(2, 0, 1))


def _proposals(reg: torch.Tensor, probs: torch.Tensor, scale: float, threshold: float, offset: tuple[int, int]) -> torch.Tensor:
    """facenet-pytorch's generateBoundingBox for one window whose first PNet cell is ``offset`` (x, y) of the level's grid."""
    stride, cellsize = 2, 12
    reg = reg.permute(1, 0, 2, 3)
    mask = probs >= threshold
    cells = mask.nonzero()
    score = probs[mask]
    reg = reg[:, mask].permute(1, 0)
    grid = cells[:, 1:].type(reg.dtype).flip(1) + torch.tensor(offset, dtype=reg.dtype)
    q1 = ((stride * grid + 1) / scale).floor()
    q2 = ((stride * grid + cellsize - 1 + 1) / scale).floor()
    return torch.cat([q1, q2, score.unsqueeze(1), reg], dim=1)


def detect_in_regions(
    mtcnn: MTCNN, image: np.ndarray, regions: list[Region], min_face: float, region_min_faces: list[float] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """MTCNN on ``image`` (H, W, 3 uint8) where PNet looks only inside ``regions``.

    ``region_min_faces``: per region, the smallest face to look for there (in
    pixels); the pyramid levels for smaller faces are skipped in that region.
    The levels kept are the full pass's levels (scales from ``min_face``).

    Returns (boxes (N, 5): x1, y1, x2, y2, probability; landmarks (N, 5, 2)),
    as facenet-pytorch's detect_face would for the faces inside the regions.
    """
    height, width = image.shape[:2]
    floors = region_min_faces or [0.0] * len(regions)
    windows = []  # (scale, level size, level rows, level columns)
    for scale in pyramid_scales(height, width, min_face, mtcnn.factor):
        size = (int(height * scale + 1), int(width * scale + 1))
        # A level finds faces of about 12 / scale pixels.
        spans = (_level_window(region, scale, size) for region, floor in zip(regions, floors, strict=True) if 12.0 / scale >= floor)
        windows += [(scale, size, *w) for w in spans if w]
    if not windows:
        return _NOTHING
    # One integral image over every pixel the windows' bins read.
    extents = np.array([_bins(rows, size[0], height) + _bins(cols, size[1], width) for _, size, rows, cols in windows])
    y0, x0 = extents[:, 0].min(), extents[:, 2].min()
    integral = integral_image(image[y0 : extents[:, 1].max(), x0 : extents[:, 3].max()])
    picked = []
    for scale, group in itertools.groupby(windows, key=lambda w: w[0]):
        found = []
        for _, size, rows, cols in group:
            data = (torch.from_numpy(area_window(integral, (height, width), size, rows, cols, (x0, y0))).unsqueeze(0) - 127.5) * 0.0078125
            reg, probs = mtcnn.pnet(data)
            found.append(_proposals(reg, probs[:, 1], scale, mtcnn.thresholds[0], (cols[0] // 2, rows[0] // 2)))
        boxes = torch.cat(found)
        if len(boxes):  # duplicates from overlapping regions go here (IoU 1)
            picked.append(boxes[batched_nms(boxes[:, :4], boxes[:, 4], torch.zeros(len(boxes), dtype=torch.long), 0.5)])
    if not picked:
        return _NOTHING
    return _refine(image, torch.cat(picked), mtcnn.rnet, mtcnn.onet, mtcnn.thresholds, width, height)


_NOTHING = (np.zeros((0, 5), np.float32), np.zeros((0, 5, 2), np.float32))


def _level_window(region: Region, scale: float, level_size: tuple[int, int]) -> tuple[tuple[int, int], tuple[int, int]] | None:
    """Level rows and columns covering a region: starting even (PNet's stride), ending at the
    level's own edge or after an even count (no partial pooling), at least PNet's 12 pixels."""
    x1, y1, x2, y2 = region
    lh, lw = level_size
    spans = []
    for start, stop, edge in ((y1, y2, lh), (x1, x2, lw)):
        a = (int(start * scale) // 2) * 2
        b = min(edge, math.ceil(stop * scale) + 1)
        b -= (b - a) % 2 if b < edge else 0
        if b - a < 12:
            return None
        spans.append((a, b))
    return spans[0], spans[1]


def _bins(span: tuple[int, int], level: int, full: int) -> tuple[int, int]:
    """The image pixels [first, last) that level pixels ``span`` average over."""
    return (span[0] * full) // level, -((-span[1] * full) // level)


def _refine(image: np.ndarray, boxes: torch.Tensor, rnet, onet, thresholds, w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
    """facenet-pytorch detect_face's stages after PNet, for one image (copied: same steps, same thresholds)."""
    image_inds = torch.zeros(len(boxes), dtype=torch.long)
    pick = batched_nms(boxes[:, :4], boxes[:, 4], image_inds, 0.7)
    boxes, image_inds = boxes[pick], image_inds[pick]
    regw, regh = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    qq1, qq2 = boxes[:, 0] + boxes[:, 5] * regw, boxes[:, 1] + boxes[:, 6] * regh
    qq3, qq4 = boxes[:, 2] + boxes[:, 7] * regw, boxes[:, 3] + boxes[:, 8] * regh
    boxes = rerec(torch.stack([qq1, qq2, qq3, qq4, boxes[:, 4]]).permute(1, 0))
    # RNet
    out = fixed_batch_process(_crops(image, boxes, w, h, 24), rnet)
    score = out[1].permute(1, 0)[1, :]
    ipass = score > thresholds[1]
    boxes = torch.cat((boxes[ipass, :4], score[ipass].unsqueeze(1)), dim=1)
    image_inds, mv = image_inds[ipass], out[0].permute(1, 0)[:, ipass].permute(1, 0)
    pick = batched_nms(boxes[:, :4], boxes[:, 4], image_inds, 0.7)
    boxes, image_inds, mv = boxes[pick], image_inds[pick], mv[pick]
    boxes = rerec(bbreg(boxes, mv))
    if not len(boxes):
        return np.zeros((0, 5), np.float32), np.zeros((0, 5, 2), np.float32)
    # ONet
    out = fixed_batch_process(_crops(image, boxes, w, h, 48), onet)
    out0, points, score = out[0].permute(1, 0), out[1].permute(1, 0), out[2].permute(1, 0)[1, :]
    ipass = score > thresholds[2]
    points = points[:, ipass]
    boxes = torch.cat((boxes[ipass, :4], score[ipass].unsqueeze(1)), dim=1)
    image_inds, mv = image_inds[ipass], out0[:, ipass].permute(1, 0)
    w_i, h_i = boxes[:, 2] - boxes[:, 0] + 1, boxes[:, 3] - boxes[:, 1] + 1
    points_x = w_i.repeat(5, 1) * points[:5, :] + boxes[:, 0].repeat(5, 1) - 1
    points_y = h_i.repeat(5, 1) * points[5:10, :] + boxes[:, 1].repeat(5, 1) - 1
    points = torch.stack((points_x, points_y)).permute(2, 1, 0)
    boxes = bbreg(boxes, mv)
    pick = batched_nms_numpy(boxes[:, :4], boxes[:, 4], image_inds, 0.7, "Min")
    return boxes[pick].numpy(), points[pick].numpy()


def _crops(image: np.ndarray, boxes: torch.Tensor, w: int, h: int, size: int) -> torch.Tensor:
    """Each box cut from the image and area-resampled to size x size, normalised as MTCNN's nets expect.

    facenet-pytorch resamples box by box (``imresample``: one torch call per
    box, a hundred per frame); the same bins are summed here for all boxes at
    once from one integral image, which gives the same numbers (integer pixels).
    """
    y, ey, x, ex = pad(boxes, w, h)  # 1-based, clamped to the image, as facenet-pytorch cuts them
    valid = (ey > y - 1) & (ex > x - 1)
    top, left, heights, widths = y[valid] - 1, x[valid] - 1, ey[valid] - y[valid] + 1, ex[valid] - x[valid] + 1
    y0, x0 = int(top.min()), int(left.min())
    integral = integral_image(image[y0 : int((top + heights).max()), x0 : int((left + widths).max())])
    cells = np.arange(size)
    rows0 = (top - y0)[:, None] + (cells * heights[:, None]) // size
    rows1 = (top - y0)[:, None] - ((-(cells + 1) * heights[:, None]) // size)
    cols0 = (left - x0)[:, None] + (cells * widths[:, None]) // size
    cols1 = (left - x0)[:, None] - ((-(cells + 1) * widths[:, None]) // size)
    r0, r1, c0, c1 = rows0[:, :, None], rows1[:, :, None], cols0[:, None, :], cols1[:, None, :]
    sums = (integral[r1, c1] - integral[r0, c1] - integral[r1, c0] + integral[r0, c0]).astype(np.float32)
    kh = (rows1 - rows0).astype(np.float32)[:, :, None, None]
    kw = (cols1 - cols0).astype(np.float32)[:, None, :, None]
    data = torch.from_numpy(np.ascontiguousarray((sums / kh / kw).transpose(0, 3, 1, 2)))
    return (data - 127.5) * 0.0078125
