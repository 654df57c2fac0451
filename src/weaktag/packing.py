"""Packed datasets (``weaktag pack``): a manifest's audio decoded and resampled once, into HDF5 shards.

Preparing features from individual files decodes and resamples every clip again in every run (a
44.1 kHz Ogg costs far more than its log-mel); a pack stores each clip's waveform as int16 at the
front end's rate, at full length (any crop can be taken later), with its labels. ``read_labels`` on
the pack folder gives a normal :class:`~weaktag.labels.Manifest` whose clips read their audio from
the shards (``Clip.packed``): :func:`load_clip_audio` is the one function that reads a clip's audio,
from a shard or from its file. The on-disk layout is defined in :mod:`weaktag.labels.pack`.

A pack is written into a hidden temporary folder beside ``out_dir`` and renamed to ``out_dir`` only
when it is complete, so an interrupted pack (or one that fills the disk) never leaves a half-written ``out_dir``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import time
from collections import OrderedDict, deque
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

from .audio import AudioError, array_blocks, load_audio, warn_skipped
from .errors import DataError, UsageError
from .files import write_json, write_table
from .labels import Clip, Manifest, PackedAudio
from .labels.pack import (DEFAULT_CLIPS_PER_SHARD, DEFAULT_SAMPLE_RATE, INT16_SCALE, PACK_FORMAT, PACK_JSON,
                          PACK_VERSION, SHARD_NAME, SKIPPED_TSV)

# the waveform dataset grows clip by clip in chunks of this many samples (512 KiB): a shard is written
# without holding it in memory, and a 10 s clip is read in one or two chunks
AUDIO_CHUNK = 1 << 18
TOO_QUIET = "audio is too quiet for int16 (every sample rounds to zero)"
_OPEN_SHARDS = 8  # shard handles kept open per process; clips are read in shard order, so few suffice
#: write failures that mean "no room" (disk full, quota, a file system's file-size limit): one line naming the pack
_NO_ROOM = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def to_int16(wave: np.ndarray) -> np.ndarray:
    """float32 in [-1, 1] -> int16: scaled by 32768, rounded, clipped to [-32768, 32767] (so [-1, 1 - 2^-15]).

    32768 is libsndfile's scale for 16-bit PCM (it reads sample ``s`` as ``s / 32768``), so a 16-bit
    source at the pack's rate is stored bit-exact; any other source gets rounding error of at most
    2^-16 (about -96 dBFS) per sample.
    """
    return np.clip(np.rint(np.asarray(wave, np.float32) * INT16_SCALE), -32768, 32767).astype(np.int16)


def from_int16(pcm: np.ndarray) -> np.ndarray:
    """int16 -> float32 (the inverse of :func:`to_int16`, as libsndfile reads 16-bit PCM)."""
    return pcm.astype(np.float32) / np.float32(INT16_SCALE)


# --- reading: one function for every clip's audio ---

_shards: OrderedDict[str, tuple[Any, Any, np.ndarray]] = OrderedDict()
_shards_pid: int | None = None


def _open_shard(path: Path) -> tuple[Any, Any, np.ndarray]:
    """(file, waveform dataset, offsets) of a shard, opened on first use in *this* process: an HDF5 handle
    must not be pickled to, or inherited by, a data-loader worker (a forked worker starts afresh)."""
    global _shards_pid
    import h5py

    if _shards_pid != os.getpid():
        _shards.clear()  # the parent's handles: dropped, not closed (closing is the parent's business)
        _shards_pid = os.getpid()
    key = str(path)
    if key in _shards:
        _shards.move_to_end(key)
        return _shards[key]
    try:
        f = h5py.File(path, "r")
        entry = (f, f["audio"], f["audio_offsets"][()])
    except (OSError, KeyError) as exc:
        raise AudioError(path, f"cannot read pack shard ({type(exc).__name__}: {exc})") from None
    _shards[key] = entry
    if len(_shards) > _OPEN_SHARDS:
        _shards.popitem(last=False)[1][0].close()
    return entry


def close_shards() -> None:
    """Close the shards this process has open: when its reads are done, and before data-loader workers are
    forked (so that none inherits an open HDF5 file)."""
    if _shards_pid != os.getpid():  # inherited from a parent: not this process's to close
        _shards.clear()
    while _shards:
        _shards.popitem()[1][0].close()


def read_packed(ref: PackedAudio, sample_rate: int) -> np.ndarray:
    """A packed clip's waveform as float32 at ``sample_rate`` (resampled with soxr when the pack's rate
    differs; see :func:`resampling_note` for what that costs)."""
    _, audio, offsets = _open_shard(ref.shard)
    if not 0 <= ref.index < len(offsets) - 1:
        raise AudioError(ref.shard, f"no clip {ref.index} in this shard ({len(offsets) - 1} clips)")
    wave = from_int16(audio[offsets[ref.index]: offsets[ref.index + 1]])
    if ref.sample_rate != sample_rate:
        wave = next(array_blocks(wave, ref.sample_rate, sample_rate, name=f"{ref.shard}#{ref.index}"))
    return wave


def load_clip_audio(clip: Clip, sample_rate: int) -> np.ndarray:
    """A clip's mono float32 waveform at ``sample_rate``: from its pack shard when it has one, else decoded
    from ``audio_path``. AudioError (naming the file) when it cannot be used; silent files are refused."""
    if clip.packed is not None:
        return read_packed(clip.packed, sample_rate)
    if clip.audio_path is None:
        raise AudioError(clip.clip_id, "the manifest gives no audio path")
    return load_audio(clip.audio_path, sample_rate)


def resampling_note(clips: Iterable[Clip], sample_rate: int) -> str | None:
    """A warning when clips are packed below ``sample_rate`` (e.g. a 16 kHz pack for aisfx's 44.1 kHz front
    end): upsampling works, but the audio holds nothing above half the pack's rate. None otherwise."""
    low = {c.packed.sample_rate: c.packed.shard.parent for c in clips
           if c.packed is not None and c.packed.sample_rate < sample_rate}
    if not low:
        return None
    rate = min(low)
    return (f"{low[rate]} is packed at {rate} Hz, below the front end's {sample_rate} Hz: its audio is resampled "
            f"on read and holds nothing above {rate // 2} Hz (pack with --sample-rate {sample_rate} for the full band)")


