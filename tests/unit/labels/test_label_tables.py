"""A folder of recordings plus a spreadsheet of tags (CSV/TSV), the comma separator, and the class
summary and label warnings said at the start of training."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import REPO
from weaktag.labels import LabelError, detect_label_format, read_labels
from weaktag.labels.summary import class_summary, label_warnings, report_labels



def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "name, text",
    [
        ("csv header", "filename,labels\na.wav,dog\nb.wav,cat\n"),
        ("tsv header", "filename\tlabels\na.wav\tdog\nb.wav\tcat\n"),
        ("headerless csv", "a.wav,dog\nb.wav,cat\n"),
        ("label header, any case", "File,Label\na.wav,dog\nb.wav,cat\n"),
        ("event_labels header in a csv", "path,event_labels\na.wav,dog\nb.wav,cat\n"),
        ("tags header, other columns", "notes,audio,tags\nx,a.wav,dog\ny,b.wav,cat\n"),
        ("crlf and blank lines", "filename,labels\r\na.wav,dog\r\n\r\nb.wav,cat\r\n"),
    ],
)
def test_accepted_spellings_read_the_same_clips(tmp_path: Path, name: str, text: str) -> None:
    manifest = read_labels(write(tmp_path / "tags.txt", text))
    assert [(c.clip_id, c.labels, c.events) for c in manifest] == [("a", {"dog"}, None), ("b", {"cat"}, None)], name
    assert manifest.classes == ["cat", "dog"]
    assert manifest[0].audio_path == tmp_path / "a.wav"  # beside the label file


@pytest.mark.parametrize(
    "text",
    [
        'filename,labels\na.wav,"dog,cat"\nb.wav,cat\n',  # quoted multi-label cell
        "a.wav,dog,cat\nb.wav,cat\n",  # headerless: every cell after the file is a label
        "filename,label\na.wav,dog\nb.wav,cat\na.wav,cat\n",  # several rows for one file merge
        "filename\tlabels\na.wav\tdog, cat\nb.wav\tcat\n",
    ],
)
def test_several_labels_per_file(tmp_path: Path, text: str) -> None:
    manifest = read_labels(write(tmp_path / "tags.csv", text))
    assert [(c.clip_id, c.labels) for c in manifest] == [("a", {"dog", "cat"}), ("b", {"cat"})]
    assert str(manifest[0].source) == f"{tmp_path / 'tags.csv'}:{1 if text.startswith('a.wav') else 2}"


def test_comma_space_separates_labels_in_a_dcase_weak_tsv(tmp_path: Path) -> None:
    path = write(tmp_path / "weak.tsv", "filename\tevent_labels\na.wav\tchirp, hum\nb.wav\thum\n")
    assert detect_label_format(path) == "dcase_weak"
    assert read_labels(path).classes == ["chirp", "hum"]  # not one class 'chirp, hum'


def test_strong_labels_still_read_as_strong(tmp_path: Path) -> None:
    path = write(tmp_path / "s.tsv", "filename\tonset\toffset\tevent_label\na.wav\t0.5\t1.0\tdog\n")
    assert detect_label_format(path) == "dcase_strong"
    assert read_labels(path)[0].has_strong


@pytest.mark.parametrize(
    "text", ["name,what\na.wav,dog\n", "filename,onset,offset,label\na.wav,0,1,dog\n", "a.wav\nb.wav\n"]
)
def test_unrecognised_format_names_the_file_and_what_is_accepted(tmp_path: Path, text: str) -> None:
    path = write(tmp_path / "tags.csv", text)
    with pytest.raises(LabelError) as exc:
        read_labels(path)
    message = str(exc.value)
    assert "\n" not in message and message.startswith(f"{path}:1: unrecognised label format")
    for accepted in ("filename/file/path/audio", "labels/event_labels/label/tags", "file,label[s]",
                     "filename onset offset event_label"):
        assert accepted in message


def _splits(tmp_path: Path, train: str, validation: str) -> dict:
    return {"train": read_labels(write(tmp_path / "train.csv", train)),
            "validation": read_labels(write(tmp_path / "validation.csv", validation))}


def test_class_summary_counts_clips_per_class_and_split(tmp_path: Path) -> None:
    manifests = _splits(tmp_path, 'a.wav,"dog,cat"\nb.wav,dog\nc.wav,cat\n', "d.wav,dog\ne.wav,dog\n")
    lines = class_summary(["cat", "dog"], manifests)
    assert lines[0] == "2 classes; clips: train 3, validation 2"
    assert [line.split() for line in lines[1:]] == [["class", "train", "validation"], ["cat", "2", "0"],
                                                    ["dog", "2", "2"]]


def test_warnings_for_a_single_clip_class_and_a_class_validation_cannot_score(tmp_path: Path) -> None:
    manifests = _splits(tmp_path, "filename,labels\na.wav,dog\nb.wav,dog\nc.wav,dgo\nd.wav,cat\ne.wav,cat\n",
                        "f.wav,dog\ng.wav,dgo\n")
    classes = manifests["train"].classes
    messages = label_warnings(classes, manifests)
    assert messages == [
        f"class 'dgo' has only one training clip ({tmp_path / 'train.csv'}:4): did you mean 'dog'?",
        "no validation clip of class(es) 'cat': their tagging thresholds fall back to 0.5 and their "
        "validation AP is undefined",
    ]
    said: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report_labels(classes, manifests, say=said.append)
    assert [str(w.message) for w in caught] == messages
    assert said == class_summary(classes, manifests)


def test_no_did_you_mean_without_a_near_common_class(tmp_path: Path) -> None:
    manifests = _splits(tmp_path, "a.wav,dog\nb.wav,dog\nc.wav,siren\n", "d.wav,dog\ne.wav,siren\n")
    assert label_warnings(["dog", "siren"], manifests) == [
        f"class 'siren' has only one training clip ({tmp_path / 'train.csv'}:3)"]


def test_own_recordings_walkthrough(tmp_path: Path, capsys) -> None:
    """README "Tag your own files" (docs/tagging.md): a folder of WAVs and a CSV of tags, the recommended recipe
    (one epoch), validation held out of the training list, a second CSV for test, then tag."""
    pytest.importorskip("aisfx")
    from weaktag.cli import main

    folder = tmp_path / "recordings"
    folder.mkdir()
    rng = np.random.default_rng(0)
    t = np.arange(16000) / 16000
    for i in range(12):
        tone = np.sin(2 * np.pi * (440 if i % 2 else 2000) * t) * 0.3 + rng.normal(0, 0.01, t.size)
        sf.write(folder / f"clip{i:02d}.wav", tone.astype(np.float32), 16000)
    write(folder / "tags.csv", "filename,labels\n" + "".join(f"clip{i:02d}.wav,{'low' if i % 2 else 'high'}\n"
                                                            for i in range(8)))
    write(folder / "test.csv", "filename,labels\n" + "".join(f"clip{i:02d}.wav,{'low' if i % 2 else 'high'}\n"
                                                            for i in range(8, 12)))
    run = tmp_path / "runs" / "mine"
    assert main(["train", "--config", str(REPO / "configs" / "recommended.yaml"), f"data.train={folder / 'tags.csv'}",
                 "data.validation_fraction=0.25", f"data.test={folder / 'test.csv'}", f"output_dir={run}",
                 "train.max_epochs=1"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^2 classes; clips: train 6, validation 2, test 4$", out, re.M)
    assert main(["tag", "--checkpoint", str(run / "model.pt"), str(folder / "clip11.wav"), "--quiet"]) == 0
    assert "clip11.wav" in capsys.readouterr().out


@pytest.mark.parametrize("progress", [True, False])
def test_train_prints_the_class_summary_before_training(tmp_path: Path, capsys, progress: bool) -> None:
    # with the progress bar the summary goes through weaktag's logger (the CLI shows its INFO lines on
    # stderr), without it through the epoch lines on stdout; either way before the first epoch
    import yaml

    from weaktag.cli import main
    from weaktag.synth import SynthConfig, synthesize_splits

    splits = {"train": 4, "validation": 2}
    synthesize_splits(tmp_path / "data", splits, SynthConfig(seed=3, clip_seconds=1.0))
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({
        "data": {s: str(tmp_path / "data" / s / "manifest.jsonl") for s in splits},
        "model": {"width": 0.125}, "scheme": {"name": "attention"},
        "train": {"batch_size": 2, "max_epochs": 1, "progress": progress, "logger": "none", "accelerator": "cpu",
                  "event_output": "segment"},
        "output_dir": str(tmp_path / "run")}))
    assert main(["train", "--config", str(config)]) == 0
    captured = capsys.readouterr()
    text = captured.err if progress else captured.out
    assert re.search(r"^\d+ classes; clips: train 4, validation 2$", text, re.MULTILINE), text
    assert re.search(r"^ *class +train +validation$", text, re.MULTILINE)
    if not progress:
        assert text.index("classes; clips") < text.index("epoch 1/1")
