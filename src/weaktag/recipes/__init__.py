"""Recipes that ship with weaktag: experiment configs that name no label files or audio, for
``weaktag train --config`` (data given as overrides or in a config of your own) and
``weaktag compare --recipe NAME`` (which takes the data of its ``--config``). The dataset recipes
(``audioset-balanced``, ``sl-dcase17``) carry only how to use their data set's files: the
validation fraction, the class list. ``configs/`` in the repository links to these files.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import UsageError

RECIPES_DIR = Path(__file__).resolve().parent


def recipe_names() -> list[str]:
    return sorted(p.stem for p in RECIPES_DIR.glob("*.yaml"))


def recipe_path(name: str) -> Path:
    """The packaged recipe ``name`` (e.g. ``recommended``); UsageError naming the known ones."""
    path = RECIPES_DIR / f"{name}.yaml"
    if not path.is_file():
        raise UsageError(f"no packaged recipe {name!r}; known: {', '.join(recipe_names()) or 'none'}")
    return path