# --- writing ---


@dataclass(frozen=True)
class PackSkip:
    """A clip left out of a pack, and why (the reason names the file)."""

    clip_id: str
    audio_path: str
    reason: str


@dataclass
class PackReport:
    """What :func:`pack` wrote: ``shards`` are ``pack.json``'s entries (file, clips, seconds of audio)."""

    out_dir: Path
    sample_rate: int
    packed: int
    shards: list[dict[str, Any]]
    skipped: list[PackSkip] = field(default_factory=list)
    wall_seconds: float = 0.0

    @property
    def audio_seconds(self) -> float:
        return float(sum(s["seconds"] for s in self.shards))

    def summary(self) -> str:
        """One line: clips packed, shards, skipped (and where they are listed)."""
        line = (f"{self.packed} clips packed in {len(self.shards)} shard(s) at {self.sample_rate} Hz "
                f"({self.audio_seconds / 3600:.2f} h of audio, {self.wall_seconds:.1f} s) into {self.out_dir}; "
                f"{len(self.skipped)} skipped")
        return line + (f" (see {self.out_dir / SKIPPED_TSV})" if self.skipped else "")


class _ShardWriter:
    """One shard, written clip by clip: waveforms appended in whole chunks as they come, the labels at :meth:`close`.

    HDF5's chunk cache is off and the audio is written one whole chunk at a time from a buffer of its own
    (so each chunk is still written once): a chunk that HDF5 holds dirty and fails to flush when the dataset
    closes (a full disk) corrupts HDF5's state and segfaults the process (HDF5 issue #6601; h5py #914). With
    nothing cached, a failed write fails where it happens, and the file closes cleanly afterwards.
    """

    def __init__(self, path: Path, classes: Sequence[str], sample_rate: int) -> None:
        import h5py

        self.path, self.sample_rate = path, sample_rate
        self.class_index = {name: i for i, name in enumerate(classes)}
        self.num_classes = len(classes)
        self.file = h5py.File(path, "w", rdcc_nbytes=0)
        self.file.attrs.update({"format": PACK_FORMAT, "version": PACK_VERSION, "sample_rate": sample_rate,
                                "int16_scale": INT16_SCALE})
        self.file.attrs["classes"] = np.array(list(classes), dtype=h5py.string_dtype())
        self.audio = self.file.create_dataset("audio", shape=(0,), maxshape=(None,), dtype="int16",
                                              chunks=(AUDIO_CHUNK,))
        self.rows: list[Clip] = []
        self.offsets = [0]
        self.unwritten: list[np.ndarray] = []  # audio after the last whole chunk written: under a chunk's worth

    def __len__(self) -> int:
        return len(self.rows)

    def add(self, clip: Clip, pcm: np.ndarray) -> None:
        self.offsets.append(self.offsets[-1] + len(pcm))
        self.rows.append(clip)
        self.unwritten.append(pcm)
        self._write_audio(whole_chunks=True)

    def _write_audio(self, whole_chunks: bool) -> None:
        """Append the buffered audio to the dataset: the whole chunks in it, or (at the end) all of it."""
        start = len(self.audio)
        pending = self.offsets[-1] - start
        count = pending // AUDIO_CHUNK * AUDIO_CHUNK if whole_chunks else pending
        if not count:
            return
        audio = np.concatenate(self.unwritten)
        self.audio.resize((start + count,))
        self.audio[start:start + count] = audio[:count]
        self.unwritten = [audio[count:]] if count < pending else []

    def close(self) -> dict[str, Any]:
        """Write the rest of the audio and the labels, close the file; returns its ``pack.json`` entry."""
        import h5py

        self._write_audio(whole_chunks=False)
        text = h5py.string_dtype()
        rows = self.rows
        weak = np.zeros((len(rows), self.num_classes), np.uint8)
        for i, clip in enumerate(rows):
            weak[i, [self.class_index[label] for label in clip.labels]] = 1
        events = [(i, e) for i, clip in enumerate(rows) for e in (clip.events or ())]
        counts = np.bincount([i for i, _ in events], minlength=len(rows)) if events else np.zeros(len(rows), int)
        seconds = np.diff(self.offsets) / self.sample_rate
        columns = {
            "audio_offsets": np.asarray(self.offsets, np.int64),
            "clip_id": np.array([c.clip_id for c in rows], dtype=text),
            "audio_path": np.array(["" if c.audio_path is None else str(c.audio_path) for c in rows], dtype=text),
            "duration": seconds.astype(np.float64),
            "weak": weak,
            "strong": np.array([c.events is not None for c in rows], dtype=bool),
            "event_offsets": np.concatenate([[0], np.cumsum(counts)]).astype(np.int64),
            "event_label": np.array([e.label for _, e in events], dtype=text),
            "event_onset": np.array([e.onset for _, e in events], dtype=np.float64),
            "event_offset": np.array([e.offset for _, e in events], dtype=np.float64),
            "source_path": np.array(["" if c.source is None else str(c.source.path) for c in rows], dtype=text),
            "source_line": np.array([-1 if c.source is None or c.source.line is None else c.source.line
                                     for c in rows], dtype=np.int64),
        }
        for name, values in columns.items():
            self.file.create_dataset(name, data=values)
        self.file.close()
        return {"file": self.path.name, "clips": len(rows), "seconds": round(float(seconds.sum()), 3)}

    def abort(self) -> None:
        """Close the file after a failed write (it is deleted with the pack's temporary folder). Closing flushes
        HDF5's metadata, which fails again on a full disk: the error already on its way is the one to report."""
        with contextlib.suppress(OSError, RuntimeError):
            self.file.close()


