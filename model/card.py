"""A checkpoint's model card: ``NAME.md`` beside ``NAME.safetensors``, and the licence it states.

The bundled cards end with a ``## Licence`` section: the terms the weights
inherit from their training data. A checkpoint of your own may have no card.
"""

from __future__ import annotations

import re
from pathlib import Path

from .checkpoint import checkpoint_paths

LICENCE_HEADING = re.compile(r"^##\s+Licen[cs]e\s*$", re.IGNORECASE | re.MULTILINE)


def card_path(weights_path: str | Path) -> Path:
    """Where the card of a checkpoint lies (it may not exist)."""
    weights, _ = checkpoint_paths(weights_path)
    return weights.with_suffix(".md")


def read_card(weights_path: str | Path) -> str | None:
    """The card's Markdown, or None when the checkpoint has no card."""
    path = card_path(weights_path)
    return path.read_text(encoding="utf-8") if path.is_file() else None


def card_licence(card: str) -> str | None:
    """The first paragraph of the card's Licence section as one line (code marks dropped), or None without one."""
    heading = LICENCE_HEADING.search(card)
    if heading is None:
        return None
    paragraph = card[heading.end():].strip().split("\n\n", 1)[0]
    if not paragraph or paragraph.startswith("#"):
        return None
    return " ".join(paragraph.replace("`", "").split())
