"""Label readers: the real published files (counts checked by hand) and small hand-written cases."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import SHARED_DATA
from weaktag.labels import (
    DCASE17_CLASS_LIST,
    DCASE17_CLASSES,
    AudioSetClass,
    Clip,
    Event,
    LabelError,
    Manifest,
    detect_label_format,
    hold_out,
    read_audioset_csv,
    read_class_labels_indices,
    read_dcase17_class_list,
    read_dcase_strong_tsv,
    read_dcase_weak_tsv,
    read_folder,
    read_labels,
    read_manifest_jsonl,
    read_sl_dcase17_segments,
    read_sl_dcase17_strong,
    recording_of,
    split_weak_labels,
    write_dcase_strong_tsv,
    write_dcase_weak_tsv,
    youtube_id,
)

META = SHARED_DATA / "metadata"

DESED_CLASSES = [
    "Alarm_bell_ringing",
    "Blender",
    "Cat",
    "Dishes",
    "Dog",
    "Electric_shaver_toothbrush",
    "Frying",
    "Running_water",
    "Speech",
    "Vacuum_cleaner",
]


def real(relative: str) -> Path:
    path = META / relative
    if not path.exists():
        pytest.skip(f"real label file {path} absent (the shared data folder is not on this machine)")
    return path


def by_id(manifest: Manifest) -> dict[str, Clip]:
    return {clip.clip_id: clip for clip in manifest}


def n_events(manifest: Manifest) -> int:
    return sum(len(clip.events or ()) for clip in manifest)


# ---------------------------------------------------------------- real files: DESED


def test_desed_validation_strong() -> None:
    m = read_dcase_strong_tsv(real("desed/validation.tsv"))
    assert len(m) == 1168
    assert m.classes == DESED_CLASSES
    assert n_events(m) == 4239 - 15  # 4,239 data rows, 15 of them "no event" rows
    no_event_clips = [c for c in m if c.events == ()]
    assert len(no_event_clips) == 15 and all(c.labels == frozenset() for c in no_event_clips)
    assert "YU0Cg_t_3TdI_30.000_40.000" in {c.clip_id for c in no_event_clips}
    clip = by_id(m)["Y00pbt6aJV8Y_350.000_360.000"]
    assert clip.events == (Event("Vacuum_cleaner", 0.0, 9.971),)
    assert clip.audio_path == Path("Y00pbt6aJV8Y_350.000_360.000.wav")
    assert Counter(e.label for c in m for e in c.events)["Speech"] == 1752
    # DESED events may end after the segment bounds in the name: kept as written
    assert Event("Dog", 9.865, 10.115) in by_id(m)["Y4p-h_aOrhIw_30.000_40.000"].events


def test_desed_public_strong() -> None:
    m = read_dcase_strong_tsv(real("desed/public.tsv"), classes=DESED_CLASSES, audio_dir="/audio/public")
    assert len(m) == 692 and n_events(m) == 2765
    clip = by_id(m)["1Ro0FgMWTUE_120_130"]
    assert clip.audio_path == Path("/audio/public/1Ro0FgMWTUE_120_130.wav")
    assert clip.labels == {"Speech", "Frying", "Dishes"}
    assert [(e.label, e.onset, e.offset) for e in clip.events] == [
        ("Speech", 0.0, 2.081),
        ("Speech", 2.618, 4.679),
        ("Frying", 3.847, 10.0),
        ("Speech", 6.771, 7.715),
        ("Dishes", 7.861, 8.247),
        ("Dishes", 8.517, 8.767),
        ("Speech", 9.33, 10.0),
    ]


def test_desed_weak() -> None:
    m = read_dcase_weak_tsv(real("desed/weak.tsv"))
    assert len(m) == 1578 and m.classes == DESED_CLASSES
    assert all(c.events is None for c in m) and not m.has_strong
    # 594 rows hold a comma, but 2 of them only repeat one label ("Running_water,Running_water")
    assert sum(len(c.labels) > 1 for c in m) == 592
    assert by_id(m)["Y79rmTWPTE4k_20.000_30.000"].labels == {"Alarm_bell_ringing"}
    assert Counter(label for c in m for label in c.labels)["Speech"] == 550
    assert m[0].clip_id == "YKK227gPpRn4_30.000_40.000"
    assert m[0].labels == {"Alarm_bell_ringing", "Speech"}


# ---------------------------------------------------------------- real files: DCASE 2017 Task 4


def test_dcase17_class_list_matches_constant() -> None:
    classes = read_dcase17_class_list(real("dcase2017_task4/sound_event_list_17_classes.txt"))
    assert classes == list(DCASE17_CLASS_LIST)
    assert len(DCASE17_CLASSES) == 17 and len(set(DCASE17_CLASSES)) == 17
    assert classes[0] == AudioSetClass(0, "/m/0284vy3", "Train horn")
    assert classes[16] == AudioSetClass(16, "/m/07jdr", "Train")


def test_dcase17_strong_testing_headerless_with_zero_length_events() -> None:
    path = real("dcase2017_task4/groundtruth_strong_label_testing_set.csv")
    m = read_dcase_strong_tsv(path, classes=DCASE17_CLASSES)
    assert len(m) == 488 and m.classes == list(DCASE17_CLASSES)
    assert n_events(m) == 688 - 36  # 36 rows are "0 0 <label>"
    label_only = [c for c in m if c.events == ()]
    assert len(label_only) == 11 and all(c.labels for c in label_only)
    # a zero-length event keeps its label in the weak set, without an event
    clip = by_id(m)["-Qfk_Q2ctBs_30.000_40.000"]
    assert "Train horn" in clip.labels and "Train horn" not in {e.label for e in clip.events}
    assert by_id(m)["-5QrBL6MzLg_60.000_70.000"].events == (
        Event("Train", 0.0, 10.0),
        Event("Train horn", 0.917, 2.029),
    )
    assert n_events(read_dcase_strong_tsv(path, keep_zero_length=True)) == 688
    assert sorted(read_dcase_strong_tsv(path).classes) == sorted(DCASE17_CLASSES)


def test_dcase17_strong_evaluation_crlf_and_duplicate_row() -> None:
    path = real("dcase2017_task4/groundtruth_strong_label_evaluation_set.csv")
    m = read_dcase_strong_tsv(path)
    assert len(m) == 1103 and len(m.classes) == 17
    # 1,706 rows: 150 zero-length, one exact duplicate (dSfcznv4KLo Car 0-5.942) merged
    assert n_events(m) == 1706 - 150 - 1
    assert [e for e in by_id(m)["dSfcznv4KLo_30.000_40.000"].events if e.label == "Car"] == [Event("Car", 0.0, 5.942)]
    assert sum(c.events == () for c in m) == 94
    assert n_events(read_dcase_strong_tsv(path, keep_zero_length=True)) == 1706 - 1
    assert all(not c.clip_id.endswith("\r") and c.labels <= set(DCASE17_CLASSES) for c in m)


def test_dcase17_weak_ground_truth_is_read_as_weak_not_strong() -> None:
    weak_path = real("dcase2017_task4/groundtruth_weak_label_testing_set.csv")
    weak = read_dcase_weak_tsv(weak_path, classes=DCASE17_CLASSES)
    assert len(weak) == 488 and not weak.has_strong
    assert sum(len(c.labels) for c in weak) == 606  # one row per (clip, label)
    strong = by_id(read_dcase_strong_tsv(real("dcase2017_task4/groundtruth_strong_label_testing_set.csv")))
    assert all(clip.labels == strong[clip.clip_id].labels for clip in weak)
    with pytest.raises(LabelError, match="read_dcase_weak_tsv"):
        read_dcase_strong_tsv(weak_path)
    assert detect_label_format(weak_path) == "dcase_weak"


# ---------------------------------------------------------------- real files: AudioSet


def test_audioset_class_labels_indices() -> None:
    classes = read_class_labels_indices(real("audioset/class_labels_indices.csv"))
    assert len(classes) == 527
    assert [c.index for c in classes] == list(range(527))
    assert classes[0] == AudioSetClass(0, "/m/09x0r", "Speech")
    assert classes[1].display_name == "Male speech, man speaking"  # quoted name with a comma


@pytest.mark.parametrize(
    "name, n_clips, n_positive, first_id, first_labels",
    [
        ("balanced_train_segments.csv", 22160, 52882, "--PJHxphWEs_30.000_40.000", {"Speech", "Gush"}),
        (
            "eval_segments.csv",
            20371,
            51804,
            "--4gqARaEJE_0.000_10.000",
            {"Dog", "Squeak", "Domestic animals, pets", "Animal"},
        ),
    ],
)
def test_audioset_segments(name: str, n_clips: int, n_positive: int, first_id: str, first_labels: set[str]) -> None:
    indices = read_class_labels_indices(real("audioset/class_labels_indices.csv"))
    m = read_audioset_csv(real(f"audioset/{name}"), indices, audio_dir="/as")
    assert len(m) == n_clips
    assert sum(len(c.labels) for c in m) == n_positive  # the num_positive_labels of the header
    assert len(m.classes) == 527
    assert m[0].clip_id == first_id and m[0].labels == first_labels
    assert m[0].audio_path == Path(f"/as/{first_id}.wav") and m[0].duration == 10.0
    assert all(0 < c.duration <= 10.0 for c in m)  # float starts (23.7 -> 33.7) give exactly 10


def test_audioset_keep_only_builds_the_17_class_subset() -> None:
    indices = real("audioset/class_labels_indices.csv")
    m = read_audioset_csv(real("audioset/balanced_train_segments.csv"), indices, DCASE17_CLASSES, keep_only=True)
    assert len(m) == 1228  # segments with at least one of the 17 MIDs, counted with csv by hand
    assert m.classes == list(DCASE17_CLASSES)
    assert all(c.labels and c.labels <= set(DCASE17_CLASSES) for c in m)
    assert m[0].audio_path is None
    with pytest.raises(LabelError, match="has label 'Speech', which is not in the class list"):
        read_audioset_csv(real("audioset/balanced_train_segments.csv"), indices, DCASE17_CLASSES)


# ---------------------------------------------------------------- real files: SL-DCASE-17


def test_sl_dcase17_strong_matches_dcase17_strong_ground_truth() -> None:
    m = read_sl_dcase17_strong(real("eusipco19_sl_dcase17/train_strong_labels.csv"), classes=DCASE17_CLASSES)
    assert len(m) == 1591  # 1,955 (clip, class) rows over 488 + 1,103 DCASE 2017 clips
    assert n_events(m) == 2205
    assert by_id(m)["YTFJUFWcRns_30.000_40.000"].events == (Event("Car", 0.0, 9.82),)
    # label ids are MIDs; mapped through the class list they give the DCASE 2017 strong labels
    dcase = by_id(read_dcase_strong_tsv(real("dcase2017_task4/groundtruth_strong_label_testing_set.csv")))
    dcase |= by_id(read_dcase_strong_tsv(real("dcase2017_task4/groundtruth_strong_label_evaluation_set.csv")))
    assert set(by_id(m)) == set(dcase)
    assert [c.clip_id for c in m if c.labels != dcase[c.clip_id].labels] == ["-oCvKmNbhl0_30.000_40.000"]
    assert sorted(c.clip_id for c in m if c.events != dcase[c.clip_id].events) == [
        "-oCvKmNbhl0_30.000_40.000",
        "jZxusrD28rM_30.000_40.000",
    ]


@pytest.mark.parametrize(
    "name, n_clips, n_multi, n_car, first_id, first_labels",
    [
        ("validation_set.csv", 1638, 379, 217, "---1_cCGK4M_0.000_10.000", {"Train horn", "Train"}),
        ("test_set.csv", 626, 87, 116, "-9mHz0OsKKw_0.000_10.000", {"Car"}),
    ],
)
def test_sl_dcase17_segments(
    name: str, n_clips: int, n_multi: int, n_car: int, first_id: str, first_labels: set[str]
) -> None:
    m = read_sl_dcase17_segments(real(f"eusipco19_sl_dcase17/{name}"), classes=DCASE17_CLASSES)
    assert len(m) == n_clips and m.classes == list(DCASE17_CLASSES)
    assert sum(len(c.labels) > 1 for c in m) == n_multi
    assert sum("Car" in c.labels for c in m) == n_car
    assert m[0].clip_id == first_id and m[0].labels == first_labels and m[0].events is None


@pytest.mark.parametrize(
    "relative, kind, n_clips",
    [
        ("desed/validation.tsv", "dcase_strong", 1168),
        ("desed/weak.tsv", "dcase_weak", 1578),
        ("dcase2017_task4/groundtruth_strong_label_testing_set.csv", "dcase_strong", 488),
        ("dcase2017_task4/groundtruth_weak_label_evaluation_set.csv", "dcase_weak", 1103),
        ("eusipco19_sl_dcase17/train_strong_labels.csv", "sl_dcase17_strong", 1591),
        ("eusipco19_sl_dcase17/test_set.csv", "sl_dcase17_segments", 626),
    ],
)
def test_read_labels_dispatches_real_files(relative: str, kind: str, n_clips: int) -> None:
    path = real(relative)
    assert detect_label_format(path) == kind
    assert len(read_labels(path, audio_dir=None)) == n_clips


def test_read_labels_audioset_needs_class_list() -> None:
    path = real("audioset/eval_segments.csv")
    assert detect_label_format(path) == "audioset"
    with pytest.raises(LabelError, match="class_labels_indices"):
        read_labels(path)
    m = read_labels(path, class_labels_indices=real("audioset/class_labels_indices.csv"))
    assert len(m) == 20371


# ---------------------------------------------------------------- hand-written: DCASE TSV


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


STRONG_ROWS = "a.wav\t0.5\t2.0\tDog\na.wav\t1.0\t3.25\tCat\nb.wav\t0\t10\tCat\n"


def test_strong_headerless_equals_header(tmp_path: Path) -> None:
    header = "filename\tonset\toffset\tevent_label\n"
    with_header = read_dcase_strong_tsv(write(tmp_path / "h.tsv", header + STRONG_ROWS))
    headerless = read_dcase_strong_tsv(write(tmp_path / "n.tsv", STRONG_ROWS))
    assert with_header.clips == headerless.clips
    assert with_header.classes == ["Cat", "Dog"]
    assert [c.clip_id for c in headerless] == ["a", "b"]
    assert headerless[0].events == (Event("Dog", 0.5, 2.0), Event("Cat", 1.0, 3.25))
    assert headerless[0].labels == {"Dog", "Cat"} and headerless[1].duration is None
    assert detect_label_format(tmp_path / "n.tsv") == "dcase_strong"


def test_strong_header_columns_in_any_order(tmp_path: Path) -> None:
    m = read_dcase_strong_tsv(write(tmp_path / "s.tsv", "event_label\tfilename\toffset\tonset\nDog\tx.wav\t2\t1\n"))
    assert m[0].clip_id == "x" and m[0].events == (Event("Dog", 1.0, 2.0),)


def test_strong_empty_row_and_zero_length_event(tmp_path: Path) -> None:
    path = write(tmp_path / "s.tsv", "filename\tonset\toffset\tevent_label\nq.wav\t\t\t\nz.wav\t0\t0\tTruck\n")
    quiet, zero = read_dcase_strong_tsv(path)
    assert quiet.events == () and quiet.labels == frozenset()
    assert zero.events == () and zero.labels == {"Truck"} and zero.has_strong
    assert read_dcase_strong_tsv(path, keep_zero_length=True)[1].events == (Event("Truck", 0.0, 0.0),)


@pytest.mark.parametrize(
    "row, line, reason",
    [
        ("a.wav\tzero\t1.0\tDog", 3, "onset 'zero' is not a number"),
        ("a.wav\t1.0\tDog", 3, "expected 4 tab-separated columns, got 3"),
        ("a.wav\t2.0\t1.0\tDog", 3, "offset 1.0 is before onset 2.0"),
        ("a.wav\t-1\t1.0\tDog", 3, "onset -1.0 is negative"),
        ("a.wav\t1\tnan\tDog", 3, "not a finite number"),
        ("a.wav\t\t1.0\tDog", 3, "all be given, or all be empty"),
    ],
)
def test_strong_malformed_row_names_file_and_line(tmp_path: Path, row: str, line: int, reason: str) -> None:
    path = write(tmp_path / "bad.tsv", f"filename\tonset\toffset\tevent_label\nok.wav\t0\t1\tDog\n{row}\n")
    with pytest.raises(LabelError) as info:
        read_dcase_strong_tsv(path)
    assert info.value.line == line and info.value.path == path
    assert str(info.value).startswith(f"{path}:{line}: ") and reason in str(info.value)


def test_strong_bad_header(tmp_path: Path) -> None:
    path = write(tmp_path / "h.tsv", "file\tstart\tend\tlabel\na.wav\t0\t1\tDog\n")
    with pytest.raises(LabelError, match=r"h\.tsv:1: header lacks column\(s\) filename, onset, offset, event_label"):
        read_dcase_strong_tsv(path)


def test_unknown_label_names_file_and_line(tmp_path: Path) -> None:
    strong = write(tmp_path / "s.tsv", "a.wav\t0\t1\tDog\n\nb.wav\t0\t1\tCow\n")
    with pytest.raises(LabelError) as info:
        read_dcase_strong_tsv(strong, classes=["Dog", "Cat"])
    assert info.value.line == 3  # blank lines count
    assert str(info.value) == f"{strong}:3: clip 'b' has label 'Cow', which is not in the class list (Cat, Dog)"

    weak = write(tmp_path / "w.tsv", "filename\tevent_labels\na.wav\tDog,Cat\nb.wav\tDog,Cow\n")
    with pytest.raises(LabelError, match=r"w\.tsv:3: clip 'b' has label 'Cow', which"):
        read_dcase_weak_tsv(weak, classes=["Dog", "Cat"])
    assert read_dcase_weak_tsv(weak).classes == ["Cat", "Cow", "Dog"]


def test_weak_layouts(tmp_path: Path) -> None:
    desed = read_dcase_weak_tsv(
        write(tmp_path / "w.tsv", "filename\tevent_labels\na.wav\tDog,Cat\nb.wav\t\n"), audio_dir="/x"
    )
    assert [(c.clip_id, c.labels, c.events) for c in desed] == [("a", {"Dog", "Cat"}, None), ("b", frozenset(), None)]
    assert desed[0].audio_path == Path("/x/a.wav")
    # DCASE 2017 ground truth: one row per label, times are the YouTube segment
    dcase17 = read_dcase_weak_tsv(
        write(
            tmp_path / "g.csv",
            "k_30.000_40.000.wav\t30.000\t40.000\tAir horn, truck horn\r\nk_30.000_40.000.wav\t30.000\t40.000\tCar\r\n",
        )
    )
    assert len(dcase17) == 1 and dcase17[0].labels == {"Air horn, truck horn", "Car"}
    assert detect_label_format(tmp_path / "g.csv") == "dcase_weak"


def test_split_weak_labels_keeps_names_with_comma_space() -> None:
    assert split_weak_labels("Air horn, truck horn,Car") == ["Air horn, truck horn", "Car"]
    assert split_weak_labels("Dog, Cat", classes=["Dog", "Cat"]) == ["Dog", "Cat"]
    # a label name holds no comma unless it is a known one: "chirp, hum" is two labels, not one
    assert split_weak_labels("chirp, hum") == ["chirp", "hum"]
    assert split_weak_labels("chirp , hum,dog") == ["chirp", "hum", "dog"]
    assert split_weak_labels("Air horn, truck horn") == ["Air horn, truck horn"]
    assert split_weak_labels("") == []


def test_dcase_write_read_round_trip(tmp_path: Path) -> None:
    clips = [
        Clip(
            "a",
            Path("a.wav"),
            frozenset({"Car", "Air horn, truck horn"}),
            (Event("Car", 0.0, 10.0), Event("Air horn, truck horn", 1.25, 2.5)),
        ),
        Clip("b", Path("b.wav"), frozenset(), ()),
        Clip("c", Path("c.wav"), frozenset({"Train"}), None),
    ]
    manifest = Manifest(clips, list(DCASE17_CLASSES))
    write_dcase_strong_tsv(tmp_path / "strong.tsv", manifest)
    strong = read_dcase_strong_tsv(tmp_path / "strong.tsv", classes=DCASE17_CLASSES)
    assert strong.clips == clips[:2]  # the weak-only clip is not written to a strong file
    write_dcase_weak_tsv(tmp_path / "weak.tsv", manifest)
    weak = read_dcase_weak_tsv(tmp_path / "weak.tsv", classes=DCASE17_CLASSES)
    assert [(c.clip_id, c.labels) for c in weak] == [(c.clip_id, c.labels) for c in clips]
    assert read_labels(tmp_path / "weak.tsv").classes == ["Air horn, truck horn", "Car", "Train"]


def test_jsonl_round_trip(tmp_path: Path) -> None:
    manifest = Manifest(
        [
            Clip("a", Path("rel/a.wav"), frozenset({"Dog"}), (Event("Dog", 0.25, 1.5),), 10.0),
            Clip("b", None, frozenset({"Cat", "Dog"}), None, None),
        ],
        ["Dog", "Cat", "Bird"],
    )
    manifest.to_jsonl(tmp_path / "m.jsonl")
    back = read_labels(tmp_path / "m.jsonl")  # relative audio paths: relative to the manifest's folder
    assert back.clips[0].audio_path == tmp_path / "rel" / "a.wav"
    assert [replace(c, audio_path=None) for c in back.clips] == [replace(c, audio_path=None) for c in manifest.clips]
    assert back.classes == ["Dog", "Cat", "Bird"]
    rooted = read_manifest_jsonl(tmp_path / "m.jsonl", audio_dir="/data")
    assert rooted[0].audio_path == Path("/data/rel/a.wav") and rooted[1].audio_path is None
    with pytest.raises(LabelError, match=r"m\.jsonl:3: clip 'b' has label 'Cat', which"):
        read_labels(tmp_path / "m.jsonl", classes=["Dog"])


# ---------------------------------------------------------------- hand-written: AudioSet


CLASS_LABELS = 'index,mid,display_name\n0,/m/09x0r,"Speech"\n1,/m/05zppz,"Male speech, man speaking"\n2,/m/0k4j,Car\n'
OFFICIAL_SEGMENTS = (
    "# Segments csv created Sun Mar  5 10:54:31 2017\n"
    "# num_ytids=3, num_segs=3, num_unique_labels=3, num_positive_labels=4\n"
    "# YTID, start_seconds, end_seconds, positive_labels\n"
    '--PJHxphWEs, 30.000, 40.000, "/m/09x0r,/m/05zppz"\n'
    "--ZhevVpy1s, 50.000, 60.000, /m/0k4j\n"
    'Y0a1b2c3d4e, 7.500, 15.000, "/m/0k4j"\n'
)


def test_audioset_comment_lines_and_spacing_are_optional(tmp_path: Path) -> None:
    indices = write(tmp_path / "class_labels_indices.csv", CLASS_LABELS)
    official = read_audioset_csv(write(tmp_path / "official.csv", OFFICIAL_SEGMENTS), indices)
    bare_text = "\n".join(
        line.replace(", ", ",") for line in OFFICIAL_SEGMENTS.splitlines() if not line.startswith("#")
    )
    bare = read_audioset_csv(write(tmp_path / "bare.csv", bare_text + "\n"), indices, suffix=".flac")
    assert official.clips == bare.clips
    assert [c.clip_id for c in official] == [
        "--PJHxphWEs_30.000_40.000",
        "--ZhevVpy1s_50.000_60.000",
        "Y0a1b2c3d4e_7.500_15.000",
    ]
    assert official[0].labels == {"Speech", "Male speech, man speaking"}
    assert official[2].duration == 7.5 and official[2].audio_path is None
    assert official.classes == ["Car", "Male speech, man speaking", "Speech"]
    assert detect_label_format(tmp_path / "official.csv") == "audioset"
    assert detect_label_format(tmp_path / "bare.csv") == "audioset"


def test_audioset_errors_name_file_and_line(tmp_path: Path) -> None:
    indices = read_class_labels_indices(write(tmp_path / "cli.csv", CLASS_LABELS))
    unknown = write(tmp_path / "u.csv", OFFICIAL_SEGMENTS + "abc, 0, 10, /m/nope\n")
    with pytest.raises(LabelError, match=r"u\.csv:7: unknown label MID '/m/nope'"):
        read_audioset_csv(unknown, indices)
    short = write(tmp_path / "s.csv", "# YTID, start_seconds, end_seconds, positive_labels\nabc, 0, /m/0k4j\n")
    with pytest.raises(LabelError, match=r"s\.csv:2: expected 4 comma-separated columns"):
        read_audioset_csv(short, indices)
    backwards = write(tmp_path / "b.csv", "abc,20,10,/m/0k4j\n")
    with pytest.raises(LabelError, match=r"b\.csv:1: end_seconds 10.0 is before start_seconds 20.0"):
        read_audioset_csv(backwards, indices)
    with pytest.raises(LabelError, match=r"o\.csv:4: clip '\S+' has label 'Speech', which"):
        read_audioset_csv(write(tmp_path / "o.csv", OFFICIAL_SEGMENTS), indices, classes=["Car"])


def test_audioset_keep_only(tmp_path: Path) -> None:
    indices = write(tmp_path / "cli.csv", CLASS_LABELS)
    m = read_audioset_csv(write(tmp_path / "a.csv", OFFICIAL_SEGMENTS), indices, ["Car", "Bus"], keep_only=True)
    assert [c.clip_id for c in m] == ["--ZhevVpy1s_50.000_60.000", "Y0a1b2c3d4e_7.500_15.000"]
    assert m.classes == ["Car", "Bus"]
    with pytest.raises(ValueError, match="keep_only"):
        read_audioset_csv(tmp_path / "a.csv", indices, keep_only=True)


# ---------------------------------------------------------------- hand-written: SL-DCASE-17


def test_sl_dcase17_strong_small(tmp_path: Path) -> None:
    path = write(
        tmp_path / "train.csv",
        "\tDCASE17-filename\tlabel_id\ttime\n"
        "0\tk_30.000_40.000.wav\t/m/0k4j\t[[0.0, 9.716000000000001], [9.8, 10.0]]\n"
        "1\tk_30.000_40.000.wav\t/m/07jdr\t[[0.0, 0.0]]\n"
        "2\tq_0.000_10.000.wav\t/m/nope\t[[1.0, 2.0]]\n",
    )
    with pytest.raises(LabelError, match=r"train\.csv:4: unknown label id '/m/nope'"):
        read_sl_dcase17_strong(path)
    path.write_text("\n".join(path.read_text().splitlines()[:3]) + "\n")
    (clip,) = read_sl_dcase17_strong(path)
    assert clip.clip_id == "k_30.000_40.000" and clip.labels == {"Car", "Train"}
    assert clip.events == (Event("Car", 0.0, 9.716), Event("Car", 9.8, 10.0))
    bad = write(tmp_path / "bad.csv", "\tDCASE17-filename\tlabel_id\ttime\n0\tk.wav\t/m/0k4j\t[[2.0]]\n")
    with pytest.raises(LabelError, match=r"bad\.csv:2: time '\[\[2.0\]\]' is not a list"):
        read_sl_dcase17_strong(bad)


# ---------------------------------------------------------------- missing files and formats


@pytest.mark.parametrize(
    "reader",
    [
        read_dcase_strong_tsv,
        read_dcase_weak_tsv,
        read_class_labels_indices,
        read_dcase17_class_list,
        read_sl_dcase17_strong,
        read_sl_dcase17_segments,
        read_labels,
        lambda p: read_audioset_csv(p, []),
    ],
)
def test_missing_file(tmp_path: Path, reader) -> None:
    missing = tmp_path / "nope.tsv"
    with pytest.raises(LabelError) as info:
        reader(missing)
    assert info.value.line is None and str(info.value) == f"{missing}: file not found"


def test_unrecognised_format(tmp_path: Path) -> None:
    with pytest.raises(LabelError, match=r"x\.tsv:1: unrecognised label format"):
        read_labels(write(tmp_path / "x.tsv", "filename\n a.wav\n"))


# ---------------------------------------------------------------- folder layout


def sine(path: Path, seconds: float, sample_rate: int = 16_000) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    sf.write(str(path), 0.1 * np.sin(2 * np.pi * 440 * t), sample_rate)


def test_read_folder(tmp_path: Path) -> None:
    sine(tmp_path / "dog" / "bark1.wav", 0.5)
    sine(tmp_path / "dog" / "outdoor" / "bark2.flac", 0.25)
    sine(tmp_path / "cat" / "meow.WAV", 1.0)
    sine(tmp_path / "cat" / ".hidden.wav", 0.1)
    sine(tmp_path / ".cache" / "x.wav", 0.1)
    sine(tmp_path / "loose.wav", 0.1)
    (tmp_path / "cat" / "notes.txt").write_text("not audio")
    (tmp_path / "empty_class").mkdir()

    m = read_folder(tmp_path)
    assert [c.clip_id for c in m] == ["cat/meow", "dog/bark1", "dog/outdoor/bark2"]
    assert [set(c.labels) for c in m] == [{"cat"}, {"dog"}, {"dog"}]
    assert m.classes == ["cat", "dog"]
    assert m[2].audio_path == tmp_path / "dog" / "outdoor" / "bark2.flac"
    assert all(c.events is None and c.duration is None for c in m)
    timed = read_folder(tmp_path, classes=["dog", "cat", "bird"], with_durations=True)
    assert [c.duration for c in timed] == pytest.approx([1.0, 0.5, 0.25])
    assert timed.classes == ["dog", "cat", "bird"]
    assert len(read_labels(tmp_path)) == 3
    with pytest.raises(LabelError, match=r"cat: label 'cat' is not in the class list \(dog\)"):
        read_folder(tmp_path, classes=["dog"])


def test_read_folder_without_audio(tmp_path: Path) -> None:
    (tmp_path / "dog").mkdir()
    (tmp_path / "dog" / "readme.txt").write_text("x")
    with pytest.raises(LabelError) as info:
        read_folder(tmp_path)
    assert str(info.value).startswith(f"{tmp_path}: no audio files")
    with pytest.raises(LabelError, match="folder not found"):
        read_folder(tmp_path / "missing")


# ---------------------------------------------------------------- held-out validation (hold_out)


def weak_clip(clip_id: str, *labels: str) -> Clip:
    return Clip(clip_id, None, frozenset(labels))


def test_youtube_ids_of_segment_ids() -> None:
    assert youtube_id("--PJHxphWEs_30.000_40.000") == "--PJHxphWEs"
    assert youtube_id("Y--PJHxphWEs_30.000_40.000") == "--PJHxphWEs"  # DESED / DCASE 2017 audio names
    assert youtube_id("1Ro0FgMWTUE_120_130") == "1Ro0FgMWTUE"
    assert youtube_id("X--PJHxphWEs_30.000_40.000") is None  # 12 characters, not a Y prefix
    assert youtube_id("valid_00040") is None and youtube_id("scene_3_7") is None
    two_segments = [weak_clip("abcdefghijk_0.000_10.000"), weak_clip("Yabcdefghijk_20.000_30.000")]
    assert recording_of(two_segments[0]) == recording_of(two_segments[1])
    assert recording_of(weak_clip("scene_3_7")) != recording_of(weak_clip("scene_3_8"))


def test_hold_out_small_by_hand() -> None:
    # 20 clips: 18 "common" ones, 2 "rare" ones from different videos, 2 segments of one video
    # (with and without the Y prefix), 1 clip without labels
    clips = [weak_clip(f"common{i:05d}_0_10", "common") for i in range(15)]
    clips += [weak_clip("rareAAAAAAA_0_10", "rare"), weak_clip("rareBBBBBBB_0_10", "rare", "common")]
    clips += [weak_clip("videoCCCCCC_0_10", "common", "pair"), weak_clip("YvideoCCCCCC_10_20", "common", "pair")]
    clips.append(weak_clip("silentDDDDD_0_10"))
    m = Manifest(clips, ["common", "pair", "rare"])
    for seed in range(6):
        kept, held = hold_out(m, 0.1, seed)
        assert len(held) == 2 and len(kept) == 18  # round(0.1 * 20)
        assert sorted(c.clip_id for c in kept.clips + held.clips) == sorted(c.clip_id for c in m)
        assert kept.classes == held.classes == ["common", "pair", "rare"]
        # a label of two recordings has one on each side, even where 10% of it is 0.2 clips
        assert sum("rare" in c.labels for c in held) == 1 and sum("rare" in c.labels for c in kept) == 1
        # the two segments of one video stay together, on the kept side: held out, they would take both
        # of its 2 places (and "pair", a label of one recording, cannot be on both sides anyway)
        assert {"videoCCCCCC_0_10", "YvideoCCCCCC_10_20"} <= {c.clip_id for c in kept}
        assert [c.clip_id for c in kept] == [c.clip_id for c in m if c in kept.clips]  # manifest order kept
    assert [c.clip_id for c in hold_out(m, 0.1, 3)[1]] == [c.clip_id for c in hold_out(m, 0.1, 3)[1]]
    held_sets = {tuple(c.clip_id for c in hold_out(m, 0.5, seed)[1]) for seed in range(6)}
    assert len(held_sets) > 1  # the seed chooses


def test_hold_out_exact_sizes_and_errors() -> None:
    m = Manifest([weak_clip(f"c{i}", "a" if i % 3 else "b") for i in range(7)])
    for fraction, n_held in ((0.5, 4), (0.25, 2), (0.2, 1), (0.9, 6)):  # round half up: 3.5 -> 4, 1.75 -> 2
        kept, held = hold_out(m, fraction)
        assert (len(kept), len(held)) == (7 - n_held, n_held)
    for fraction in (0.0, 1.0, -0.1):
        with pytest.raises(ValueError, match="above 0 and below 1"):
            hold_out(m, fraction)
    with pytest.raises(ValueError, match="cannot hold out 0.05 of 7 clip"):
        hold_out(m, 0.05)
    one_video = Manifest([weak_clip(f"abcdefghijk_{i}_{i + 10}", "a") for i in range(4)])
    with pytest.raises(ValueError, match="one group"):
        hold_out(one_video, 0.5)


def test_hold_out_is_the_same_in_every_process() -> None:
    """No set or hash order decides the split: two interpreters with other hash seeds agree."""
    import os
    import subprocess
    import sys

    code = (
        "from weaktag.labels import Clip, Manifest, hold_out\n"
        "labels = ['a', 'b', 'c', 'd']\n"
        "clips = [Clip(f'k{i:03d}', None, frozenset(labels[j] for j in range(4) if (i >> j) & 1 or i % 5 == j))"
        " for i in range(60)]\n"
        "print(','.join(c.clip_id for c in hold_out(Manifest(clips), 0.2, 4)[1]))\n"
    )
    outputs = {
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                       env={**os.environ, "PYTHONHASHSEED": seed}).stdout
        for seed in ("1", "2", "3")
    }
    assert len(outputs) == 1 and len(next(iter(outputs)).split(",")) == 12


def test_hold_out_of_balanced_audioset() -> None:
    import random

    indices = real("audioset/class_labels_indices.csv")
    m = read_audioset_csv(real("audioset/balanced_train_segments.csv"), indices)
    kept, held = hold_out(m, 0.1, seed=0)
    assert len(held) == round(0.1 * len(m)) and len(kept) + len(held) == len(m)
    kept_ids, held_ids = {c.clip_id for c in kept}, {c.clip_id for c in held}
    assert not kept_ids & held_ids and kept_ids | held_ids == {c.clip_id for c in m}
    assert not {recording_of(c) for c in kept} & {recording_of(c) for c in held}
    assert [c.clip_id for c in hold_out(m, 0.1, seed=0)[1]] == [c.clip_id for c in held]
    assert {c.clip_id for c in hold_out(m, 0.1, seed=1)[1]} != held_ids
    total = Counter(label for c in m for label in c.labels)
    in_held = Counter(label for c in held for label in c.labels)
    in_kept = Counter(label for c in kept for label in c.labels)
    assert set(in_held) == set(in_kept) == set(total) and len(total) == 527  # every class on both sides
    # stratified: per class, far nearer 10% than a plain random draw of the same size
    shuffled = list(m.clips)
    random.Random(0).shuffle(shuffled)
    in_random = Counter(label for c in shuffled[: len(held)] for label in c.labels)

    def off(counts: Counter) -> float:
        return float(np.mean([abs(counts[label] - 0.1 * n) for label, n in total.items()]))

    assert off(in_held) < off(in_random) / 4
    assert all(0.05 <= in_held[label] / n <= 0.2 for label, n in total.items())