def _decode(clip: Clip, sample_rate: int) -> np.ndarray | str:
    """A clip's int16 waveform at ``sample_rate``, or the reason it cannot be packed (in a worker process)."""
    try:
        wave = load_clip_audio(clip, sample_rate)
    except (AudioError, ValueError) as exc:
        return str(exc)
    pcm = to_int16(wave)
    if not pcm.any():  # it was not silent as float, but would read back as silence
        return f"{clip.audio_path or clip.clip_id}: {TOO_QUIET}"
    return pcm


def _decoded(clips: Sequence[Clip], sample_rate: int, workers: int) -> Iterator[tuple[Clip, np.ndarray | str]]:
    """(clip, :func:`_decode` result) in manifest order; with ``workers`` > 1 decoded in that many processes,
    a bounded window ahead of the writer (memory stays flat however many clips there are)."""
    if workers <= 1:
        for clip in clips:
            yield clip, _decode(clip, sample_rate)
        return
    close_shards()  # repacking a pack: no worker inherits an open HDF5 file
    pool = ProcessPoolExecutor(workers)
    pending: deque[tuple[Clip, Future]] = deque()
    upcoming = iter(clips)
    try:
        for clip in upcoming:
            pending.append((clip, pool.submit(_decode, clip, sample_rate)))
            if len(pending) >= 4 * workers:
                break
        while pending:
            clip, future = pending.popleft()
            following = next(upcoming, None)
            if following is not None:
                pending.append((following, pool.submit(_decode, following, sample_rate)))
            yield clip, future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _check_target(out_dir: Path, overwrite: bool) -> None:
    """Refuse to write over anything but nothing, an empty folder or (``overwrite``) a previous pack."""
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise UsageError(f"{out_dir}: exists and is not a folder")
    if not any(out_dir.iterdir()):
        return
    if not overwrite:
        raise UsageError(f"{out_dir}: folder exists and is not empty (pack with --overwrite to replace a pack)")
    if not (out_dir / PACK_JSON).is_file():
        raise UsageError(f"{out_dir}: not a weaktag pack (no {PACK_JSON}): --overwrite replaces only a pack")


