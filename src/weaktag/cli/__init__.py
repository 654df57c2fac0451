"""``weaktag <verb>``: every verb parses its arguments and calls one library function.

One module per command group (``training``, ``data``, ``tagging``, ``embedding``, ``experiments``, ``info``); this one builds the parser
from them and turns a user's mistake (a :class:`~weaktag.errors.WeaktagError`, an ``OSError``) into one line and
exit status 2, and anything else (a bug in weaktag) into its traceback, a request to report it and exit status 70.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import traceback
import warnings
from typing import Iterator

from . import data, embedding, experiments, info, tagging, training
from ..errors import WeaktagError
from ..stopping import Stopped, sigterm_raises_stopped
from ..version import weaktag_version
from .common import VERBOSE_HELP, HelpFormatter, verbose_after_verb


#: exit status of a user's mistake (bad file, config, labels, option), as argparse's for a bad command line
USER_ERROR_STATUS = 2
#: exit status of a bug in weaktag (sysexits.h EX_SOFTWARE: an internal software error)
INTERNAL_ERROR_STATUS = 70
#: failures a user can cause and fix: one line, USER_ERROR_STATUS; anything else is a bug in weaktag
USER_ERRORS: tuple[type[Exception], ...] = (WeaktagError, OSError)

EXIT_STATUSES = (f"exit status: 0 done; 1 no input could be tagged (tag); {USER_ERROR_STATUS} a bad command line, "
                 f"file, config or option (one line: weaktag VERB: error: ...); {INTERNAL_ERROR_STATUS} an internal "
                 "error, a bug in weaktag (its traceback; please report it); 128 + N stopped by signal N (130 Ctrl-C, "
                 "143 SIGTERM)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="weaktag", description="Weakly labeled audio event classification.",
                                     epilog=EXIT_STATUSES)
    parser.add_argument("-v", "--verbose", action="store_true", help=VERBOSE_HELP)
    parser.add_argument("--version", action="version", version=f"weaktag {weaktag_version()}")
    sub = parser.add_subparsers(dest="verb", required=True)

    def verb(name: str, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help, formatter_class=HelpFormatter)
        verbose_after_verb(p)
        return p

    for group in (training, data, tagging, embedding, experiments, info):
        group.add_verbs(verb)
    return parser


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
    """One line for a user's mistake; an OSError from the system says its file and reason."""
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        return f"{exc.filename}: {exc.strerror}"
    return " ".join(str(exc).split()) or type(exc).__name__


def _report_internal_error(verb: str, exc: BaseException) -> None:
    """A bug: the traceback (always, -v or not), what it was, and where to report it."""
    traceback.print_exception(exc)
    what = " ".join(f"{type(exc).__name__}: {exc}".split()).removesuffix(":")
    print(f"weaktag {verb}: internal error (a bug in weaktag): {what}\n"
          f"Please report it on weaktag's issue tracker, with the command you ran, the output of "
          f"`weaktag --version` and the traceback above.", file=sys.stderr)


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
        except USER_ERRORS as exc:
            if args.verbose:
                traceback.print_exc()
            print(f"weaktag {args.verb}: error: {_error_line(exc)}", file=sys.stderr)
            return USER_ERROR_STATUS
        except Exception as exc:  # not a message written for a user: weaktag got something wrong
            _report_internal_error(args.verb, exc)
            return INTERNAL_ERROR_STATUS
