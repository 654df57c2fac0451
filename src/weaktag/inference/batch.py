"""Tagging many files: discovery of inputs, batched tagging, output files and a run summary.

:func:`tag_files` is what ``weaktag tag`` runs.
"""

from __future__ import annotations

import glob
import os
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..audio import AUDIO_SUFFIXES
from ..settings import check_fields
from .settings import TaggingConfig
from ..files import json_lines, write_json, write_text_atomic
from ..stopping import Stopped, sigterm_raises_stopped
from .engine import Tagger
from .results import TagFailure, TagResult, TagSelection
from .timeline import TimelineWriter
from .writers import NpzWriter, TagTables, timeline_filename, write_tag_tables


def discover_inputs(inputs: Sequence[str | Path]) -> tuple[list[tuple[Path, str]], list[TagFailure]]:
    """Files to tag from file paths, folders (searched recursively for audio suffixes) and glob patterns.

    Returns ``(path, name)`` pairs, where the name is what output tables call the file: its path
    relative to the deepest folder that holds every file found (:func:`input_root`), so the same
    files get the same names whether they were given as a folder, a glob or (absolute) paths.
    Arguments that match nothing come back as failures, named as given. Hidden files and files
    without an audio suffix inside folders are not considered; files named explicitly always are.
    """
    found: list[Path] = []
    failures: list[TagFailure] = []
    seen: set[Path] = set()

    def add(path: Path) -> None:
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            found.append(path)

    for arg in inputs:
        arg = str(arg)
        path = Path(arg)
        if path.is_dir():
            files = sorted(f for f in path.rglob("*") if f.is_file() and f.suffix.lower() in AUDIO_SUFFIXES
                           and not any(part.startswith(".") for part in f.relative_to(path).parts))
            if not files:
                failures.append(TagFailure(arg, f"no audio files ({' '.join(AUDIO_SUFFIXES)}) in this folder"))
            for f in files:
                add(f)
        elif path.exists():
            add(path)
        elif glob.has_magic(arg):
            matches = [Path(m) for m in sorted(glob.glob(arg, recursive=True)) if not Path(m).is_dir()]
            if not matches:
                failures.append(TagFailure(arg, "no file matches this pattern"))
            for m in matches:
                add(m)
        else:
            failures.append(TagFailure(arg, "file not found"))
    root = input_root(found)
    return [(f, _name(f, root)) for f in found], failures


def input_root(files: Sequence[Path]) -> Path | None:
    """The deepest folder holding every file (absolute, ``..`` resolved, links kept); None when there is
    none but the file system's root (or, on Windows, the files are on different drives)."""
    if not files:
        return None
    try:
        root = Path(os.path.commonpath([os.path.dirname(os.path.abspath(f)) for f in files]))
    except ValueError:  # different drives
        return None
    return None if root == Path(root.anchor) else root


def _name(path: Path, root: Path | None) -> str:
    absolute = Path(os.path.abspath(path))
    return absolute.as_posix() if root is None else absolute.relative_to(root).as_posix()


@dataclass
class TagRunSummary:
    """What a :func:`tag_files` run did. ``interrupted``: the signal that stopped it early ("SIGINT",
    "SIGTERM"), None for a run that went through; ``not_done``: files found but not tagged then."""

    files: int
    ok: int
    failed: int
    audio_seconds: float
    wall_seconds: float
    events: int
    backend: str
    failures: list[TagFailure] = field(default_factory=list)
    outputs: dict[str, str] = field(default_factory=dict)
    interrupted: str | None = None
    not_done: int = 0
    input_root: str | None = None

    @property
    def status(self) -> str:
        return "interrupted" if self.interrupted else "complete"

    @property
    def speed(self) -> float | None:
        """Seconds of audio tagged per second of wall time (x real time); None when nothing was tagged."""
        return self.audio_seconds / self.wall_seconds if self.wall_seconds > 0 and self.audio_seconds > 0 else None

    @property
    def real_time_factor(self) -> float | None:
        """Wall time / audio time (below 1 is faster than real time); None when nothing was tagged."""
        return self.wall_seconds / self.audio_seconds if self.audio_seconds > 0 else None

    def to_dict(self) -> dict:
        speed, rtf = self.speed, self.real_time_factor
        return {"status": self.status, "interrupted_by": self.interrupted,
                "files": self.files, "ok": self.ok, "failed": self.failed, "not_done": self.not_done,
                "audio_seconds": round(self.audio_seconds, 3), "audio_hours": round(self.audio_seconds / 3600, 6),
                "wall_seconds": round(self.wall_seconds, 3),
                "speed_x_real_time": None if speed is None else round(speed, 2),
                "real_time_factor": None if rtf is None else round(rtf, 6), "events": self.events,
                "backend": self.backend, "filenames_relative_to": self.input_root,
                "failures": [{"filename": f.source, "reason": f.reason} for f in self.failures],
                "outputs": self.outputs}

    def text(self) -> str:
        if self.audio_seconds > 0:
            audio = (f"{self.audio_seconds / 3600:.3f} h of audio in {self.wall_seconds:.1f} s "
                     f"({self.speed:.0f}x real time, real-time factor {self.real_time_factor:.4f})")
        else:  # nothing tagged: a speed would be 0x and a real-time factor NaN
            audio = f"no audio tagged ({self.wall_seconds:.1f} s)"
        lines = [f"tagged {self.ok} of {self.files + self.not_done} file(s), {self.failed} failed; {audio}; "
                 f"{self.events} event(s); backend {self.backend}"]
        for f in self.failures[:10]:
            lines.append(f"  failed: {f.source}: {f.reason}")
        if len(self.failures) > 10:
            lines.append(f"  ... and {len(self.failures) - 10} more (see errors.tsv)")
        for kind, path in self.outputs.items():
            lines.append(f"  {kind}: {path}")
        return "\n".join(lines)


