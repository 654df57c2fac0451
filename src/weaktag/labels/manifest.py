"""The typed manifest every label reader produces and every other module consumes.

A manifest is a list of clips plus the ordered class list. A clip always has a weak
label set; it has strong events (onset/offset in seconds) only when the source gave
them. ``events is None`` means "no strong labels for this clip", which is different
from ``events == ()`` ("strongly labelled, and nothing happens in it").
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterable, Iterator, NamedTuple, Sequence

from ..errors import WeaktagError


class LabelError(WeaktagError, ValueError):
    """A label file is malformed or names an unknown label; the message names file and line."""

    def __init__(self, path: str | Path | None, line: int | None, message: str) -> None:
        where = "" if path is None else f"{path}:{line}: " if line is not None else f"{path}: "
        super().__init__(f"{where}{message}")
        self.path = None if path is None else Path(path)
        self.line = line


class UnknownLabelError(LabelError):
    """A clip's label is not in the class list in use (the training set's, a config's, a checkpoint's).

    ``classes_from`` says where that class list came from, e.g. "the training labels": a
    label missing from it is often a typo in *another* file than the one being read.
    """

    def __init__(self, path: str | Path | None, line: int | None, label: str, classes: Iterable[str],
                 clip_id: str | None = None, classes_from: str | None = None) -> None:
        self.label, self.clip_id, self.classes, self.classes_from = label, clip_id, sorted(classes), classes_from
        sep = "; " if any("," in c for c in self.classes) else ", "  # AudioSet names hold commas
        shown = sep.join(self.classes[:12]) + (f"{sep}... ({len(self.classes)} in all)" if len(self.classes) > 12 else "")
        origin = f"from {classes_from}: " if classes_from else ""
        what = f"clip {clip_id!r} has label {label!r}, which is" if clip_id is not None else f"label {label!r} is"
        super().__init__(path, line, f"{what} not in the class list ({origin}{shown})")

    def with_origin(self, classes_from: str) -> "UnknownLabelError":
        """The same error, saying where the class list came from."""
        return UnknownLabelError(self.path, self.line, self.label, self.classes, self.clip_id, classes_from)


class LabelSource(NamedTuple):
    """Where a clip's labels were read: the label file (or class folder) and the line of its first row."""

    path: Path
    line: int | None = None

    def __str__(self) -> str:
        return f"{self.path}:{self.line}" if self.line is not None else str(self.path)


class PackedAudio(NamedTuple):
    """Where a packed clip's waveform is: row ``index`` of the HDF5 ``shard`` of a weaktag pack
    (:mod:`weaktag.packing`), int16 at ``sample_rate``."""

    shard: Path
    index: int
    sample_rate: int


@dataclass(frozen=True)
class Event:
    """One strongly labelled occurrence of a class, times in seconds from clip start."""

    label: str
    onset: float
    offset: float

    def __post_init__(self) -> None:
        if not (self.offset >= self.onset >= 0.0):
            raise ValueError(f"bad event times for {self.label!r}: onset={self.onset}, offset={self.offset}")

    @property
    def duration(self) -> float:
        return self.offset - self.onset


@dataclass(frozen=True)
class Clip:
    """One audio clip with its labels.

    ``audio_path`` may be None for label-only manifests (e.g. AudioSet lists whose audio
    the user has not downloaded); ``duration`` may be None when not known without reading audio.
    ``source`` is where the readers found the clip's labels, for messages; it is not part of
    the clip's value (two clips read from different files compare equal). ``packed``, set by the
    pack reader, is where the audio is read from instead of ``audio_path`` (which then names the
    file the clip was packed from, for messages only). ``fold`` is the clip's cross-validation fold
    when its labels have one (ESC-50's and UrbanSound8K's official folds, a table's ``fold`` column).
    """

    clip_id: str
    audio_path: Path | None
    labels: frozenset[str]
    events: tuple[Event, ...] | None = None
    duration: float | None = None
    source: LabelSource | None = field(default=None, compare=False, repr=False)
    packed: PackedAudio | None = None
    fold: str | None = None

    @property
    def has_strong(self) -> bool:
        return self.events is not None


