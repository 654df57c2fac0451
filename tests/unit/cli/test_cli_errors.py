"""Issue 7 (items 2, 3, 6, 7, 9): one-line errors naming the file, no unsafe advice, labels that say
where they were written, quiet dependencies, help text, and an audio folder per split."""

from __future__ import annotations

import json
import logging
import pickle
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

import weaktag.synth
from weaktag import cli
from weaktag.audio import AUDIO_SUFFIXES
from weaktag.checkpoint import load_checkpoint, save_checkpoint
from weaktag.cli import _cli_output, _error_line, build_parser, main
from weaktag.data import build_feature_set
from weaktag.labels import LabelSource, UnknownLabelError, read_dcase_weak_tsv, read_labels
from weaktag.models import BackboneConfig, ModelConfig, WeakTagNet
from weaktag.models.transfer import initialise_from

SR = 16_000


def _one_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    return lines[0]


def _wav(path: Path, seconds: float = 1.0, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), (np.random.default_rng(seed).standard_normal(int(seconds * SR)) * 0.1).astype(np.float32), SR)
    return path


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    model = WeakTagNet(ModelConfig(2, backbone=BackboneConfig(width=0.125))).eval()
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "model.pt", model, ["cat", "cow"], "attention", {})


# ---------------------------------------------------------------- 2: config and option errors


@pytest.mark.parametrize("verb", ["train", "compare"])
def test_yaml_syntax_error_names_file_line_and_column(tmp_path: Path, capsys, verb: str):
    config = tmp_path / "bad.yaml"
    config.write_text("data:\n  train: a.tsv\n validation: b.tsv\n")  # line 3 is indented one space too few
    assert main([verb, "--config", str(config)]) == 2
    line = _one_line(capsys.readouterr().err)
    assert line.startswith(f"weaktag {verb}: error: {config}:3:2: invalid YAML: expected <block end>"), line


