"""Recipes that ship with weaktag: experiment configs without a ``data`` section, for
``weaktag train --config`` (data given as overrides or in a config of your own) and
``weaktag compare --recipe NAME``. ``configs/`` in the repository links to these files.
"""

from __future__ import annotations

from pathlib import Path

RECIPES_DIR = Path(__file__).resolve().parent


def recipe_names() -> list[str]:
    return sorted(p.stem for p in RECIPES_DIR.glob("*.yaml"))


def recipe_path(name: str) -> Path:
    """The packaged recipe ``name`` (e.g. ``recommended``); ValueError naming the known ones."""
    path = RECIPES_DIR / f"{name}.yaml"
    if not path.is_file():
        raise ValueError(f"no packaged recipe {name!r}; known: {', '.join(recipe_names()) or 'none'}")
    return path
