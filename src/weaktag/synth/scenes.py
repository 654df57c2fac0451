"""Soundscape synthesis: clips whose event onsets/offsets are known to the millisecond.

Weak-label training needs many clips, and judging localisation (attention maps, frame
outputs) needs strong labels that are true to the audio. ``synthesize`` mixes isolated
events over a background at a random event-to-background ratio and writes::

    out_dir/audio/<clip_id>.wav   16 kHz mono PCM16 (config.sample_rate)
    out_dir/strong.tsv            DCASE strong labels (filename onset offset event_label)
    out_dir/weak.tsv              DCASE weak labels (filename event_labels)
    out_dir/manifest.jsonl        the returned Manifest (clips carry events AND labels)
    out_dir/sources.tsv           provenance of every event: strong columns plus
                                  ``source`` (file relative to the sources folder, or
                                  ``generated``) and ``source_start`` (seconds into it)

Event sounds are either generated here (offline, deterministic from the seed; see
``GENERATED_CLASSES``) or real recordings from a folder: ``<class>/<file>`` (like ESC-10)
or flat, class = file stem without trailing digits (like DCASE 2016 task 2). Real sources
are trimmed of leading/trailing silence by energy so that the labelled extent is the sound.

Every clip is drawn from its own random stream ``SeedSequence([seed, split, index])``, so
a clip depends only on the seed, the split name and its index.
"""

from __future__ import annotations

import csv
import os
import re
import threading
import warnings
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Mapping

import numpy as np
import soundfile as sf

from ..audio import AUDIO_SUFFIXES, SAMPLE_RATE, AudioError, load_audio, warn_skipped
from ..errors import DataError, UsageError
from ..files import write_table
from ..labels.dcase import write_dcase_strong_tsv, write_dcase_weak_tsv
from ..labels.manifest import Clip, Event, Manifest
from .generated import GENERATED_CLASSES, _generated_background, generate_event

PEAK_LIMIT = 0.9  # the mix is scaled down to this peak when it would exceed it
FADE_SECONDS = 0.005  # raised-cosine fade on placed events, against clicks at cut points
TRIM_FRAME_SECONDS = 0.02
ACTIVE_DB = 20.0  # frames within this of the loudest frame define an event's level for the SNR
SILENT_DBFS = -80.0  # a source whose loudest frame is below this is treated as silent
SOURCES_TSV = "sources.tsv"
MAX_WORKERS = 4  # clips are rendered in threads (numpy, soxr and libsndfile release the GIL)
GENERATED_SOURCE = "generated"


@dataclass(frozen=True)
class SynthConfig:
    """What to synthesize; every random choice derives from ``seed``."""

    num_clips: int = 100
    clip_seconds: float = 10.0
    min_events: int = 1
    max_events: int = 3
    snr_db: tuple[float, float] = (0.0, 15.0)  # event (active RMS) to background (RMS) ratio range
    seed: int = 0
    sample_rate: int = SAMPLE_RATE
    background_only_prob: float = 0.0  # chance that a clip has no event at all
    background_dbfs: tuple[float, float] = (-40.0, -30.0)  # background RMS level range
    trim_db: float = 35.0  # real sources keep frames within this many dB of their loudest frame

    def __post_init__(self) -> None:
        if self.num_clips < 0:
            raise UsageError(f"num_clips must be >= 0, got {self.num_clips}")
        if self.seed < 0:
            raise UsageError(f"seed must be >= 0 (it seeds numpy's SeedSequence), got {self.seed}")
        if not self.clip_seconds > 0:
            raise UsageError(f"clip_seconds must be > 0, got {self.clip_seconds}")
        if not 0 <= self.min_events <= self.max_events:
            raise UsageError(f"need 0 <= min_events <= max_events, got {self.min_events}, {self.max_events}")
        for name in ("snr_db", "background_dbfs"):
            low, high = getattr(self, name)
            if not low <= high:
                raise UsageError(f"{name} must be (low, high) with low <= high, got {(low, high)}")
        if self.background_dbfs[1] > 0:
            raise UsageError(f"background_dbfs must be <= 0 dBFS, got {self.background_dbfs}")
        if self.sample_rate < 8000:
            raise UsageError(f"sample_rate must be >= 8000, got {self.sample_rate}")
        if not 0.0 <= self.background_only_prob <= 1.0:
            raise UsageError(f"background_only_prob must be in [0, 1], got {self.background_only_prob}")
        if not self.trim_db > 0:
            raise UsageError(f"trim_db must be > 0, got {self.trim_db}")

    @property
    def clip_samples(self) -> int:
        return int(round(self.clip_seconds * self.sample_rate))


