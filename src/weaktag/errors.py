"""The errors weaktag raises for a user's input: one base, so that the CLI reports them in one line.

Anything else that escapes a command (a ``TypeError``, an ``IndexError``, an assertion) is a bug in
weaktag and is shown with its traceback. Each class also derives from the built-in exception a
caller would catch without knowing weaktag (``ValueError`` for a bad value, ``RuntimeError`` for
a failed step), so ``except ValueError`` keeps working.
"""

from __future__ import annotations


class WeaktagError(Exception):
    """A problem with the user's input or environment that weaktag can name in one line."""


class ConfigError(WeaktagError, ValueError):
    """A config or setting that cannot be used; the message names the file (and line, or key) and what is wrong.

    ``key`` and ``problem``, when set, are the field and what is wrong with its value, for a caller
    that names the field its own way (the CLI: by its option).
    """

    def __init__(self, message: str, key: str | None = None, problem: str | None = None) -> None:
        super().__init__(message)
        self.key = key
        self.problem = problem


class CheckpointError(WeaktagError, ValueError):
    """A checkpoint or weights file that cannot be used (not weaktag's, wrong shapes, pickled objects)."""


class UsageError(WeaktagError, ValueError):
    """Arguments that do not fit together or a value out of range, outside a config file."""


class DataError(WeaktagError, ValueError):
    """A data set that cannot be used as a whole (each file of it may be fine): no clip or audio file to use,
    too few clips or files for the split asked, no strongly labelled clip to score events on."""


class EnvironmentProblem(WeaktagError, RuntimeError):
    """The machine cannot do what was asked: a device or runtime it lacks, a worker process that died."""
