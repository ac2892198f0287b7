import numpy as np
from unmask.model.tracker import box_iou, link_tracks


def _box(x, y, s=100):
    return np.array([x, y, x + s, y + s], dtype=np.float32)


def test_two_people_side_by_side_give_two_tracks():
    frames = [[_box(100 + 5 * t, 100), _box(600 - 5 * t, 110)] for t in range(10)]
    ids = link_tracks(frames)
    assert all(frame == [0, 1] for frame in ids)


def test_a_moving_face_stays_one_track_and_order_does_not_matter():
    frames = [[_box(100 + 30 * t, 100)] for t in range(8)]
    frames[3] = []  # a missed detection
    frames.append([_box(900, 500), _box(100 + 30 * 8, 100)])  # a newcomer listed first
    ids = link_tracks(frames)
    assert {i for f in ids[:-1] for i in f} == {0}
    assert ids[-1] == [1, 0]


def test_after_a_long_gap_only_the_same_place_continues_a_track():
    frames = [[_box(100, 100)]] + [[] for _ in range(6)] + [[_box(100, 100)], [_box(160, 100)]]
    ids = link_tracks(frames, max_gap=4)
    assert ids[-2] == [0]  # an intermittent still face stays one track
    near = [[_box(100, 100)]] + [[] for _ in range(6)] + [[_box(150, 100)]]  # moved: IoU 0.33
    assert link_tracks(near, max_gap=4)[-1] == [1]


def test_iou():
    assert box_iou(_box(0, 0), _box(0, 0)) == 1.0
    assert box_iou(_box(0, 0), _box(200, 0)) == 0.0
    assert abs(box_iou(_box(0, 0), _box(50, 0)) - 1 / 3) < 1e-6