def test_verbose_after_the_verb_shows_the_traceback(tmp_path: Path, capsys):
    config = tmp_path / "bad.yaml"
    config.write_text("data: [\n")
    for argv in (["-v", "train", "--config", str(config)], ["train", "--config", str(config), "-v"]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "Traceback (most recent call last)" in err and "ConfigError" in err, argv
        assert err.rstrip().splitlines()[-1].startswith(f"weaktag train: error: {config}:2:1: invalid YAML")
    assert build_parser().parse_args(["train", "--config", "c.yaml"]).verbose is False


@pytest.mark.parametrize("argv, expected", [
    (["synth", "{tmp}/out", "--splits", "train=abc"], "weaktag synth: error: --splits: 'train=abc' is not name=count"),
    (["synth", "{tmp}/out", "--splits", "train"], "weaktag synth: error: --splits: 'train' is not name=count"),
    (["compare", "--config", "{tmp}/c.yaml", "--seeds", "1,x"],
     "weaktag compare: error: --seeds: '1,x' is not comma-separated whole numbers"),
    (["export", "--checkpoint", "{ckpt}", "--opset", "999"],
     "weaktag export: error: --opset 999: this PyTorch exports ONNX opsets 7 to "),
    (["synth", "{tmp}/c.yaml/out", "--num-clips", "1"], "weaktag synth: error: {tmp}/c.yaml/out/audio: Not a directory"),
])
def test_bad_options_and_paths_are_one_line(tmp_path: Path, ckpt: Path, capsys, argv: list[str], expected: str):
    (tmp_path / "c.yaml").write_text("data:\n  train: t.tsv\n  validation: v.tsv\n  test: t.tsv\n")
    argv = [a.format(tmp=tmp_path, ckpt=ckpt) for a in argv]
    assert main(argv) == 2
    line = _one_line(capsys.readouterr().err)
    assert line.startswith(expected.format(tmp=tmp_path)), line
    assert "Traceback" not in line and "weaktag -v" not in line  # weaktag's own message: no hint


def _divide_by_zero(*args, **kwargs):
    return 1 / 0


@pytest.mark.parametrize("patch, argv, raised", [
    # a bug of weaktag's own, in the library function a command calls
    ((weaktag.synth, "synthesize", _divide_by_zero), ["synth", "{tmp}/out", "--num-clips", "1"],
     "ZeroDivisionError: division by zero"),
    # a bare ValueError from a dependency that weaktag let through: not a message written for a user
    ((cli.experiments, "_cmd_schemes", lambda args: json.loads("{")), ["schemes"],
     "JSONDecodeError: Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"),
])
@pytest.mark.parametrize("verbose", [False, True])
def test_a_bug_in_weaktag_shows_its_traceback_and_asks_for_a_report(tmp_path: Path, monkeypatch, capsys, patch,
                                                                   argv: list[str], raised: str, verbose: bool):
    monkeypatch.setattr(*patch)
    argv = [a.format(tmp=tmp_path) for a in argv]
    assert main(["-v", *argv] if verbose else argv) == cli.INTERNAL_ERROR_STATUS == 70
    err = capsys.readouterr().err
    assert err.count("Traceback (most recent call last)") == 1, err  # -v or not, once
    assert re.search(rf"^(\w+\.)*{re.escape(raised)}$", err, re.M), err  # the traceback ends with the exception
    lines = err.rstrip().splitlines()
    assert lines[-2] == f"weaktag {argv[0]}: internal error (a bug in weaktag): {raised}"
    assert "issue tracker" in lines[-1] and "`weaktag --version`" in lines[-1] and "the command you ran" in lines[-1]
    assert "error: " + raised not in err  # never dressed up as a user's mistake


@pytest.mark.parametrize("argv, expected", [
    (["evaluate", "--checkpoint", "{ckpt}", "--labels", "{tmp}/missing.tsv"],  # LabelError
     "weaktag evaluate: error: {tmp}/missing.tsv: file not found"),
    (["train", "--config", "{tmp}/c.yaml", "train.max_epochs=-3"],  # ConfigError
     "weaktag train: error: {tmp}/c.yaml: train.max_epochs: -3 is below its minimum 1"),
    (["evaluate", "--checkpoint", "{tmp}/c.yaml", "--labels", "{tmp}/labels.tsv"],  # CheckpointError
     "weaktag evaluate: error: not a weaktag checkpoint: {tmp}/c.yaml (not a PyTorch file)"),
    (["synth", "{tmp}/out", "--num-clips", "-1"], "weaktag synth: error: num_clips must be >= 0, got -1"),  # UsageError
    (["pack", "--labels", "{tmp}/labels.tsv", "--out", "{tmp}"],  # UsageError: not an empty folder
     "weaktag pack: error: {tmp}: folder exists and is not empty (pack with --overwrite to replace a pack)"),
    (["synth", "{tmp}/out", "--num-clips", "1", "--sources", "{tmp}/empty"],  # DataError
     f"weaktag synth: error: no audio files ({', '.join(AUDIO_SUFFIXES)}) found under {{tmp}}/empty"),
    (["tag", "--checkpoint", "{tmp}/none.pt", "{tmp}/a.wav"],  # an OSError
     "weaktag tag: error: {tmp}/none.pt: weaktag checkpoint not found"),
])
def test_a_users_mistake_is_exactly_one_line(tmp_path: Path, ckpt: Path, capsys, argv: list[str], expected: str):
    (tmp_path / "c.yaml").write_text("data:\n  train: t.tsv\n  validation: v.tsv\n")
    (tmp_path / "labels.tsv").write_text("filename\tevent_labels\na.wav\tcat\n")
    (tmp_path / "empty").mkdir()
    argv = [a.format(tmp=tmp_path, ckpt=ckpt) for a in argv]
    assert main(argv) == cli.USER_ERROR_STATUS == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "internal error" not in err
    assert _one_line(err) == expected.format(tmp=tmp_path)


def test_every_weaktag_error_is_also_the_builtin_callers_catch():
    import weaktag.inference.export  # noqa: F401 - defines ExportVerificationError
    from weaktag.errors import WeaktagError

    def subclasses(cls: type) -> list[type]:
        return [c for sub in cls.__subclasses__() for c in (sub, *subclasses(sub))]

    found = {c.__name__ for c in subclasses(WeaktagError)}
    assert {"ConfigError", "CheckpointError", "UsageError", "DataError", "AudioError", "LabelError",
            "UnknownLabelError", "ExportVerificationError"} <= found
    for cls in subclasses(WeaktagError):
        assert issubclass(cls, (ValueError, RuntimeError)), cls  # `except ValueError` keeps catching it


def test_help_gives_the_exit_statuses():
    text = " ".join(build_parser().format_help().split())
    assert "2 a bad command line, file, config or option" in text
    assert "70 an internal error, a bug in weaktag" in text and "128 + N stopped by signal N" in text


def test_os_errors_read_file_then_reason():
    assert _error_line(FileNotFoundError(2, "No such file or directory", "/x/r.md")) == "/x/r.md: No such file or directory"
    assert _error_line(FileNotFoundError("nope.yaml: config file not found")) == "nope.yaml: config file not found"


# ---------------------------------------------------------------- 3: not a checkpoint, never unsafe advice


class _Opaque:  # not an allowed global for weights_only loading
    pass


def _bogus_files(folder: Path, ckpt: Path) -> dict[str, tuple[Path, str]]:
    """name -> (file, the reason the message must give)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "notes.txt").write_text("these are my notes\n")
    _wav(folder / "clip.wav")
    (folder / "empty.pt").write_bytes(b"")
    torch.save({"model": _Opaque()}, folder / "objects.pt")
    (folder / "plain.pkl").write_bytes(pickle.dumps({"x": 1}, protocol=4))
    data = ckpt.read_bytes()
    (folder / "truncated.pt").write_bytes(data[: len(data) // 2])
    with zipfile.ZipFile(folder / "archive.zip", "w") as z:
        z.writestr("a.txt", "x")
    return {
        "text": (folder / "notes.txt", "not a PyTorch file"),
        "wav": (folder / "clip.wav", "not a PyTorch file"),
        "empty": (folder / "empty.pt", "empty file"),
        "objects": (folder / "objects.pt", "it holds Python objects beyond tensors and plain values, "
                                           "which weaktag does not load"),
        "pickle": (folder / "plain.pkl", "a pickle, not a PyTorch file of tensors"),
        "truncated": (folder / "truncated.pt", "damaged, truncated or not a PyTorch file"),
        "zip": (folder / "archive.zip", "damaged, truncated or not a PyTorch file"),
    }


def test_load_checkpoint_names_the_file_and_the_real_reason(tmp_path: Path, ckpt: Path):
    for name, (path, reason) in _bogus_files(tmp_path, ckpt).items():
        with pytest.raises(ValueError) as info:
            load_checkpoint(path)
        message = str(info.value)
        assert message == f"not a weaktag checkpoint: {path} ({reason})", name
        assert "weights_only" not in message and "arbitrary code" not in message and "\n" not in message


def test_model_init_from_a_bogus_file_never_suggests_unsafe_loading(tmp_path: Path, ckpt: Path):
    model = WeakTagNet(ModelConfig(2, backbone=BackboneConfig(width=0.125)))
    for name, (path, reason) in _bogus_files(tmp_path, ckpt).items():
        with pytest.raises(ValueError) as info:
            initialise_from(model, path)
        assert str(info.value).startswith(f"not a weaktag checkpoint or VGGish state dict: {path} ({reason}"), name
        assert "weights_only" not in str(info.value)
    assert len(initialise_from(model, ckpt)) > 0  # a real checkpoint still transfers


def test_legacy_non_zip_torch_files_still_load(tmp_path: Path):
    state = {"features.0.weight": torch.zeros(8, 1, 3, 3), "features.0.bias": torch.zeros(8)}
    torch.save(state, tmp_path / "vggish.pth", _use_new_zipfile_serialization=False)
    model = WeakTagNet(ModelConfig(2, backbone=BackboneConfig(width=0.125)))
    assert initialise_from(model, tmp_path / "vggish.pth") == ["backbone.features.0.weight", "backbone.features.0.bias"]


# ---------------------------------------------------------------- 6: unknown labels say where they are


def test_with_classes_names_the_label_file_and_line(tmp_path: Path):
    weak = tmp_path / "labels" / "validation.tsv"
    weak.parent.mkdir()
    weak.write_text("filename\tevent_labels\na.wav\tcat\n\nb.wav\tcow,dog\n")
    manifest = read_dcase_weak_tsv(weak)  # no class list yet: every label is accepted
    assert manifest[1].source == LabelSource(weak, 4) and str(manifest[1].source) == f"{weak}:4"
    with pytest.raises(UnknownLabelError) as info:
        manifest.with_classes(["cat", "cow"], classes_from="train")
    assert str(info.value) == f"{weak}:4: clip 'b' has label 'dog', which is not in the class list (from train: cat, cow)"
    assert (info.value.path, info.value.line, info.value.label) == (weak, 4, "dog")


def test_build_feature_set_refuses_an_unknown_label_before_reading_audio(tmp_path: Path):
    strong = tmp_path / "strong.tsv"
    strong.write_text("filename\tonset\toffset\tevent_label\na.wav\t0\t1\tcat\nb.wav\t0\t1\tcow\nb.wav\t2\t3\tdog\n")
    manifest = read_labels(strong)  # a.wav and b.wav do not exist: reading audio would skip them instead
    with pytest.raises(UnknownLabelError, match=re.escape(f"{strong}:3: clip 'b' has label 'dog', which is not")):
        build_feature_set(manifest, ["cat", "cow"])


def test_jsonl_and_folder_clips_carry_their_source(tmp_path: Path):
    jsonl = tmp_path / "m.jsonl"
    jsonl.write_text('{"classes": ["cat"]}\n{"clip_id": "a", "audio_path": "a.wav", "labels": ["cat"]}\n\n'
                     '{"clip_id": "b", "audio_path": "b.wav", "labels": ["dog"]}\n')
    with pytest.raises(UnknownLabelError, match=re.escape(f"{jsonl}:4: clip 'b' has label 'dog'")):
        read_labels(jsonl, classes=["cat"], classes_from="the checkpoint x.pt")
    assert [str(c.source) for c in read_labels(jsonl)] == [f"{jsonl}:2", f"{jsonl}:4"]
    _wav(tmp_path / "folder" / "dog" / "x.wav")
    assert read_labels(tmp_path / "folder")[0].source == LabelSource(tmp_path / "folder" / "dog")


def test_evaluate_says_the_class_list_is_the_checkpoints(tmp_path: Path, ckpt: Path, capsys):
    labels = tmp_path / "test.tsv"
    labels.write_text("filename\tevent_labels\na.wav\tcat\nb.wav\tdgo\n")
    assert main(["evaluate", "--checkpoint", str(ckpt), "--labels", str(labels), "--quiet"]) == 2
    assert _one_line(capsys.readouterr().err) == (
        f"weaktag evaluate: error: {labels}:3: clip 'b' has label 'dgo', which is not in the class list "
        f"(from the checkpoint {ckpt}: cat, cow)")


def test_evaluate_with_every_file_missing_points_at_the_audio_folder(tmp_path: Path, ckpt: Path, capsys):
    labels = tmp_path / "test.tsv"
    labels.write_text("filename\tevent_labels\na.wav\tcat\nb.wav\tcow\n")
    assert main(["evaluate", "--checkpoint", str(ckpt), "--labels", str(labels), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    # each skipped clip is one warning line (no Python source echo), then the error
    assert err[:2] == [f"weaktag: warning: skipping a: {tmp_path / 'a.wav'}: file not found",
                       f"weaktag: warning: skipping b: {tmp_path / 'b.wav'}: file not found"]
    assert err[2] == (f"weaktag evaluate: error: {labels}: no usable clip to evaluate: all 2 skipped, e.g. a: "
                      f"{tmp_path / 'a.wav'}: file not found; is --audio-dir right? (default: the label file's folder)")
    assert len(err) == 3


# ---------------------------------------------------------------- 7: noise and help


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_lightning_info_lines_only_with_verbose(monkeypatch):
    import lightning  # noqa: F401 - its import sets up its loggers and console handlers

    top = logging.getLogger("lightning.pytorch")
    records = _Records()
    monkeypatch.setattr(top, "handlers", [records])
    monkeypatch.setattr(top, "propagate", False)
    monkeypatch.setattr(top, "level", logging.INFO)  # as Lightning's import leaves it
    for verbose in (False, True):
        with _cli_output(verbose):
            logging.getLogger("lightning.pytorch.utilities.rank_zero").info("GPU available: False, used: False")
            logging.getLogger("lightning.pytorch.loops.fit_loop").info("`Trainer.fit` stopped")
            logging.getLogger("lightning.pytorch.utilities.rank_zero").warning("a real warning")
    assert records.messages == ["a real warning",  # without -v
                                "GPU available: False, used: False", "`Trainer.fit` stopped", "a real warning"]
    assert logging.getLogger("lightning.pytorch.utilities.rank_zero").level == logging.NOTSET  # restored


def _sub_parsers() -> dict[str, object]:
    verbs = next(a for a in build_parser()._actions if a.dest == "verb").choices
    out = dict(verbs)
    for name, parser in next(a for a in verbs["plot"]._actions if a.dest == "figure").choices.items():
        out[f"plot {name}"] = parser
    return out


def test_help_gives_each_default_once_and_never_none():
    for name, parser in _sub_parsers().items():
        for action in parser._actions:
            if not action.option_strings or action.dest == "help":
                continue
            text = " ".join(parser._get_formatter()._expand_help(action).split())
            assert text, f"{name} {action.option_strings[0]} has no help"
            assert text.count("(default") <= 1, f"{name} {action.option_strings[0]}: {text}"
            assert "(default: None)" not in text and "(default: False)" not in text, f"{name}: {text}"
    helps = {name: " ".join(p.format_help().split()) for name, p in _sub_parsers().items()}
    assert "--checkpoint CHECKPOINT a weaktag checkpoint (model.pt written by train) " in helps["evaluate"]
    assert "--epochs EPOCHS training epochs per model (default: 12)" in helps["demo"]
    assert "--seed SEED seed of the data and of both trainings (default: 0)" in helps["demo"]  # 0 is a default too
    assert "--seconds SECONDS length of each soundscape (default: 10.0)" in helps["synth"]
    assert "--num-clips NUM_CLIPS soundscapes to write (without --splits) (default: 100)" in helps["synth"]


# ---------------------------------------------------------------- 9: audio folders


def test_a_class_folder_split_ignores_the_shared_audio_dir(tmp_path: Path):
    from weaktag.config import load_config
    from weaktag.training import read_manifests

    _wav(tmp_path / "train" / "cat" / "a.wav")
    _wav(tmp_path / "train" / "cow" / "b.wav")
    (tmp_path / "meta").mkdir()
    (tmp_path / "meta" / "validation.tsv").write_text("filename\tevent_labels\nc.wav\tcow\n")
    config = tmp_path / "c.yaml"
    config.write_text("data:\n  train: train\n  validation: meta/validation.tsv\n  audio_dir: audio\n")
    classes, manifests = read_manifests(load_config(config))
    assert classes == ["cat", "cow"]
    assert manifests["train"][0].audio_path == tmp_path / "train" / "cat" / "a.wav"  # the folder holds its audio
    assert manifests["validation"][0].audio_path == (tmp_path / "audio" / "c.wav").resolve()


def test_sl_dcase17_audio_defaults_to_the_label_files_folder(tmp_path: Path):
    strong = tmp_path / "meta" / "train_strong_labels.csv"
    strong.parent.mkdir()
    strong.write_text('DCASE17-filename\tlabel_id\ttime\nY1_0.000_10.000.wav\t/m/0k4j\t"[[1.0, 2.5]]"\n')
    manifest = read_labels(strong)
    assert manifest[0].audio_path == strong.parent / "Y1_0.000_10.000.wav"
    assert read_labels(strong, audio_dir=tmp_path / "a")[0].audio_path == tmp_path / "a" / "Y1_0.000_10.000.wav"
