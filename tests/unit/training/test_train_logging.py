"""Training reports through ``logging`` (the CLI shows the lines), and sets back the log levels it changes."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import lightning as L
import pytest

from helpers import learnable_data  # tiny learnable feature sets, no audio
from weaktag.cli import _cli_output
from weaktag.cli.common import log_lines_on_stdout, warnings_only
from weaktag.config import load_config
from weaktag.training import train
from weaktag.training.trainer import LIGHTNING_LOGGERS

EPOCH_LINE = re.compile(r"^epoch \d/2, train loss [\d.]+, validation mAP [\d.]+, \d+ s$")


def _config(out: Path, *overrides: str):
    return load_config(None, ["model.width=0.125", "scheme.name=attention", "train.batch_size=4", "train.max_epochs=2",
                              "train.accelerator=cpu", "train.progress=false", "train.logger=none",
                              "train.event_output=segment", f"output_dir={out}", *overrides])


class _Levels(L.Callback):
    """Records the Lightning loggers' levels during the epochs; raises at the first batch when told to."""

    def __init__(self, fail: bool = False) -> None:
        self.fail, self.seen = fail, {}

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        self.seen = {name: logging.getLogger(name).level for name in LIGHTNING_LOGGERS}
        if self.fail:
            raise RuntimeError("a bug in a callback")


@pytest.fixture
def lightning_levels(monkeypatch):
    """Lightning's loggers at INFO before the run, as its import leaves them (set back after the test)."""
    for name in LIGHTNING_LOGGERS:
        monkeypatch.setattr(logging.getLogger(name), "level", logging.INFO)
    return {name: logging.INFO for name in LIGHTNING_LOGGERS}


def test_a_run_without_progress_bar_logs_its_epochs_and_sets_lightnings_levels_back(tmp_path, caplog,
                                                                                     lightning_levels):
    during = _Levels()
    with caplog.at_level(logging.INFO, logger="weaktag.training"):
        train(_config(tmp_path / "run"), data=learnable_data(8, 4), callbacks=[during])
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("weaktag.training")]
    assert [line for line in lines if EPOCH_LINE.match(line)] == lines and len(lines) == 2, lines
    assert during.seen == dict.fromkeys(LIGHTNING_LOGGERS, logging.WARNING)  # Lightning's INFO hidden meanwhile
    assert {name: logging.getLogger(name).level for name in LIGHTNING_LOGGERS} == lightning_levels


def test_lightnings_levels_are_set_back_when_the_run_fails(tmp_path, lightning_levels):
    failing = _Levels(fail=True)
    with pytest.raises(RuntimeError, match="a bug in a callback"):
        train(_config(tmp_path / "run"), data=learnable_data(8, 4), callbacks=[failing])
    assert failing.seen == dict.fromkeys(LIGHTNING_LOGGERS, logging.WARNING)
    assert {name: logging.getLogger(name).level for name in LIGHTNING_LOGGERS} == lightning_levels


def test_on_epoch_receives_the_lines_instead_of_the_log_even_with_a_progress_bar(tmp_path, caplog):
    said: list[str] = []
    with caplog.at_level(logging.INFO, logger="weaktag.training"):
        train(_config(tmp_path / "run", "train.progress=true"), data=learnable_data(8, 4), on_epoch=said.append)
    assert len(said) == 2 and all(EPOCH_LINE.match(line) for line in said), said
    assert not [r for r in caplog.records if r.name.startswith("weaktag.training")]


def test_the_cli_prints_a_loggers_lines_on_stdout_and_its_warnings_on_stderr(capsys):
    library = logging.getLogger("weaktag.training.run")
    top = logging.getLogger("weaktag.training")
    handlers, propagate = list(top.handlers), top.propagate
    with _cli_output(verbose=False), log_lines_on_stdout("weaktag.training"):  # as `weaktag train` does
        library.info("epoch 1/2, train loss 0.5000")
        library.warning("something to know")
    captured = capsys.readouterr()
    assert captured.out == "epoch 1/2, train loss 0.5000\n"
    assert captured.err == "something to know\n"
    assert top.handlers == handlers and top.propagate == propagate


def test_compare_shows_only_the_warnings_of_its_trials_training():
    top = logging.getLogger("weaktag.training")
    level = top.level
    with warnings_only("weaktag.training"):
        assert not logging.getLogger("weaktag.training.run").isEnabledFor(logging.INFO)
        assert logging.getLogger("weaktag.training.run").isEnabledFor(logging.WARNING)
    assert top.level == level