def tag_files(tagger: Tagger, inputs: Sequence[str | Path], out_dir: str | Path | None = None, *,
              top_k: int | None = None, select: TagSelection | None = None, timeline: bool = False,
              segments: str | Path | bool | None = None, json_path: str | Path | None = None, progress: bool = True,
              on_result: Callable[[TagResult], None] | None = None,
              timeline_workers: int | None = None) -> TagRunSummary:
    """What ``weaktag tag`` does: find files, tag them in batches, write the outputs, summarise.

    With ``out_dir``: ``tags.csv`` and ``tags.json`` (selected clip tags), ``events.tsv``
    (DCASE: filename onset offset event_label score, then clip_above_threshold; with header; not
    with a tagger made with ``detect_events=False``), ``errors.tsv`` (filename, reason),
    ``summary.json``; ``timelines/<name>.png`` with ``timeline``; ``segments.npz``
    with ``segments=True`` (or at the path ``segments`` names): per file ``<name>/clip_probs``,
    ``<name>/segment_probs`` and, for attention models, ``<name>/attention`` and
    ``<name>/attention_raw``, plus ``classes`` and ``segment_seconds``. Rows follow the order
    of the inputs. Bad files are reported, never fatal. ``top_k`` and ``select`` default to the
    tagger's settings. Timelines are drawn in ``timeline_workers`` processes beside the tagging
    (0: in this process; None: one per CPU core, at most 4).

    The tables are streamed as files finish (flushed; ``summary.json`` says ``"status": "running"``
    meanwhile), so even a killed run leaves the finished files' rows. Ctrl-C (KeyboardInterrupt)
    or SIGTERM stops the run: the finished files' outputs are written in input order, and the
    summary's ``interrupted`` names the signal. An output that cannot be written (a full disk)
    raises OSError naming it; summary.json then still says "running".
    """
    started = time.perf_counter()
    settings = tagging_settings(tagger, top_k, select)
    top_k, select = settings.top_k, settings.select
    out = None if out_dir is None else Path(out_dir)
    if timeline and out is None:
        raise ValueError("timelines need an output folder (out_dir)")
    if segments is True:
        if out is None:
            raise ValueError("segments=True needs an output folder; give a path instead")
        segments = out / "segments.npz"
    found, failures = discover_inputs(inputs)
    paths = [p for p, _ in found]
    names = [n for _, n in found]
    root = input_root(paths)
    summary = TagRunSummary(files=0, ok=0, failed=0, audio_seconds=0.0, wall_seconds=0.0, events=0,
                            backend=tagger.backend, input_root=None if root is None else str(root))
    tables = npz = None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        for stale in ("summary.json", "tags.json"):  # a previous run's: never beside this run's tables
            (out / stale).unlink(missing_ok=True)
        write_json(out / "summary.json", {"status": "running", "files_found": len(found) + len(failures)})
        tables = TagTables(out, events=tagger.detect_events)
    timeline_dir = None
    timelines: TimelineWriter | None = None
    bar = None
    rows: dict[int, dict] = {}
    failed_at: dict[int, TagFailure] = {}

    def start_bar(expected: float) -> None:
        # the total comes from the headers the tagger has just read (in its workers, when it has them)
        nonlocal bar
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=round(expected, 1), unit="s", unit_scale=True, desc="tagging", file=sys.stderr,
                       dynamic_ncols=True,
                       bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} s audio [{elapsed}<{remaining}{postfix}]")

    def advance(seconds: float) -> None:
        if bar is not None:
            bar.update(seconds)

    try:
        if tables is not None:
            for failure in failures:
                tables.add_failure(failure)
        npz = NpzWriter(Path(segments)) if segments else None
        if npz is not None:
            npz.add("classes", np.array(tagger.classes))
            npz.add("segment_seconds", np.array(tagger.grid.segment_seconds))
        if timeline:
            timeline_dir = out / "timelines"
            timeline_dir.mkdir(parents=True, exist_ok=True)
            workers = default_timeline_workers() if timeline_workers is None else timeline_workers
            timelines = TimelineWriter(workers, top_k=min(top_k, 8), event_settings=tagger.event_settings)
        with sigterm_raises_stopped(only_if_default=True):
            try:
                for i, result in tagger.iter_tag(paths, names, progress=advance, on_total=start_bar):
                    if isinstance(result, TagFailure):
                        if tables is not None:
                            tables.add_failure(result)
                        failed_at[i] = result
                    else:
                        row = result.to_dict(top_k, select)
                        _write_result(result, row, tables, npz, timelines, timeline_dir)
                        summary.audio_seconds += result.duration
                        summary.events += len(result.events)
                        rows[i] = row
                        if on_result is not None:
                            on_result(result)
                    if bar is not None:
                        failed = len(failed_at) + len(failures)
                        bar.set_postfix_str(f"{len(rows)} ok, {failed} failed", refresh=False)
            except KeyboardInterrupt as exc:
                summary.interrupted = Stopped.of(exc).signal_name
        if bar is not None and bar.n < bar.total and not summary.interrupted:
            # the total came from the headers; files that failed never credit theirs, and a bar
            # left at 97% reads as a run that stopped early
            bar.total = bar.n
            bar.refresh()
        if timelines is not None:  # every PNG written (or a drawing's error raised) before the summary
            timelines.close(raise_errors=not summary.interrupted)
    finally:
        if timelines is not None:  # after an error above: stop the workers, the error is the news
            timelines.close(raise_errors=False)
        if bar is not None:
            bar.close()
        if tables is not None:
            tables.close()
        if npz is not None:
            npz.close()
    failures = failures + [failed_at[i] for i in sorted(failed_at)]
    ordered = [rows[i] for i in sorted(rows)]
    summary.ok, summary.failed, summary.failures = len(rows), len(failures), failures
    summary.files = len(rows) + len(failures)
    summary.not_done = len(found) - len(rows) - len(failed_at)
    summary.wall_seconds = time.perf_counter() - started
    if json_path is not None:
        write_text_atomic(json_path, json_lines(ordered))
        summary.outputs["json"] = str(json_path)
    if npz is not None:
        summary.outputs["segments"] = str(segments)
    if out is not None:
        write_tag_tables(out, ordered, failures, events=tagger.detect_events)
        summary.outputs.update({"tags": str(out / "tags.csv"), "tags_json": str(out / "tags.json")})
        if tagger.detect_events:
            summary.outputs["events"] = str(out / "events.tsv")
        summary.outputs.update({"errors": str(out / "errors.tsv"), "summary": str(out / "summary.json")})
        if timeline_dir is not None:
            summary.outputs["timelines"] = str(timeline_dir)
        summary.wall_seconds = time.perf_counter() - started
        info = summary.to_dict()
        info["settings"] = {"checkpoint": str(tagger.checkpoint.path) if tagger.checkpoint.path else None,
                            "top_k": top_k, "select": select, "events": tagger.event_settings.to_dict(),
                            "events_for": tagger.events_for,
                            "median_filter_segments": [int(x) for x in tagger.median_filter_segments],
                            "chunk_seconds": tagger.chunk_segments * tagger.grid.segment_seconds,
                            "context_seconds": tagger.context_segments * tagger.grid.segment_seconds,
                            "batch_size": tagger.batch_size, "skip_silent": tagger.skip_silent,
                            "device": str(tagger.device), "decode_workers": tagger.settings.decode_workers}
        write_json(out / "summary.json", info)  # last: its "complete" vouches for the files above
    return summary