@dataclass
class Manifest:
    """Clips and the ordered class list that indexes model outputs."""

    clips: list[Clip]
    classes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.classes:
            self.classes = sorted({label for clip in self.clips for label in clip.labels})

    def __len__(self) -> int:
        return len(self.clips)

    def __iter__(self) -> Iterator[Clip]:
        return iter(self.clips)

    def __getitem__(self, index: int) -> Clip:
        return self.clips[index]

    @property
    def has_strong(self) -> bool:
        return any(clip.has_strong for clip in self.clips)

    def class_index(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.classes)}

    def with_classes(self, classes: Sequence[str], classes_from: str | None = None) -> "Manifest":
        """The same clips indexed by another class list (e.g. a checkpoint's).

        A label outside it raises :class:`UnknownLabelError` naming the label file and line the
        clip was read from; ``classes_from`` (e.g. "the checkpoint") says where the list came from.
        """
        known = set(classes)
        for clip in self.clips:
            unknown = sorted(clip.labels - known)
            if unknown:
                path, line = clip.source if clip.source is not None else (None, None)
                raise UnknownLabelError(path, line, unknown[0], classes, clip.clip_id, classes_from)
        return Manifest(list(self.clips), list(classes))

    def subset(self, clip_ids: Iterable[str]) -> "Manifest":
        wanted = set(clip_ids)
        return Manifest([c for c in self.clips if c.clip_id in wanted], list(self.classes))

    def resolve_audio(self, audio_dir: str | Path, suffix: str = "") -> "Manifest":
        """Point every clip at ``audio_dir / (clip_id + suffix)`` (for readers that know only ids)."""
        audio_dir = Path(audio_dir)
        return Manifest([replace(c, audio_path=audio_dir / f"{c.clip_id}{suffix}") for c in self.clips], list(self.classes))

    # --- persistence: one JSON object per line, so manifests diff and stream well ---
    def to_jsonl(self, path: str | Path) -> None:
        """Write the manifest; audio paths inside the manifest's folder are stored relative to it, so the
        folder can move (``read_labels`` resolves them against the file's folder)."""
        path = Path(path)
        folder = path.parent.resolve()

        def stored(audio: Path | None) -> str | None:
            if audio is None:
                return None
            try:
                return Path(audio).resolve().relative_to(folder).as_posix()
            except ValueError:
                return str(audio)

        with path.open("w") as f:
            f.write(json.dumps({"classes": self.classes}) + "\n")
            for c in self.clips:
                f.write(
                    json.dumps(
                        {
                            "clip_id": c.clip_id,
                            "audio_path": stored(c.audio_path),
                            "labels": sorted(c.labels),
                            "events": None
                            if c.events is None
                            else [[e.label, e.onset, e.offset] for e in c.events],
                            "duration": c.duration,
                            **({"fold": c.fold} if c.fold is not None else {}),
                        }
                    )
                    + "\n"
                )

    @classmethod
    def from_jsonl(cls, path: str | Path, resolve_audio: bool = True) -> "Manifest":
        """Read a manifest; relative audio paths are resolved against the file's folder (``resolve_audio``).

        Manifests written before paths were stored relative to their folder hold paths relative
        to the working folder of the run that wrote them: such a path is kept when it exists
        there and the folder-relative one does not.
        """
        path = Path(path)
        clips: list[Clip] = []
        classes: list[str] = []
        with path.open() as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise LabelError(path, lineno, f"not JSON: {exc}") from None
                if lineno == 1 and "classes" in obj:
                    classes = list(obj["classes"])
                    continue
                try:
                    events = obj.get("events")
                    audio = Path(obj["audio_path"]) if obj.get("audio_path") else None
                    if resolve_audio and audio is not None and not audio.is_absolute():
                        beside = path.parent / audio
                        audio = beside if beside.exists() or not audio.exists() else audio
                    clips.append(
                        Clip(
                            clip_id=obj["clip_id"],
                            audio_path=audio,
                            labels=frozenset(obj["labels"]),
                            events=None if events is None else tuple(Event(l, float(a), float(b)) for l, a, b in events),
                            duration=obj.get("duration"),
                            source=LabelSource(path, lineno),
                            fold=None if obj.get("fold") is None else str(obj["fold"]),
                        )
                    )
                except (KeyError, TypeError, ValueError) as exc:
                    raise LabelError(path, lineno, f"bad manifest row: {exc}") from None
        return cls(clips, classes)


# --- small helpers shared by the readers (not public API) ---


def _label_file_lines(path: str | Path) -> list[tuple[int, str]]:
    """``(1-based line number, text without line ending)`` for every line of a label file.

    Handles CRLF files (the DCASE 2017 evaluation lists use them) and a UTF-8 BOM; a missing
    or unreadable file becomes a :class:`LabelError` so callers see one error type.
    """
    path = Path(path)
    if not path.exists():
        raise LabelError(path, None, "file not found")
    if path.is_dir():
        raise LabelError(path, None, "is a directory, not a label file")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise LabelError(path, None, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise LabelError(path, None, f"cannot read file ({exc.strerror})") from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [(number, line.rstrip("\r")) for number, line in enumerate(lines, 1)]


def _parse_seconds(text: str, path: str | Path, line: int, what: str) -> float:
    """A finite, non-negative time in seconds, or a :class:`LabelError` naming the column."""
    try:
        value = float(text)
    except ValueError:
        raise LabelError(path, line, f"{what} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise LabelError(path, line, f"{what} {text!r} is not a finite number")
    if value < 0:
        raise LabelError(path, line, f"{what} {value} is negative")
    return value


def _check_known(label: str, known: set[str] | None, path: str | Path, line: int | None,
                 clip_id: str | None = None) -> None:
    """Raise the standard unknown-label error when ``known`` (the caller's classes) is given."""
    if known is not None and label not in known:
        raise UnknownLabelError(path, line, label, known, clip_id)


def _manifest(clips: list[Clip], classes: Sequence[str] | None) -> Manifest:
    """A manifest indexed by ``classes`` when given, else by the sorted labels seen."""
    if classes is None:
        return Manifest(clips, sorted({label for clip in clips for label in clip.labels}))
    return Manifest(clips, list(classes))
