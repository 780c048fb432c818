"""Lazy package exports: a package's public names are imported from their submodules on first
use, so that importing the package (and ``dropmuon --help``) stays cheap."""

from __future__ import annotations

import importlib


def lazy_exports(package: str, where: dict[str, list[str]], namespace: dict, public: list[str]):
    """``(__getattr__, __dir__)`` for ``package``: a name listed under a submodule in ``where`` is
    imported from ``package.submodule`` when first asked for and cached in ``namespace`` (the
    package's globals); ``public`` is its ``__all__``."""
    owner = {name: mod for mod, names in where.items() for name in names}

    def __getattr__(name):
        if name in owner:
            value = getattr(importlib.import_module(f"{package}.{owner[name]}"), name)
            namespace[name] = value
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__():
        return sorted(set(namespace) | set(public))

    return __getattr__, __dir__