def tagging_settings(tagger: Tagger, top_k: int | None, select: str | None) -> TaggingConfig:
    """The tagger's settings with ``top_k`` and ``select`` (when given) over them, range-checked."""
    settings = replace(tagger.settings, **{k: v for k, v in (("top_k", top_k), ("select", select)) if v is not None})
    check_fields(settings, "tagging settings")
    return settings


def default_timeline_workers() -> int:
    """Processes drawing timelines: one per core, at most 4; none (draw here) on a single core."""
    cores = os.cpu_count() or 1
    return min(4, cores) if cores > 1 else 0


def _write_result(result: TagResult, row: dict, tables: TagTables | None, npz: NpzWriter | None,
                  timelines: TimelineWriter | None, timeline_dir: Path | None) -> None:
    """One finished file's rows, matrices and timeline."""
    if tables is not None:
        tables.add(row)
    if npz is not None:
        npz.add(f"{result.source}/clip_probs", result.clip_probs)
        npz.add(f"{result.source}/segment_probs", result.segment_probs)
        if result.attention is not None:
            npz.add(f"{result.source}/attention", result.attention)
            npz.add(f"{result.source}/attention_raw", result.attention_raw)
    if timelines is not None and timeline_dir is not None:
        timelines.submit(result, timeline_dir / timeline_filename(result.source))
