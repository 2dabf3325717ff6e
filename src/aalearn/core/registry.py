"""A generic name → object registry with clear errors (attacks, strategies, architectures, ...).

Example:
    >>> reg: Registry[int] = Registry("number")
    >>> reg.register("one", 1)
    1
    >>> reg.get("one")
    1
    >>> reg.get("onw")
    Traceback (most recent call last):
    ...
    KeyError: "unknown number 'onw'; did you mean 'one'? Known: one"
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping
from typing import Generic, TypeVar

__all__ = ["Registry", "unknown_name_message"]

T = TypeVar("T")


def unknown_name_message(kind: str, name: object, known: list[str] | tuple[str, ...]) -> str:
    """One line naming an unknown ``name`` of ``kind``, the closest match and the known names."""
    names = sorted(str(k) for k in known)
    close = difflib.get_close_matches(str(name), names, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ";"
    return f"unknown {kind} {name!r}{hint} Known: {', '.join(names)}"


class Registry(Mapping[str, T], Generic[T]):
    """A read-mostly mapping from names to objects, filled by :meth:`register`.

    Args:
        kind: What the entries are, used in error messages (``"attack"``).
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str, item: T, *, overwrite: bool = False) -> T:
        """Add ``item`` under ``name``; returns ``item`` (usable as a decorator helper).

        Raises:
            ValueError: For an empty name, or a name already taken (unless ``overwrite``).
        """
        if not isinstance(name, str) or not name:
            raise ValueError(f"every {self.kind} needs a non-empty name")
        if name in self._items and not overwrite and self._items[name] is not item:
            raise ValueError(f"another {self.kind} named {name!r} is already registered")
        self._items[name] = item
        return item

    def get(self, name: str, default: T | None = None) -> T:  # type: ignore[override]
        """The entry named ``name``; ``KeyError`` naming the closest match when unknown."""
        if name in self._items:
            return self._items[name]
        if default is not None:
            return default
        raise KeyError(unknown_name_message(self.kind, name, list(self._items)))

    def __getitem__(self, name: str) -> T:
        return self.get(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {sorted(self._items)})"
