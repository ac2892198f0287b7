"""A small registry: entries stored by name with a decorator, looked up in one place (the timm way).

Used for architectures, aggregation strategies and dataset readers, so an
unknown name fails everywhere with the same message listing the known ones.
"""

from __future__ import annotations

from typing import Any, Callable, Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """Named entries of one ``kind`` (e.g. "architecture"), each with optional metadata."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}
        self.meta: dict[str, dict[str, Any]] = {}

    def register(self, name: str, **meta: Any) -> Callable[[T], T]:
        """Decorator: store the entry under ``name`` (twice is an error), with ``meta``."""

        def wrap(entry: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} registered twice")
            self._entries[name] = entry
            self.meta[name] = meta
            return entry

        return wrap

    def get(self, name: str) -> T:
        self.check(name)
        return self._entries[name]

    def check(self, name: str) -> str:
        """``name`` if registered; else ValueError naming the known entries."""
        if name not in self._entries:
            raise ValueError(f"unknown {self.kind} {name!r}; known: {', '.join(self.names())}")
        return name

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries
