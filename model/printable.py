"""Text for a terminal, a log line or a name shown to a person: invisible and control characters escaped.

A file name or a request path can hold a newline (which would split one line
in two, or forge another), an ESC (which would drive the reader's terminal),
a NUL, or an invisible format character: a right-to-left override (U+202E)
makes ``photo\\u202egpj.exe`` read as ``photoexe.jpg``. The CLI's table and
its messages, the text logs (``TextFormatter``), the service's problem
details and the names in its records all pass such text through ``printable``. JSON output needs no more than JSON's
own escaping, and keeps the original characters for a program to use.
"""

from __future__ import annotations

import logging
import re
import unicodedata

NOT_PRINTABLE_ASCII = re.compile(r"[^\x20-\x7e]")  # the candidates; most text has none
# Control (C0, DEL, C1), format (bidi controls, zero-width characters, soft hyphen ...), lone
# surrogates (undecodable bytes of a file name) and the line and paragraph separators.
ESCAPED_CATEGORIES = {"Cc", "Cf", "Cs", "Zl", "Zp"}


def printable(text: str) -> str:
    """``text`` with each control or invisible format character written as ``\\xNN`` or ``\\uNNNN``."""
    return NOT_PRINTABLE_ASCII.sub(_escaped, text)


def _escaped(match: re.Match) -> str:
    char = match.group()
    if unicodedata.category(char) not in ESCAPED_CATEGORIES:
        return char
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


class TextFormatter(logging.Formatter):
    """One line a message, for a text log: its text through ``printable``, so a client or a file name
    cannot forge log lines or drive the terminal of whoever reads them. A traceback, appended after
    the message, keeps its lines."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = printable(record.message)
        return super().formatMessage(record)
