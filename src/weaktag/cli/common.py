"""What every command group shares: the help formatter and the ``-v`` flag after a verb."""

from __future__ import annotations

import argparse
from typing import Callable

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
