"""``weaktag <verb>``: every verb parses its arguments and calls one library function.

One module per command group (``training``, ``data``, ``tagging``, ``experiments``); this one builds the parser
from them and turns expected errors into one line and exit status 2.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import traceback
import warnings
from pathlib import Path
from typing import Iterator

from . import data, experiments, tagging, training
from ..stopping import Stopped, sigterm_raises_stopped
from .common import VERBOSE_HELP, HelpFormatter, verbose_after_verb


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("weaktag")
    except Exception:  # running from a source tree that was never installed
        from .. import __version__

        return __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="weaktag", description="Weakly labeled audio event classification.")
    parser.add_argument("-v", "--verbose", action="store_true", help=VERBOSE_HELP)
    parser.add_argument("--version", action="version", version=f"weaktag {_version()}")
    sub = parser.add_subparsers(dest="verb", required=True)

    def verb(name: str, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help, formatter_class=HelpFormatter)
        verbose_after_verb(p)
        return p

    for group in (training, data, tagging, experiments):
        group.add_verbs(verb)
    return parser


#: failures a user can cause and fix (bad files, configs, labels, options): one line, exit status 2
EXPECTED_ERRORS: tuple[type[BaseException], ...] = (FileNotFoundError, PermissionError, IsADirectoryError,
                                                    NotADirectoryError, ValueError, RuntimeError, OSError)


def _quiet_dependencies() -> None:
    """Warnings from dependencies that a user cannot act on (shown again with -v)."""
    warnings.filterwarnings("ignore", category=UserWarning, module="lightning")
    # sed_eval -> dcase_util imports pkg_resources, which setuptools deprecates loudly
    warnings.filterwarnings("ignore", message=".*pkg_resources is deprecated.*")
    warnings.filterwarnings("ignore", category=DeprecationWarning)


def _one_line_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                      file=None, line: str | None = None) -> None:
    """What is left after _quiet_dependencies (e.g. "skipping clip: file not found"), as one line
    without Python's source location and code echo."""
    print(f"weaktag: warning: {' '.join(str(message).split())}", file=file or sys.stderr)


#: loggers that say "GPU available", "💡 Tip", "`Trainer.fit` stopped" and the like at INFO
_CHATTY_LOGGERS = ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero",
                   "lightning.pytorch.loops", "lightning.pytorch.accelerators", "lightning.pytorch.trainer")


@contextlib.contextmanager
def _cli_output(verbose: bool) -> Iterator[None]:
    """Warnings and log levels for one command, restored afterwards (main() is also called from tests).

    Lightning logs "GPU available ...", "💡 Tip: ..." at INFO through console handlers of its own
    (set up when it is imported, whenever that is), so its chatty loggers get a level instead.
    """
    chatty = [] if verbose else [logging.getLogger(name) for name in _CHATTY_LOGGERS]
    levels = [logger.level for logger in chatty]
    for logger in chatty:
        logger.setLevel(logging.WARNING)
    # weaktag's own INFO lines (the class summary at the start of training) are for the user: plain, on stderr
    library, handler = logging.getLogger("weaktag"), logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    library_level = library.level
    library.addHandler(handler)
    library.setLevel(logging.DEBUG if verbose else logging.INFO)
    try:
        with warnings.catch_warnings():
            if not verbose:
                _quiet_dependencies()
                warnings.showwarning = _one_line_warning
            yield
    finally:
        library.removeHandler(handler)
        library.setLevel(library_level)
        for logger, level in zip(chatty, levels):
            logger.setLevel(level)


def _error_line(exc: BaseException) -> str:
    """One line for an expected error; an OSError from the system says its file and reason."""
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        return f"{exc.filename}: {exc.strerror}"
    return " ".join(str(exc).split()) or type(exc).__name__


_PACKAGE = Path(__file__).resolve().parents[1]  # the weaktag package


def _raised_in_weaktag(exc: BaseException) -> bool:
    """True when weaktag itself raised ``exc`` (a message written for users), False when a dependency
    did (its message may be obscure, or a bug: the traceback helps)."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    # by file, not module name: under `python -m weaktag.cli` this module is __main__
    return tb is None or Path(tb.tb_frame.f_code.co_filename).resolve().is_relative_to(_PACKAGE)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # SIGTERM stops a command as Ctrl-C does (training leaves it to Lightning during the epochs)
    with _cli_output(args.verbose), sigterm_raises_stopped():
        try:
            return args.func(args)
        except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM; a Stopped says what was kept and how to continue
            stopped = exc if isinstance(exc, Stopped) else Stopped.of(exc)
            print(f"weaktag {args.verb}: {stopped.message}", file=sys.stderr)
            return stopped.exit_status
        except EXPECTED_ERRORS as exc:
            if args.verbose:
                traceback.print_exc()
            # an OSError names its file and reason; other errors from inside a dependency may be bugs
            explained = args.verbose or isinstance(exc, OSError) or _raised_in_weaktag(exc)
            hint = "" if explained else " (weaktag -v shows the traceback)"
            print(f"weaktag {args.verb}: error: {_error_line(exc)}{hint}", file=sys.stderr)
            return 2

