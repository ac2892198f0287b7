"""Text for a terminal or a log line: control characters escaped.

A file name or a request path can hold a newline (which would split one line
in two, or forge another) or an ESC (which would drive the reader's
terminal). The CLI's table and the service's text log both print such text.
"""

from __future__ import annotations

import re

CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")


def printable(text: str) -> str:
    """``text`` with each control character written as ``\\xNN``."""
    return CONTROL_CHARS.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
