"""weaktag's version, as installed (the package metadata), else the source tree's."""

from __future__ import annotations


def weaktag_version() -> str:
    try:
        from importlib.metadata import version

        return version("weaktag")
    except Exception:  # running from a source tree that was never installed
        from . import __version__

        return __version__
