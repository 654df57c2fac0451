"""Nothing is unpickled: a checkpoint carrying a pickled object that would run code on loading is refused,
in one line, on every path that reads one, and the code never runs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from weaktag.cli import main
from weaktag.models import ModelConfig, WeakTagNet
from weaktag.synth import SynthConfig, synthesize_splits

REFUSED = "(it holds Python objects beyond tensors and plain values, which weaktag does not load)"


class _Planted:
    """Unpickling this runs code: it creates ``marker`` (where a crafted file could do anything)."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f"open({self.marker!r}, 'w').close()",)


def _plant(payload: dict, path: Path, marker: Path) -> Path:
    """``payload`` with a planted object, saved to ``path``; checked to be live (unsafe loading runs it)."""
    torch.save({**payload, "planted": _Planted(marker)}, path)
    torch.load(path, map_location="cpu", weights_only=False)
    assert marker.exists()  # the payload works: a loader that unpickled would create the marker
    marker.unlink()
    return path


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> dict:
    """A tiny dataset and config, a real weaktag checkpoint and a real Lightning last.ckpt (one epoch),
    and planted copies of both."""
    tmp = tmp_path_factory.mktemp("unpickling")
    splits = {"train": 4, "validation": 4}
    synthesize_splits(tmp / "data", splits, SynthConfig(seed=2, clip_seconds=2.0))
    config = tmp / "config.yaml"
    config.write_text(yaml.safe_dump({
        "data": {s: str(tmp / "data" / s / "manifest.jsonl") for s in splits},
        "model": {"width": 0.125}, "scheme": {"name": "attention"},
        "train": {"lr": 1e-3, "batch_size": 2, "max_epochs": 1, "seed": 0, "progress": False, "logger": "none",
                  "accelerator": "cpu", "event_output": "segment"},
        "output_dir": str(tmp / "run")}))
    assert main(["train", "--config", str(config)]) == 0
    marker = tmp / "marker"
    model_payload = torch.load(tmp / "run" / "model.pt", weights_only=True)
    last = tmp / "run" / "checkpoints" / "last.ckpt"
    _plant(torch.load(last, weights_only=True), last, marker)
    return {"tmp": tmp, "config": config, "marker": marker, "last": last,
            "model": _plant(model_payload, tmp / "planted.pt", marker), "audio": tmp / "data" / "validation"}


# verb -> (argv, the refused file's kind in the message); {model} is the planted weaktag checkpoint
PATHS = {
    "tag": (["tag", "--checkpoint", "{model}", "{audio}", "--out", "{tmp}/tags", "--quiet"], "a weaktag checkpoint"),
    "evaluate": (["evaluate", "--checkpoint", "{model}", "--labels", "{audio}/manifest.jsonl", "--quiet"],
                 "a weaktag checkpoint"),
    "export": (["export", "--checkpoint", "{model}", "--output", "{tmp}/m.onnx"], "a weaktag checkpoint"),
    "psl --teacher": (["psl", "--config", "{config}", "--teacher", "{model}", "output_dir={tmp}/psl"],
                      "a weaktag checkpoint"),
    "model.init": (["train", "--config", "{config}", "model.init={model}", "output_dir={tmp}/init"],
                   "a weaktag checkpoint or VGGish state dict"),
    "train --resume": (["train", "--config", "{config}", "--resume"], "a training checkpoint to resume from"),
}


@pytest.mark.parametrize("path", list(PATHS))
def test_a_planted_object_is_refused_and_never_runs(setup, capsys, path: str):
    argv, kind = PATHS[path]
    argv = [a.format(**{k: str(v) for k, v in setup.items()}) for a in argv]
    assert main(argv) == 2
    # the label summary's warnings about this 4-clip set may come first; the refusal is one line
    lines = [line for line in capsys.readouterr().err.splitlines()
             if line.strip() and not line.startswith("weaktag: warning:")]
    refused = setup["last"] if path == "train --resume" else setup["model"]
    verb = argv[0]
    assert lines == [f"weaktag {verb}: error: not {kind}: {refused} {REFUSED}"]
    assert not setup["marker"].exists()


def test_the_planted_files_were_real_checkpoints_apart_from_the_object(setup):
    # so that the refusal above is for the planted object, not for a file weaktag could never read
    saved = torch.load(setup["model"], weights_only=False)
    setup["marker"].unlink()
    WeakTagNet(ModelConfig.from_dict(saved["model_config"])).load_state_dict(saved["state_dict"])
    last = torch.load(setup["last"], weights_only=False)
    setup["marker"].unlink()
    assert {"state_dict", "optimizer_states", "loops", "weaktag"} <= set(last)

