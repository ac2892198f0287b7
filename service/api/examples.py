"""OpenAPI response declarations: the problem+json errors each operation can answer, and examples.

Every error response refers to one ``Problem`` component (``core.problems.ProblemBody``)
with the media type the server really sends, ``application/problem+json``.
"""

from ..core.problem_types import slug
from ..core.problems import PROBLEM_JSON, TYPE_BASE

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
# (title, an example detail, problem type) per status
PROBLEM_EXAMPLES = {
    400: ("Bad Request", "the multipart body ends before its closing boundary --x-- after 5000 bytes: it was cut short, or its "
          "Content-Length is smaller than the body", "bad_request"),
    401: ("Unauthorized", "an API key is required (X-API-Key or Authorization: Bearer)", "unauthorized"),
    403: ("Forbidden", "../etc/passwd: outside the allowed root", "path_outside_root"),
    404: ("Not found", "no job 0c6f6a3e", "not_found"),
    408: ("Request timeout", "no bytes of the request body arrived for 15 s (1024 received)", "request-timeout"),
    409: ("Conflict", "job 0c6f6a3e has already ended (done)", "job_ended"),
    413: (
        "Limit exceeded",
        "big.jpg: upload is over the limit of 52428800 bytes; send larger files to POST /v1/jobs",
        "limit_exceeded",
    ),
    415: ("Unsupported media type", "notes.txt: not a supported image or video", "unsupported_media"),
    422: ("Unprocessable media", "broken.jpg: the image cannot be decoded", "corrupt_media"),
    429: ("Too many requests", "10000 jobs are queued, the limit is 10000; retry later", "queue-full"),
    503: ("Not ready", "the model is still loading", "not-ready"),
    507: ("Insufficient storage", "the server has no disk space left for this upload; retry later", "insufficient-storage"),
}
DESCRIPTIONS = {
    400: "The body is malformed: not valid multipart/form-data (or JSON), or cut short",
    401: "No API key, or not an accepted one (when keys are configured)",
    403: "A server-side path outside the allowed root, or server-side paths are off",
    404: "No such job, batch or server-side path",
    408: "The body stalled, or arrived slower than the server's floor rate; the connection is closed",
    409: "The job has already ended",
    413: "Over a limit: upload size, pixels, video length, file count",
    415: "Not a supported image or video (sniffed from content), or sent to the wrong endpoint",
    422: "A missing or invalid field, or a file that cannot be decoded",
    429: "The job queue is full (Retry-After)",
    503: "The model is still loading or the synchronous slots are busy (Retry-After), or the model failed to load (no Retry-After)",
    507: "No disk space left for the upload (Retry-After)",
}


def problems(*statuses: int) -> dict:
    """``responses=`` entries declaring these error statuses as problem+json."""
    out = {}
    for status in statuses:
        title, detail, kind = PROBLEM_EXAMPLES[status]
        example = {"type": TYPE_BASE + slug(kind), "title": title, "status": status, "detail": detail}
        out[status] = {
            "description": DESCRIPTIONS[status],
            "content": {PROBLEM_JSON: {"schema": PROBLEM_REF, "example": example}},
        }
    return out


IMAGE_RECORD = {
    "path": "frame.jpg",
    "media": "image",
    "status": "ok",
    "error": None,
    "score": 0.91,
    "label": "fake",
    "confidence": "high",
    "threshold": 0.5,
    "uncertain_band": [0.2381, 0.7619],
    "aggregation": "confident",
    "model": {"name": "lite0-dfdc-sbi-reenact", "version": "1", "architecture": "lite0"},
    "frames": [
        {
            "index": 0,
            "time": 0.0,
            "score": 0.91,
            "faces": [
                {
                    "box": [862.5, 74.6, 1077.4, 345.3],
                    "detection": 0.9999,
                    "landmarks": [[917.5, 169.7], [1018.7, 173.9], [958.5, 218.0], [916.2, 277.1], [1003.1, 282.4]],
                    "score": 0.91,
                    "track": 0,
                }
            ],
        }
    ],
    "tracks": [{"id": 0, "score": 0.91, "frames": 1, "start": 0.0, "end": 0.0, "counted": True}],
    "options": {"explain": False, "uncertain_margin": None},
    "explanations": None,
    "provenance": {"present": False, "validation_state": None, "claim_generator": None, "signer": None, "signed_at": None,
                   "ai_content": None, "detail": "no Content Credentials in the file"},
    "timings_ms": {"decode": 31.0, "detect": 410.0, "provenance": 0.5, "classify": 50.0, "total": 491.0},
}

