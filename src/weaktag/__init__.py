"""weaktag: weakly labeled audio event classification with (self-)supervised attention.

``import weaktag`` gives the main entry points (:mod:`weaktag.api`): :class:`Tagger`, :func:`train`,
:func:`evaluate`, :func:`compare`, :func:`embed` and :func:`read_labels`. They load on first use, so that
``import weaktag.inference`` (deployment) still loads only what tagging needs.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

#: the names :mod:`weaktag.api` exports, loaded on first access (PEP 562)
API = ("Tagger", "compare", "embed", "evaluate", "read_labels", "train")
__all__ = [*API, "__version__"]


def __getattr__(name: str) -> Any:
    if name in API:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'weaktag' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *API})