def _remove_stale_partials(out_dir: Path) -> None:
    """Delete the temporary folders (a pack being written, an old pack being replaced) of packs into
    ``out_dir`` that were killed: their process is gone."""
    stale = [*out_dir.parent.glob(f".{out_dir.name}.partial-*"), *out_dir.parent.glob(f".{out_dir.name}.replaced-*")]
    for folder in stale:
        try:
            os.kill(int(folder.name.rsplit("-", 1)[1]), 0)
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except (ValueError, PermissionError):  # not ours to judge: a foreign name, another user's process
            pass


def _publish(tmp: Path, out_dir: Path) -> None:
    """Rename the finished pack into place: over nothing or an empty folder directly, over an old pack by
    moving that aside first (``out_dir`` is then briefly absent, never half-written)."""
    if out_dir.exists() and any(out_dir.iterdir()):
        old = out_dir.parent / f".{out_dir.name}.replaced-{os.getpid()}"
        os.replace(out_dir, old)
        os.replace(tmp, out_dir)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, out_dir)  # POSIX rename replaces an empty folder


def pack(manifest: Manifest, out_dir: str | Path, sample_rate: int = DEFAULT_SAMPLE_RATE,
         clips_per_shard: int = DEFAULT_CLIPS_PER_SHARD, workers: int = 0, progress: bool = True,
         overwrite: bool = False, labels: str | Path | None = None) -> PackReport:
    """Decode every clip of ``manifest`` at ``sample_rate`` (mono, full length) and write a pack to ``out_dir``.

    Waveforms are stored as int16 (:func:`to_int16`: scaled by 32768 and clipped). ``workers`` > 1 decodes in
    that many processes. A clip whose audio is missing, corrupt, empty, silent (or too quiet for int16) is
    left out and listed in ``skipped.tsv`` with its reason; the pack goes on. ``labels`` (the label file the
    manifest was read from) is recorded in ``pack.json``. ``out_dir`` must not exist or be empty, or be a
    pack with ``overwrite``; it appears only when the pack is complete. DataError when no clip can be packed;
    OSError naming ``out_dir`` when the disk fills (or a file outgrows the file system's limit), the partial pack
    deleted.
    """
    out_dir = Path(out_dir)
    if sample_rate < 1000:
        raise UsageError(f"sample rate must be at least 1000 Hz, not {sample_rate}")
    if clips_per_shard < 1:
        raise UsageError(f"clips per shard must be at least 1, not {clips_per_shard}")
    if workers < 0:
        raise UsageError(f"workers must be 0 or more, not {workers}")
    manifest.with_classes(manifest.classes)  # a label outside the class list names its line before any decoding
    where = labels or "the manifest"
    if not manifest.clips:
        raise DataError(f"{where}: no clip to pack")
    _check_target(out_dir, overwrite)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_partials(out_dir)
    tmp = out_dir.parent / f".{out_dir.name}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir()
        report = _write_pack(manifest, tmp, sample_rate, clips_per_shard, workers, progress, labels)
        if not report.packed:
            first = report.skipped[0]
            hint = ("; is the audio folder right? (--audio-dir; default: the label file's folder)"
                    if all("file not found" in s.reason for s in report.skipped) else "")
            raise DataError(f"{where}: no clip could be packed: all {len(report.skipped)} skipped, "
                            f"e.g. {first.clip_id}: {first.reason}{hint}")
        _check_target(out_dir, overwrite)  # again: the folder may have been filled meanwhile
        _publish(tmp, out_dir)
    except BaseException as exc:
        written = _folder_bytes(tmp)
        shutil.rmtree(tmp, ignore_errors=True)
        if (code := _no_room(exc)) is not None:
            remedy = ("the file system limits a file's size: pack with fewer --clips-per-shard, or elsewhere"
                      if code == errno.EFBIG else "free some space or pack elsewhere")
            raise OSError(code, f"{os.strerror(code)} after writing {written / 1e6:.1f} MB of the pack "
                                f"(the partial pack is deleted; {remedy})", str(out_dir)) from exc
        raise
    report.out_dir = out_dir
    return report


