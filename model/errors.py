"""Typed errors of the scoring path. Each maps to one problem type in the API."""


class MediaError(Exception):
    """A file that cannot be scored. ``kind`` is a stable machine-readable name."""

    kind = "media_error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class UnsupportedMediaError(MediaError):
    """Not an image or video format that unmask reads (sniffed from content)."""

    kind = "unsupported_media"


class CorruptMediaError(MediaError):
    """Empty, truncated or undecodable file of a supported type."""

    kind = "corrupt_media"


class MediaLimitError(MediaError):
    """A file over a configured limit (pixels, duration, size)."""

    kind = "limit_exceeded"