# --------------------------------------------------------------------------- trimming and levels


def _frame_rms(audio: np.ndarray, frame: int) -> np.ndarray:
    """RMS of consecutive ``frame``-sample frames; a trailing partial frame counts its own samples."""
    n_frames = max(1, -(-len(audio) // frame))
    padded = np.zeros(n_frames * frame, dtype=np.float64)
    padded[: len(audio)] = audio
    counts = np.full(n_frames, frame, dtype=np.float64)
    counts[-1] = len(audio) - (n_frames - 1) * frame
    return np.sqrt((padded.reshape(n_frames, frame) ** 2).sum(axis=1) / np.maximum(counts, 1))


def trim_bounds(audio: np.ndarray, sample_rate: int = SAMPLE_RATE, threshold_db: float = 35.0,
                frame_seconds: float = TRIM_FRAME_SECONDS) -> tuple[int, int]:
    """Sample range ``[start, end)`` from the first to the last frame within ``threshold_db`` of
    the loudest frame, so that a placed source's labelled extent is the sound, not its padding.

    Returns ``(0, 0)`` for an all-zero or empty signal.
    """
    if len(audio) == 0:
        return 0, 0
    frame = max(1, int(round(frame_seconds * sample_rate)))
    rms = _frame_rms(audio, frame)
    peak = float(rms.max())
    if peak <= 0.0:
        return 0, 0
    active = np.flatnonzero(rms >= peak * 10 ** (-threshold_db / 20))
    return int(active[0]) * frame, min(len(audio), (int(active[-1]) + 1) * frame)


def trim_silence(audio: np.ndarray, sample_rate: int = SAMPLE_RATE, threshold_db: float = 35.0,
                 frame_seconds: float = TRIM_FRAME_SECONDS) -> np.ndarray:
    """``audio`` without its leading/trailing near-silence (see :func:`trim_bounds`)."""
    start, end = trim_bounds(audio, sample_rate, threshold_db, frame_seconds)
    return audio[start:end]


def _active_rms(sound: np.ndarray, sr: int) -> float:
    """RMS over the frames within ``ACTIVE_DB`` of the loudest, so sparse sounds (clicks, knocks)
    are levelled by what is heard, not diluted by their gaps."""
    rms = _frame_rms(sound, max(1, int(TRIM_FRAME_SECONDS * sr)))
    loud = rms[rms >= rms.max() * 10 ** (-ACTIVE_DB / 20)]
    return float(np.sqrt(np.mean(loud**2)))


def _fade(sound: np.ndarray, sr: int) -> np.ndarray:
    n_fade = min(int(FADE_SECONDS * sr), len(sound) // 4)
    if n_fade > 0:
        ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(n_fade) / n_fade)
        sound = sound.copy()
        sound[:n_fade] *= ramp
        sound[len(sound) - n_fade :] *= ramp[::-1]
    return sound


# --------------------------------------------------------------------------- source discovery


def _is_audio(path: Path) -> bool:
    return path.is_file() and not path.name.startswith(".") and path.suffix.lower() in AUDIO_SUFFIXES


def _flat_label(stem: str) -> str:
    """``cough012`` -> ``cough``, ``dog_bark_01`` -> ``dog_bark``."""
    return re.sub(r"[\d\s_.\-]+$", "", stem)


def discover_sources(sources: str | Path) -> dict[str, list[Path]]:
    """Class -> audio files under ``sources``.

    Sub-folders holding audio are class folders (``<class>/<file>``, searched recursively);
    without any, the folder is flat and the class is the file stem without trailing digits.
    """
    root = Path(sources)
    if not root.is_dir():
        raise FileNotFoundError(f"sources folder not found: {root}")
    by_folder: dict[str, list[Path]] = {}
    for sub in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = sorted(f for f in sub.rglob("*") if _is_audio(f))
        if files:
            by_folder[sub.name] = files
    if by_folder:
        loose = [f for f in root.iterdir() if _is_audio(f)]
        if loose:
            warnings.warn(f"{root}: using class folders; ignoring {len(loose)} audio files directly in it", stacklevel=2)
        return by_folder
    flat: dict[str, list[Path]] = {}
    for f in sorted(p for p in root.iterdir() if _is_audio(p)):
        label = _flat_label(f.stem)
        if not label:
            warn_skipped(f, "file name gives no class (flat layout: class = stem without trailing digits)")
            continue
        flat.setdefault(label, []).append(f)
    if not flat:
        raise DataError(f"no audio files ({', '.join(AUDIO_SUFFIXES)}) found under {root}")
    return flat


def class_names(sources: str | Path | None = None) -> list[str]:
    """The classes :func:`synthesize` draws from: the generated ones, or the source folder's."""
    if sources is None:
        return list(GENERATED_CLASSES)
    return sorted(discover_sources(sources))


# --------------------------------------------------------------------------- banks (cached audio)


@dataclass
class _SourceBank:
    """Event sounds of each class: generated, or real files loaded, trimmed and cached on first use."""

    files: dict[str, list[Path]] | None  # None: generated sounds
    root: Path | None
    sample_rate: int
    trim_db: float
    cache: dict[Path, tuple[np.ndarray, int] | None] = field(default_factory=dict)
    locks: dict[Path, threading.Lock] = field(default_factory=dict)

    @property
    def classes(self) -> list[str]:
        return list(GENERATED_CLASSES) if self.files is None else sorted(self.files)

    def _load(self, path: Path) -> tuple[np.ndarray, int] | None:
        """Trimmed audio and its start sample in the file, or None (warned once) when unusable."""
        with self.locks.setdefault(path, threading.Lock()):  # setdefault is atomic: one load per file
            if path not in self.cache:
                self.cache[path] = self._load_uncached(path)
        return self.cache[path]

    def _load_uncached(self, path: Path) -> tuple[np.ndarray, int] | None:
        try:
            audio = load_audio(path, self.sample_rate)
        except AudioError as exc:
            warn_skipped(path, exc.reason)
            return None
        start, end = trim_bounds(audio, self.sample_rate, self.trim_db)
        trimmed = audio[start:end]
        frame = max(1, int(TRIM_FRAME_SECONDS * self.sample_rate))
        if end <= start or _frame_rms(trimmed, frame).max() < 10 ** (SILENT_DBFS / 20):
            warn_skipped(path, f"silent (loudest 20 ms frame below {SILENT_DBFS:g} dBFS)")
            return None
        return trimmed, start

    def draw(self, label: str, rng: np.random.Generator, max_samples: int) -> tuple[np.ndarray, str, float]:
        """A sound of ``label``, its provenance (relative path or ``generated``) and start (s) in it.

        An unusable file is replaced by another drawn from the rest, so a clip depends only on
        which files are usable, not on the order in which clips are made.
        """
        if self.files is None:
            return generate_event(label, rng, self.sample_rate, max_samples / self.sample_rate), GENERATED_SOURCE, 0.0
        candidates = list(self.files[label])
        while candidates:
            path = candidates.pop(int(rng.integers(len(candidates))))
            loaded = self._load(path)
            if loaded is not None:
                audio, start = loaded
                name = path.relative_to(self.root).as_posix() if self.root is not None else str(path)
                return audio, name, start / self.sample_rate
        raise DataError(f"no usable source file for class {label!r} under {self.root}")


@dataclass
class _BackgroundBank:
    """Backgrounds: generated noise, or random excerpts (looped if short) of real recordings."""

    files: list[Path] | None
    sample_rate: int
    cache: dict[Path, np.ndarray | None] = field(default_factory=dict)
    locks: dict[Path, threading.Lock] = field(default_factory=dict)

    def _load(self, path: Path) -> np.ndarray | None:
        with self.locks.setdefault(path, threading.Lock()):
            if path not in self.cache:
                self.cache[path] = self._load_uncached(path)
        return self.cache[path]

    def _load_uncached(self, path: Path) -> np.ndarray | None:
        try:
            audio = load_audio(path, self.sample_rate)
        except AudioError as exc:
            warn_skipped(path, exc.reason)
            return None
        if np.sqrt(np.mean(audio.astype(np.float64) ** 2)) < 10 ** (SILENT_DBFS / 20):
            warn_skipped(path, f"background is silent (RMS below {SILENT_DBFS:g} dBFS)")
            return None
        return audio

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` float32 samples with RMS 1."""
        if self.files is None:
            return _generated_background(rng, n, self.sample_rate)
        candidates = list(self.files)
        while candidates:
            audio = self._load(candidates.pop(int(rng.integers(len(candidates)))))
            if audio is None:
                continue
            if len(audio) < n:
                audio = np.tile(audio, -(-n // len(audio)) + 1)
            start = int(rng.integers(len(audio) - n + 1))
            excerpt = audio[start : start + n]
            rms = float(np.sqrt(np.mean(excerpt.astype(np.float64) ** 2)))
            if rms < 10 ** (SILENT_DBFS / 20):  # a silent stretch of a usable file: level by the file
                rms = float(np.sqrt(np.mean(audio.astype(np.float64) ** 2)))
            return excerpt * np.float32(1.0 / rms)
        raise DataError("no usable background file among: " + ", ".join(str(f) for f in self.files))


def _background_bank(backgrounds: str | Path | None, sample_rate: int) -> _BackgroundBank:
    if backgrounds is None:
        return _BackgroundBank(None, sample_rate)
    root = Path(backgrounds)
    if root.is_file():
        return _BackgroundBank([root], sample_rate)
    if not root.is_dir():
        raise FileNotFoundError(f"backgrounds folder not found: {root}")
    files = sorted(f for f in root.rglob("*") if _is_audio(f))
    if not files:
        raise DataError(f"no audio files ({', '.join(AUDIO_SUFFIXES)}) found under {root}")
    return _BackgroundBank(files, sample_rate)


def _source_bank(sources: str | Path | None, config: SynthConfig) -> _SourceBank:
    if sources is None:
        return _SourceBank(None, None, config.sample_rate, config.trim_db)
    return _SourceBank(discover_sources(sources), Path(sources), config.sample_rate, config.trim_db)


# --------------------------------------------------------------------------- mixing


@dataclass(frozen=True)
class _Placed:
    event: Event
    source: str
    source_start: float


def _split_key(split: str | None) -> int:
    return 0 if split is None else zlib.crc32(split.encode()) + 1


def _make_clip(index: int, config: SynthConfig, split: str | None, bank: _SourceBank,
               background_bank: _BackgroundBank) -> tuple[np.ndarray, list[_Placed]]:
    """One mixed clip (float32) and its placed events, from its own random stream."""
    rng = np.random.default_rng(np.random.SeedSequence([config.seed, _split_key(split), index]))
    sr, n = config.sample_rate, config.clip_samples
    background_rms = 10 ** (rng.uniform(*config.background_dbfs) / 20)
    mix = background_bank.draw(rng, n) * np.float32(background_rms)
    placed: list[_Placed] = []
    n_events = 0 if rng.random() < config.background_only_prob else int(rng.integers(config.min_events, config.max_events + 1))
    classes = bank.classes
    for _ in range(n_events):
        label = classes[int(rng.integers(len(classes)))]
        sound, source, source_start = bank.draw(label, rng, n)
        if len(sound) <= n:
            start = int(rng.integers(n - len(sound) + 1))
        else:  # longer than the clip: start in its first half and cut at the clip's end
            start = int(rng.integers(n // 2 + 1))
            sound = sound[: n - start]
        snr = rng.uniform(*config.snr_db)
        gain = background_rms * 10 ** (snr / 20) / max(_active_rms(sound, sr), 1e-12)
        mix[start : start + len(sound)] += (gain * _fade(sound.astype(np.float64), sr)).astype(np.float32)
        onset, offset = round(start / sr, 3), round((start + len(sound)) / sr, 3)
        placed.append(_Placed(Event(label, onset, offset), source, round(source_start, 3)))
    peak = float(np.max(np.abs(mix)))
    if peak > PEAK_LIMIT:
        mix *= np.float32(PEAK_LIMIT / peak)
    return mix, placed


def _write_sources_tsv(path: Path, rows: list[tuple[str, _Placed]]) -> None:
    write_table(path, ["filename", "onset", "offset", "event_label", "source", "source_start"],
                [[name, f"{p.event.onset:.3f}", f"{p.event.offset:.3f}", p.event.label, p.source,
                  f"{p.source_start:.3f}"] for name, p in rows], delimiter="\t")


def read_sources_tsv(path: str | Path) -> list[dict[str, str]]:
    """Rows of a ``sources.tsv`` (which source file each event came from), as dicts of strings."""
    with Path(path).open(newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def _synthesize(out_dir: Path, config: SynthConfig, bank: _SourceBank, background_bank: _BackgroundBank,
                split: str | None) -> Manifest:
    audio_dir = (out_dir / "audio").resolve()
    audio_dir.mkdir(parents=True, exist_ok=True)
    prefix = split if split else "synth"

    def render(index: int) -> tuple[Path, list[_Placed]]:
        mix, placed = _make_clip(index, config, split, bank, background_bank)
        audio_path = audio_dir / f"{prefix}_{index:05d}.wav"
        sf.write(str(audio_path), mix, config.sample_rate, subtype="PCM_16")
        return audio_path, sorted(placed, key=lambda p: (p.event.onset, p.event.label))

    workers = max(1, min(MAX_WORKERS, os.cpu_count() or 1, config.num_clips))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        rendered = list(pool.map(render, range(config.num_clips)))
    clips: list[Clip] = []
    provenance: list[tuple[str, _Placed]] = []
    for audio_path, placed in rendered:
        events = tuple(p.event for p in placed)
        duration = config.clip_samples / config.sample_rate
        clips.append(Clip(audio_path.stem, audio_path, frozenset(e.label for e in events), events, duration))
        provenance.extend((audio_path.name, p) for p in placed)
    manifest = Manifest(clips, bank.classes)
    write_dcase_strong_tsv(out_dir / "strong.tsv", manifest)
    write_dcase_weak_tsv(out_dir / "weak.tsv", manifest)
    manifest.to_jsonl(out_dir / "manifest.jsonl")
    _write_sources_tsv(out_dir / SOURCES_TSV, provenance)
    return manifest


def synthesize(out_dir: str | Path, config: SynthConfig, sources: str | Path | None = None,
               backgrounds: str | Path | None = None, split: str | None = None) -> Manifest:
    """Write ``config.num_clips`` soundscapes with exact strong labels under ``out_dir``.

    ``sources``: folder of real event recordings (class folders or flat); None = generated
    sounds. ``backgrounds``: folder (or file) of real recordings to excerpt; None = generated
    noise. ``split`` names the clips (``<split>_00000``) and enters the seed, so splits made
    with one config differ. Returns the manifest (clips have ``events`` and ``labels``; its
    class list is :func:`class_names`, including classes no clip happened to draw).
    """
    return _synthesize(Path(out_dir), config, _source_bank(sources, config),
                       _background_bank(backgrounds, config.sample_rate), split)


def _allocate(num_files: int, weights: list[int]) -> list[int]:
    """Split ``num_files`` in proportion to ``weights``, at least one to each non-zero weight."""
    active = [i for i, w in enumerate(weights) if w > 0]
    counts = [0] * len(weights)
    for i in active:
        counts[i] = 1
    remaining = num_files - len(active)
    total = sum(weights)
    shares = {i: remaining * weights[i] / total for i in active}
    for i in active:
        counts[i] += int(shares[i])
    leftover = num_files - sum(counts)
    for i in sorted(active, key=lambda i: (-(shares[i] - int(shares[i])), i))[:leftover]:
        counts[i] += 1
    return counts


def synthesize_splits(out_dir: str | Path, splits: dict[str, int], config: SynthConfig,
                      sources: str | Path | None = None,
                      backgrounds: str | Path | Mapping[str, str | Path] | None = None,
                      sources_from: Mapping[str, str] | None = None) -> dict[str, Manifest]:
    """Synthesize ``{"train": 600, "test": 300, ...}`` into ``out_dir/<split>/``.

    Each split has its own random stream (the split name enters the seed). With real
    ``sources`` each class's files are partitioned across the splits in proportion to their
    sizes, so test events are unseen recordings; ``sources.tsv`` in each split says which.
    ``backgrounds``: one folder (or file) shared by every split (different random excerpts), or
    ``{split: folder or file}`` naming every split, so that splits hear different recordings.
    ``sources_from``: ``{split: other split}``: that split takes no part in the partition and draws
    from the other's source files (a second test set from the test-side recordings,
    ``{"test_final": "test"}``; more clips from the training side, ``{"unlabeled": "train"}``).
    """
    for name, count in splits.items():
        if not name or "/" in name or "\\" in name or name in (".", ".."):
            raise UsageError(f"bad split name {name!r}")
        if count < 0:
            raise UsageError(f"split {name!r} has a negative clip count {count}")
    sources_from = dict(sources_from or {})
    _check_sources_from(splits, sources_from)
    out_dir = Path(out_dir)
    background_banks = _split_background_banks(splits, backgrounds, config.sample_rate)
    names = list(splits)
    if sources is None:
        banks = {name: _source_bank(None, config) for name in names}
    else:
        own = [name for name in names if name not in sources_from]  # the splits the files are partitioned over
        files = discover_sources(sources)
        needed = sum(1 for name in own if splits[name] > 0)
        short = {label: len(paths) for label, paths in files.items() if len(paths) < needed}
        if short:
            raise DataError(f"cannot give {needed} splits disjoint source files: too few files for {short}")
        rng = np.random.default_rng(np.random.SeedSequence([config.seed, zlib.crc32(b"partition")]))
        per_split: dict[str, dict[str, list[Path]]] = {name: {} for name in own}
        for label in sorted(files):
            shuffled = [files[label][i] for i in rng.permutation(len(files[label]))]
            counts = _allocate(len(shuffled), [splits[name] for name in own])
            start = 0
            for name, count in zip(own, counts):
                per_split[name][label] = sorted(shuffled[start : start + count])
                start += count
        shared_cache: dict[Path, tuple[np.ndarray, int] | None] = {}
        banks = {name: _SourceBank(per_split[sources_from.get(name, name)], Path(sources), config.sample_rate,
                                   config.trim_db, shared_cache)
                 for name in names}
    return {name: _synthesize(out_dir / name, replace(config, num_clips=splits[name]), banks[name],
                              background_banks[name], name)
            for name in names}


def _check_sources_from(splits: dict[str, int], sources_from: dict[str, str]) -> None:
    """Each borrowing split and the split it borrows from are splits; no chains; a lender has clips."""
    for name, lender in sources_from.items():
        if name not in splits or lender not in splits:
            raise UsageError(f"sources_from {name!r}: {lender!r}: both must be among the splits {list(splits)}")
        if lender == name or lender in sources_from:
            raise UsageError(f"sources_from {name!r}: {lender!r}: a split borrows the files of a split that has "
                             "its own")
        if splits[name] > 0 and splits[lender] == 0:
            raise UsageError(f"sources_from {name!r}: {lender!r}: split {lender!r} has no clips, so no files")


def _split_background_banks(splits: dict[str, int], backgrounds: str | Path | Mapping[str, str | Path] | None,
                            sample_rate: int) -> dict[str, _BackgroundBank]:
    """Each split's background bank: one shared by all, or one per split (splits naming one path share it)."""
    if not isinstance(backgrounds, Mapping):
        bank = _background_bank(backgrounds, sample_rate)
        return {name: bank for name in splits}
    missing = [name for name in splits if name not in backgrounds]
    extra = [name for name in backgrounds if name not in splits]
    if missing or extra:
        raise UsageError(f"backgrounds per split must name every split exactly: missing {missing}, unknown {extra}")
    by_path: dict[Path, _BackgroundBank] = {}
    for name in splits:
        path = Path(backgrounds[name]).resolve()
        if path not in by_path:
            by_path[path] = _background_bank(path, sample_rate)
    return {name: by_path[Path(backgrounds[name]).resolve()] for name in splits}
