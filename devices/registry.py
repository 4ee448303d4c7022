"""One small registry: components chosen by name (big_vision's way), not by if-chains.

Standard library only, so any package may keep its named components in one (compression recipes,
an artifact's data sources, the TensorFlow builders of a model).

Example:
  >>> recipes = Registry("recipe")
  >>> @recipes.register("lenet300")
  ... def lenet300(): ...
  >>> recipes["lenet300"] is lenet300
  True
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """Named components of one kind; ``what`` names the kind in error messages."""

    def __init__(self, what: str) -> None:
        self.what = what
        self._items: dict[str, T] = {}

    def add(self, name: str, item: T) -> T:
        """Registers ``item`` under ``name``; returns it.

        Raises:
          ValueError: ``name`` is already registered.
        """
        if name in self._items:
            raise ValueError(f"a {self.what} {name!r} is already registered.")
        self._items[name] = item
        return item

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator form of :meth:`add`."""
        return lambda item: self.add(name, item)

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._items)

    def get(self, name: str) -> T | None:
        """The item registered under ``name``, or None."""
        return self._items.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __getitem__(self, name: str) -> T:
        """The item registered under ``name``.

        Raises:
          ValueError: unknown name; the message lists the registered ones (and a close one).
        """
        if name not in self._items:
            close = difflib.get_close_matches(name, self._items, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ValueError(
                f"no {self.what} {name!r}; registered: {', '.join(self.names())}.{hint}"
            )
        return self._items[name]
