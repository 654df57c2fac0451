"""Stopping a command by a signal: Ctrl-C (SIGINT) or SIGTERM (a scheduler, ``docker stop``).

One exception for every command: :class:`Stopped`, a ``KeyboardInterrupt`` (so code that cleans up
after Ctrl-C cleans up after SIGTERM too) that knows its signal and, where the command can say it,
how to continue. The CLI prints its message and exits 128 + the signal's number, never 0.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Iterator


class Stopped(KeyboardInterrupt):
    """A command stopped by ``signum``; ``message`` says what was kept and how to continue."""

    def __init__(self, signum: int, message: str | None = None) -> None:
        self.signum = int(signum)
        self.message = message or f"stopped by {self.signal_name}"
        super().__init__(self.message)

    @property
    def signal_name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_status(self) -> int:
        """The shell's convention: 128 + the signal's number (130 for Ctrl-C, 143 for SIGTERM)."""
        return 128 + self.signum

    @classmethod
    def of(cls, exc: BaseException, message: str | None = None) -> "Stopped":
        """``exc`` (a Ctrl-C's KeyboardInterrupt or a :class:`Stopped`) with a new message."""
        return cls(getattr(exc, "signum", signal.SIGINT), message)


def _raise_stopped(signum: int, frame: object) -> None:
    raise Stopped(signum)


@contextlib.contextmanager
def sigterm_raises_stopped(only_if_default: bool = False) -> Iterator[None]:
    """SIGTERM raises :class:`Stopped` inside the block instead of killing the process unwritten.

    Only in the main thread (signals reach no other); with ``only_if_default``, only where nobody
    installed a handler of their own (a library call inside an application that handles SIGTERM)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    if only_if_default and signal.getsignal(signal.SIGTERM) != signal.SIG_DFL:
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_stopped)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
