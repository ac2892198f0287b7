"""JSON that other tools can read: NaN and infinities become null.

Python's ``json`` writes ``NaN`` and ``Infinity``, which are not JSON: jq,
browsers and most other languages refuse the file. Metrics are NaN where they
are undefined (AUC on a set of one class), and they go into eval reports
and checkpoint metadata. (The training state file keeps Python's JSON: only
resume reads it, and it needs its NaNs back as floats.)
"""

from __future__ import annotations

import json
import math
from typing import Any


def json_ready(value: Any) -> Any:
    """``value`` with every NaN or infinite float (at any depth) replaced by None."""
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def dumps(value: Any, **kwargs) -> str:
    """``json.dumps`` of ``json_ready(value)``; raises rather than write a non-JSON constant."""
    return json.dumps(json_ready(value), allow_nan=False, **kwargs)