def _no_room(exc: BaseException) -> int | None:
    """The errno of a write that failed for want of room (:data:`_NO_ROOM`), else None. HDF5 raises some of
    those as RuntimeError, its message quoting the system's "errno = 28"."""
    if isinstance(exc, OSError) and exc.errno in _NO_ROOM:
        return exc.errno
    if isinstance(exc, (OSError, RuntimeError)):
        found = re.search(r"\berrno = (\d+)", str(exc))
        if found and int(found[1]) in _NO_ROOM:
            return int(found[1])
    return None


def _folder_bytes(folder: Path) -> int:
    """Disk space taken by the files of ``folder`` (0 when it is gone): blocks, not sizes (HDF5 files have holes)."""
    if not folder.is_dir():
        return 0
    stats = [p.stat() for p in folder.rglob("*") if p.is_file()]
    return sum(getattr(s, "st_blocks", s.st_size // 512) * 512 for s in stats)


def _write_pack(manifest: Manifest, folder: Path, sample_rate: int, clips_per_shard: int, workers: int,
                progress: bool, labels: str | Path | None) -> PackReport:
    from tqdm import tqdm

    start = time.perf_counter()
    classes = list(manifest.classes)
    shards: list[dict[str, Any]] = []
    skipped: list[PackSkip] = []
    writer: _ShardWriter | None = None
    bar = tqdm(total=len(manifest), desc="pack", unit="clip", disable=not progress)
    # when a write fails, the shard is aborted and then the decoding workers are shut down: here, in that order,
    # not whenever the traceback that holds them is freed
    decoded = _decoded(manifest.clips, sample_rate, workers)
    try:
        for clip, result in decoded:
            bar.update()
            if isinstance(result, str):
                warn_skipped(clip.clip_id, result)
                skipped.append(PackSkip(clip.clip_id, "" if clip.audio_path is None else str(clip.audio_path), result))
                continue
            if writer is None:
                writer = _ShardWriter(folder / SHARD_NAME.format(len(shards)), classes, sample_rate)
            writer.add(clip, result)
            if len(writer) == clips_per_shard:
                shards.append(writer.close())
                writer = None
        if writer is not None:
            shards.append(writer.close())
            writer = None
    finally:
        if writer is not None:
            writer.abort()
        decoded.close()
        bar.close()
    packed = sum(s["clips"] for s in shards)
    write_table(folder / SKIPPED_TSV, ["clip_id", "audio_path", "reason"],
                [[s.clip_id, s.audio_path, s.reason] for s in skipped], delimiter="\t")
    write_json(folder / PACK_JSON, {
        "format": PACK_FORMAT, "version": PACK_VERSION, "sample_rate": sample_rate,
        "dtype": "int16", "int16_scale": INT16_SCALE, "labels": None if labels is None else str(labels),
        "classes": classes, "clips": packed, "skipped": len(skipped), "skipped_file": SKIPPED_TSV,
        "shards": shards,
    })
    return PackReport(folder, sample_rate, packed, shards, skipped, time.perf_counter() - start)
