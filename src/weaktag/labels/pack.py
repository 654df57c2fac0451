"""Reading the labels of a weaktag pack (a folder of HDF5 shards made by :func:`weaktag.packing.pack`).

The layout is defined here, below :mod:`weaktag.packing` (which writes it), so that ``read_labels``
can read a pack without importing the writer. A pack folder holds:

* ``pack.json``: format name and version, sample rate, classes, the shards and their clip counts,
  packed / skipped counts;
* ``shard-00000.h5``, ...: per clip (row ``i`` of each dataset), the int16 waveform
  (``audio[audio_offsets[i]:audio_offsets[i + 1]]``), clip id, duration, weak labels (a 0/1 row over
  the pack's classes), strong events (``event_*[event_offsets[i]:event_offsets[i + 1]]``, and
  ``strong[i]``: whether the clip has strong labels at all), the audio file it was packed from and
  the label-file line its labels were read from;
* ``skipped.tsv``: every clip left out, with the reason.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from .manifest import Clip, Event, LabelError, LabelSource, Manifest, PackedAudio

PACK_JSON = "pack.json"
SKIPPED_TSV = "skipped.tsv"
PACK_FORMAT = "weaktag-pack"
PACK_VERSION = 1
SHARD_NAME = "shard-{:05d}.h5"
DEFAULT_SAMPLE_RATE = 16_000  # VGGish's front end
DEFAULT_CLIPS_PER_SHARD = 1024  # about 330 MB of 10 s clips at 16 kHz: few files, each a sane size
# int16 <-> float as libsndfile converts 16-bit PCM (x / 32768), so 16-bit sources at the pack's rate
# come back bit-exact (see weaktag.packing.to_int16)
INT16_SCALE = 32768.0


def pack_folder(path: str | Path) -> Path:
    """The pack folder of ``path`` (the folder itself or its ``pack.json``)."""
    path = Path(path)
    return path.parent if path.name == PACK_JSON and path.is_file() else path


def read_pack_index(path: str | Path) -> dict[str, Any]:
    """``pack.json`` of a pack folder, checked: LabelError naming the file when it is not a pack this
    weaktag can read."""
    index_path = pack_folder(path) / PACK_JSON
    if not index_path.is_file():
        raise LabelError(index_path.parent, None, f"not a weaktag pack (no {PACK_JSON})")
    try:
        index = json.loads(index_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LabelError(index_path, None, f"cannot read the pack index ({exc})") from None
    if not isinstance(index, dict) or index.get("format") != PACK_FORMAT:
        raise LabelError(index_path, None, f"not a weaktag pack index (format is not {PACK_FORMAT!r})")
    if index.get("version") != PACK_VERSION:
        raise LabelError(index_path, None, f"pack format version {index.get('version')!r}; this weaktag reads "
                                           f"version {PACK_VERSION} (pack the labels again)")
    return index


def read_pack(path: str | Path, classes: Sequence[str] | None = None) -> Manifest:
    """The clips of a pack, in the order they were packed; their audio is read from the shards
    (``Clip.packed``), not from ``audio_path``. ``source`` is the label-file line the pack was made from.

    ``classes`` re-indexes the manifest: a label outside it is an
    :class:`~weaktag.labels.UnknownLabelError` naming that line.
    """
    import h5py  # lazy: only packs need it

    folder = pack_folder(path)
    index = read_pack_index(folder)
    rate = int(index["sample_rate"])
    clips: list[Clip] = []
    for entry in index["shards"]:
        shard = folder / entry["file"]
        if not shard.is_file():
            raise LabelError(shard, None, f"shard listed in {PACK_JSON} is missing")
        try:
            with h5py.File(shard, "r") as f:
                rows = _shard_clips(f, shard, rate)
        except (OSError, KeyError) as exc:  # a truncated or foreign file, or a dataset missing from it
            raise LabelError(shard, None, f"cannot read pack shard ({type(exc).__name__}: {exc})") from None
        if len(rows) != entry["clips"]:
            raise LabelError(shard, None, f"holds {len(rows)} clips, {PACK_JSON} says {entry['clips']}")
        clips.extend(rows)
    manifest = Manifest(clips, list(index["classes"]))
    return manifest if classes is None else manifest.with_classes(classes)


def _strings(dataset: Any) -> list[str]:
    return [s.decode() if isinstance(s, bytes) else str(s) for s in dataset[()]]


def _shard_clips(f: Any, shard: Path, rate: int) -> list[Clip]:
    """Every clip's labels in one open shard (whole datasets read at once: one read each)."""
    classes = _strings(f.attrs["classes"]) if len(f.attrs["classes"]) else []
    ids, files = _strings(f["clip_id"]), _strings(f["audio_path"])
    source_paths, source_lines = _strings(f["source_path"]), f["source_line"][()]
    weak, strong, durations = f["weak"][()], f["strong"][()], f["duration"][()]
    event_offsets = f["event_offsets"][()]
    labels, onsets, offsets = _strings(f["event_label"]), f["event_onset"][()], f["event_offset"][()]
    clips = []
    for i, clip_id in enumerate(ids):
        events = None
        if strong[i]:
            span = range(event_offsets[i], event_offsets[i + 1])
            events = tuple(Event(labels[j], float(onsets[j]), float(offsets[j])) for j in span)
        source = LabelSource(Path(source_paths[i]), None if source_lines[i] < 0 else int(source_lines[i])) \
            if source_paths[i] else None
        clips.append(Clip(
            clip_id=clip_id,
            audio_path=Path(files[i]) if files[i] else None,
            labels=frozenset(c for c, on in zip(classes, weak[i]) if on),
            events=events,
            duration=float(durations[i]),
            source=source,
            packed=PackedAudio(shard, i, rate),
        ))
    return clips