VIDEO_RECORD = IMAGE_RECORD | {
    "path": "interview.mp4",
    "media": "video",
    "score": 0.12,
    "label": "real",
    "frames": [
        {
            "index": 4,
            "time": 0.16,
            "score": 0.11,
            "faces": [
                {
                    "box": [412.0, 188.3, 640.2, 470.9],
                    "detection": 0.9991,
                    "landmarks": [[480.1, 300.2], [580.4, 298.7], [531.0, 350.5], [490.2, 410.8], [570.9, 409.3]],
                    "score": 0.11,
                    "track": 0,
                }
            ],
        },
        {
            "index": 13,
            "time": 0.52,
            "score": 0.13,
            "faces": [
                {
                    "box": [415.5, 190.1, 642.0, 472.4],
                    "detection": 0.9993,
                    "landmarks": [[482.7, 301.9], [582.2, 300.0], [533.4, 352.0], [492.5, 412.6], [572.8, 411.1]],
                    "score": 0.13,
                    "track": 0,
                }
            ],
        },
    ],
    "tracks": [{"id": 0, "score": 0.12, "frames": 2, "start": 0.16, "end": 0.52, "counted": True}],
    "options": {"frames": 2, "sample_fps": None, "aggregation": "confident", "explain": False, "uncertain_margin": None},
    "explanations": None,
    "provenance": {"present": True, "validation_state": "valid", "claim_generator": "Example Camera App 2.1",
                   "signer": "Example Newsroom (Example Newsroom Signing)", "signed_at": "2024-05-01T09:12:40+00:00",
                   "ai_content": None, "detail": "signature and hashes check out; the signer is not on a trust list"},
    "timings_ms": {"decode": 120.4, "detect": 210.9, "provenance": 1.8, "classify": 61.2, "total": 401.7},
}

JOB_QUEUED = {
    "id": "0c6f6a3e9b6d4f0e8a5b2f4d1c3e7a90",
    "state": "queued",
    "name": "interview.mp4",
    "batch_id": None,
    "created": "2024-05-01T09:30:12.481000Z",
    "started": None,
    "finished": None,
    "attempts": 0,
    "progress": {"done": 0, "total": 0},
    "cancel_requested": False,
    "error": None,
    "options": {"frames": 2},
    "callback": {
        "url": "https://hooks.example.com/unmask",
        "state": "pending",
        "attempts": 0,
        "last_status": None,
        "last_error": None,
    },
    "result": None,
    "url": "/v1/jobs/0c6f6a3e9b6d4f0e8a5b2f4d1c3e7a90",
}
JOB_DONE = JOB_QUEUED | {
    "state": "done",
    "started": "2024-05-01T09:30:12.502000Z",
    "finished": "2024-05-01T09:30:13.011000Z",
    "attempts": 1,
    "progress": {"done": 2, "total": 2},
    "callback": JOB_QUEUED["callback"] | {"state": "delivered", "attempts": 1, "last_status": 200},
    "result": VIDEO_RECORD,
}


def example(status: int, value, media_type: str = "application/json") -> dict:
    """A ``responses=`` entry giving ``status`` an example body."""
    return {status: {"content": {media_type: {"example": value}}}}
