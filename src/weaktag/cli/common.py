"""What every command group shares: the help formatter, the ``-v`` flag after a verb, and showing a
library logger's lines as a command's own output."""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from typing import Callable, Iterator

VERBOSE_HELP = "show library warnings, logs and tracebacks"

#: makes the parser of one verb: ``verb(name, help)``
VerbFactory = Callable[[str, str], argparse.ArgumentParser]


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Adds "(default: X)" where it informs: not when the help already says its default, and not for
    required options, flags (default False) or options whose default is "not given" (None)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default  # by identity: a default of 0 is informative, and 0 == False
        unset = default is None or default is False or default is argparse.SUPPRESS or default == []
        if "default" in text or action.required or not action.option_strings or unset:
            return text
        return f"{text} (default: %(default)s)"


def verbose_after_verb(parser: argparse.ArgumentParser) -> None:
    """``weaktag train ... -v`` works as well as ``weaktag -v train ...``; SUPPRESS keeps the top-level
    value when the verb's parser does not see the flag."""
    parser.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help=VERBOSE_HELP)


def labelled_set_options(parser: argparse.ArgumentParser, formats: str) -> None:
    """``--labels`` and ``--audio-dir``, as every verb that reads a labelled set takes them."""
    parser.add_argument("--labels", required=True, help=f"label file: {formats}")
    parser.add_argument("--audio-dir", default=None, help="folder of the audio files the labels name "
                        "(default: relative to the label file)")


@contextlib.contextmanager
def log_lines_on_stdout(logger_name: str) -> Iterator[None]:
    """The INFO (and DEBUG) lines of the library logger ``logger_name`` printed plainly on stdout for the
    command, as its own output (``weaktag train``'s epoch lines); its warnings stay on stderr. Without
    this the CLI shows weaktag's log on stderr (weaktag.cli's ``_cli_output``)."""
    library = logging.getLogger(logger_name)
    plain = logging.Formatter("%(message)s")
    lines, warnings = logging.StreamHandler(sys.stdout), logging.StreamHandler(sys.stderr)
    for handler in (lines, warnings):
        handler.setFormatter(plain)
    lines.addFilter(lambda record: record.levelno < logging.WARNING)
    warnings.setLevel(logging.WARNING)
    propagate = library.propagate
    library.addHandler(lines)
    library.addHandler(warnings)
    library.propagate = False  # not also on the stderr handler of weaktag's log
    try:
        yield
    finally:
        library.removeHandler(lines)
        library.removeHandler(warnings)
        library.propagate = propagate


@contextlib.contextmanager
def warnings_only(logger_name: str) -> Iterator[None]:
    """Only the warnings of the library logger ``logger_name`` shown for the command (``compare`` says a
    line per trial, not its trials' epoch lines)."""
    library = logging.getLogger(logger_name)
    level = library.level
    library.setLevel(logging.WARNING)
    try:
        yield
    finally:
        library.setLevel(level)
