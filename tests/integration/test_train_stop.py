"""Issue 19: a stopped run says so (SIGTERM: 143, Ctrl-C: 130) and --resume continues it; an earlier run in
output_dir is refused unless --overwrite; model.pt is written atomically; packaged recipes as --config;
best epoch counted from 1."""

from __future__ import annotations

import errno
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import REPO
from weaktag.cli import main
from weaktag.config import load_config
from weaktag.recipes import recipe_path
from weaktag.synth import SynthConfig, synthesize_splits

SRC = REPO / "src"


@pytest.fixture(scope="module")
def config_file(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("stop")
    synthesize_splits(tmp / "data", {"train": 16, "validation": 8, "test": 8}, SynthConfig(seed=1))
    config = {"data": {s: str(tmp / "data" / s / "manifest.jsonl") for s in ("train", "validation", "test")},
              "model": {"width": 0.125}, "scheme": {"name": "attention"},
              "train": {"batch_size": 8, "max_epochs": 2, "progress": False, "accelerator": "cpu", "logger": "none"},
              "output_dir": str(tmp / "run")}
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _stop(command: list[str], ready: Path, signum: int) -> subprocess.CompletedProcess:
    """Run ``weaktag COMMAND`` in a subprocess, send ``signum`` once ``ready`` exists, and wait for it."""
    env = {**os.environ, "PYTHONPATH": str(SRC), "OMP_NUM_THREADS": "1"}
    # Ctrl-C as in a terminal: a test run started in a shell's background job ignores SIGINT, and a child
    # inherits an ignored signal (a handled one is reset to the default at exec)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        proc = subprocess.Popen([sys.executable, "-m", "weaktag.cli", *command], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=env)
    finally:
        signal.signal(signal.SIGINT, previous)
    deadline = time.time() + 120
    while not ready.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    assert proc.poll() is None, f"finished before the signal: {proc.communicate()}"
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@pytest.mark.parametrize("signum, status", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_stopped_train_says_where_its_checkpoint_is_and_resumes(config_file: Path, tmp_path: Path, signum, status):
    out = tmp_path / "run"
    last = out / "checkpoints" / "last.ckpt"
    stopped = _stop(["train", "--config", str(config_file), "train.max_epochs=500", f"output_dir={out}"], last, signum)
    assert stopped.returncode == status, stopped.stderr
    name = signal.Signals(signum).name
    assert f"weaktag train: stopped by {name}; the last checkpoint is {last}" in stopped.stderr
    assert "--resume" in stopped.stderr and not (out / "model.pt").exists()
    done = max(int(n) for n in re.findall(r"^epoch (\d+)/500", stopped.stdout, re.M))
    assert main(["train", "--config", str(config_file), "--resume", f"train.max_epochs={done + 1}",
                 f"output_dir={out}"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert 1 <= summary["best_epoch"] <= done + 1  # counted from 1, as the epoch lines


def test_a_stopped_compare_says_how_to_continue(config_file: Path, tmp_path: Path):
    out = tmp_path / "cmp"
    ready = out / "runs" / "attention" / "seed0" / "checkpoints" / "last.ckpt"
    stopped = _stop(["compare", "--config", str(config_file), "--schemes", "attention", "--trials", "1",
                     "--out-dir", str(out), "train.max_epochs=500"], ready, signal.SIGTERM)
    assert stopped.returncode == 143, stopped.stderr
    assert "weaktag compare: stopped by SIGTERM" in stopped.stderr
    assert "run the same compare command again" in stopped.stderr


def test_an_earlier_run_is_refused_unless_overwrite(config_file: Path, tmp_path: Path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("mine")  # an unrelated file: training into the folder is fine
    command = ["train", "--config", str(config_file), "train.max_epochs=1", f"output_dir={out}"]
    assert main(command) == 0
    stale = out / "checkpoints" / "best-epoch=0.ckpt"
    assert stale.is_file()
    capsys.readouterr()
    assert main(command) == 2
    err = capsys.readouterr().err
    assert f"weaktag train: error: {out}: holds an earlier run" in err and "--resume" in err and "--overwrite" in err
    stale.rename(out / "checkpoints" / "stale.ckpt")  # what only the earlier run wrote
    assert main(command + ["--overwrite"]) == 0
    assert (out / "model.pt").is_file() and (out / "notes.txt").read_text() == "mine"
    assert not (out / "checkpoints" / "stale.ckpt").exists()
    assert main(command + ["--overwrite", "--resume"]) == 2


def test_a_full_disk_leaves_no_partial_checkpoint_and_names_model_pt(config_file: Path, tmp_path: Path,
                                                                     monkeypatch, capsys):
    import torch

    real_save = torch.save

    def full_disk(obj, f, *args, **kwargs):
        if str(f).endswith("model.pt.tmp"):
            Path(f).write_bytes(b"PK\x03\x04 half a file")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", full_disk)
    out = tmp_path / "run"
    assert main(["train", "--config", str(config_file), "train.max_epochs=1", f"output_dir={out}"]) == 2
    assert f"weaktag train: error: {out / 'model.pt'}: No space left on device" in capsys.readouterr().err
    assert not (out / "model.pt").exists() and not (out / "model.pt.tmp").exists()


def test_a_packaged_recipe_name_is_a_config():
    assert load_config("recommended", ["train.max_epochs=3"]) == load_config(recipe_path("recommended"),
                                                                              ["train.max_epochs=3"])
    with pytest.raises(FileNotFoundError, match=r"nosuch: config file not found, and not a packaged recipe "
                                                r"\(.*recommended.*\)"):
        load_config("nosuch")


def test_train_prints_the_best_epoch_counted_from_one(config_file: Path, tmp_path: Path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--config", str(config_file), f"output_dir={out}"]) == 0
    printed = capsys.readouterr().out
    best = int(re.search(r"^best epoch (\d+):", printed, re.M).group(1))
    assert best in (1, 2) and f"epoch {best}/2," in printed
    assert json.loads((out / "summary.json").read_text())["best_epoch"] == best
