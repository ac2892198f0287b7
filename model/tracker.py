"""Link faces across sampled frames into tracks (one per person on screen).

Greedy matching on box overlap, falling back to centre distance because
sampled frames are a third of a second apart and faces move between them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def _centre_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Centre distance in units of the larger box's side."""
    ca = np.array([(a[0] + a[2]) / 2, (a[1] + a[3]) / 2])
    cb = np.array([(b[0] + b[2]) / 2, (b[1] + b[3]) / 2])
    side = max(a[2] - a[0], a[3] - a[1], b[2] - b[0], b[3] - b[1], 1.0)
    return float(np.linalg.norm(ca - cb) / side)


@dataclass
class _Track:
    id: int
    last_box: np.ndarray
    last_frame: int
    members: list[tuple[int, int]] = field(default_factory=list)  # (frame position, face position)


def link_tracks(
    frames_boxes: list[list[np.ndarray]],
    min_iou: float = 0.2,
    max_distance: float = 0.6,
    max_gap: int = 4,
    same_place_iou: float = 0.5,
) -> list[list[int]]:
    """Track id for every face: ``result[frame][face]``.

    Args:
        frames_boxes: boxes per kept frame, in frame order.
        min_iou: overlap above which a face continues a track.
        max_distance: else, centre distance (in box sides) under which it does.
        max_gap: after this many kept frames unseen, a track continues only
            with a face at the same place (``same_place_iou``): an intermittent
            detection of a still face or object stays one track.
    """
    tracks: list[_Track] = []
    ids: list[list[int]] = []
    for t, boxes in enumerate(frames_boxes):
        pairs = []
        for fi, box in enumerate(boxes):
            for tr in tracks:
                iou = box_iou(box, tr.last_box)
                dist = _centre_distance(box, tr.last_box)
                recent = t - tr.last_frame <= max_gap
                if (recent and (iou >= min_iou or dist <= max_distance)) or iou >= same_place_iou:
                    pairs.append((iou, -dist, fi, tr))
        pairs.sort(key=lambda p: (p[0], p[1]), reverse=True)
        frame_ids = [-1] * len(boxes)
        used: set[int] = set()
        for _, _, fi, tr in pairs:
            if frame_ids[fi] == -1 and tr.id not in used:
                frame_ids[fi] = tr.id
                used.add(tr.id)
                tr.last_box, tr.last_frame = boxes[fi], t
        for fi, box in enumerate(boxes):
            if frame_ids[fi] == -1:
                tr = _Track(id=len(tracks), last_box=box, last_frame=t)
                tracks.append(tr)
                frame_ids[fi] = tr.id
        ids.append(frame_ids)
    return ids
