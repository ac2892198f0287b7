"""OpenAPI examples: a scored image and the problem+json error bodies."""

PROBLEM_SCHEMA = {
    "type": "object",
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
    },
}


def _problem(status: int, title: str, detail: str, kind: str) -> dict:
    example = {"type": f"https://unmask.dev/problems/{kind}", "title": title, "status": status, "detail": detail}
    return {"description": title, "content": {"application/problem+json": {"schema": PROBLEM_SCHEMA, "example": example}}}


ERROR_RESPONSES = {
    413: _problem(413, "Limit exceeded", "big.jpg: upload is over the limit of 209715200 bytes", "limit_exceeded"),
    415: _problem(415, "Unsupported media type", "notes.txt: not a supported image or video", "unsupported_media"),
    422: _problem(422, "Unprocessable media", "broken.jpg: the image cannot be decoded", "corrupt_media"),
    503: _problem(503, "Not ready", "the model is still loading", "not-ready"),
}

IMAGE_EXAMPLE = {
    "content": {
        "application/json": {
            "example": {
                "path": "frame.jpg",
                "media": "image",
                "status": "ok",
                "error": None,
                "score": 0.91,
                "label": "fake",
                "threshold": 0.5,
                "aggregation": "confident",
                "model": {"name": "lite0-dfdc-sbi", "version": "1", "architecture": "lite0"},
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
                "timings_ms": {"decode": 31.0, "detect": 410.0, "classify": 50.0, "total": 491.0},
            }
        }
    }
}
