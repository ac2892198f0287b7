import pytest
from unmask.model.printable import printable


@pytest.mark.parametrize("text, shown", [
    ("two\nlines", "two\\x0alines"),
    ("\x1b[31mred", "\\x1b[31mred"),
    ("nul\x00", "nul\\x00"),
    ("c1\x9bcsi", "c1\\x9bcsi"),
    ("photo\u202egpj.exe", "photo\\u202egpj.exe"),  # right-to-left override
    ("\u2066isolate\u2069", "\\u2066isolate\\u2069"),
    ("zero\u200bwidth\ufeff", "zero\\u200bwidth\\ufeff"),
    ("line\u2028separator", "line\\u2028separator"),
    ("bytes\udcff", "bytes\\udcff"),  # an undecodable byte of a file name (surrogateescape)
    ("tag\U000e0041", "tag\\U000e0041"),
])
def test_control_and_invisible_characters_are_escaped(text, shown):
    assert printable(text) == shown


def test_visible_text_is_kept_as_is():
    text = "café 中文 Ελληνικά עברית 😀 plain ASCII ~!@#"
    assert printable(text) == text
