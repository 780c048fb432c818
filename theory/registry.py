"""The theorem registry: every theorem object by its stable name, with room for users to add
their own (for instance the paper's exact statement next to ours)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from .builtin_theorems import BUILTIN
from .theorem import Theorem

__all__ = ["TheoremRegistry", "theorems", "get_theorem", "register_theorem"]


class TheoremRegistry(Mapping):
    """A read-only mapping ``name → Theorem`` with :meth:`register` for additions.

    >>> list(theorems)
    ['smooth-deterministic', 'smooth-constant-radius', 'l0l1-deterministic', 'smooth-stochastic', 'inexact-constant-radius']
    >>> theorems["smooth-deterministic"].label
    'T1'
    """

    def __init__(self, items=()):
        self._items: dict[str, Theorem] = {}
        for t in items:
            self.register(t)

    def __getitem__(self, name: str) -> Theorem:
        try:
            return self._items[name]
        except (KeyError, TypeError):
            raise KeyError(
                f"unknown theorem {name!r}; known theorems: {', '.join(self._items)}"
            ) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def register(self, theorem: Theorem, *, replace: bool = False) -> Theorem:
        """Add a theorem under ``theorem.name``; refuse to overwrite unless ``replace=True``."""
        if not isinstance(theorem, Theorem):
            raise ValueError(f"only Theorem objects can be registered; got {theorem!r}")
        if not theorem.name:
            raise ValueError("a registered theorem needs a non-empty name")
        if theorem.name in self._items and not replace:
            raise ValueError(f"a theorem named {theorem.name!r} is already registered")
        self._items[theorem.name] = theorem
        return theorem

    def unregister(self, name: str) -> Theorem:
        """Remove a theorem a user registered (the built-in ones stay); returns it."""
        from .builtin_theorems import BUILTIN

        t = self[name]
        if any(t is b for b in BUILTIN):
            raise ValueError(f"the built-in theorem {name!r} cannot be unregistered")
        del self._items[name]
        return t

    def get(self, name, default=None):
        return self._items.get(name, default)


theorems = TheoremRegistry(BUILTIN)


def get_theorem(name: str) -> Theorem:
    """The registered theorem called ``name``; ``ValueError`` listing the known names otherwise.

    >>> get_theorem("l0l1-deterministic").label
    'T2'
    """
    t = theorems.get(name)
    if t is None:
        raise ValueError(f"unknown theorem {name!r}; known theorems: {', '.join(theorems)}")
    return t


def register_theorem(theorem: Theorem, *, replace: bool = False) -> Theorem:
    """Register a user's theorem object in :data:`theorems`."""
    return theorems.register(theorem, replace=replace)
