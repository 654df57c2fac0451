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
from typing import Any, Callable, Sequence

import numpy as np

from ..audio import AUDIO_SUFFIXES
from ..errors import UsageError
from ..settings import check_fields
from .settings import TaggingConfig
from ..files import json_lines, write_json, write_text_atomic
from ..stopping import Stopped, sigterm_raises_stopped
from .engine import Tagger
from .report import REPORT_FILE, ReportWriter, run_header
from .results import FileTags, TagFailure, TagResult, TagSelection
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
              timeline_workers: int | None = None, scores: str | Path | None = None,
              report: bool = False) -> TagRunSummary:
    """What ``weaktag tag`` does: find files, tag them in batches, write the outputs, summarise.

    With ``out_dir``: ``tags.csv`` and ``tags.json`` (selected clip tags), ``events.tsv``
    (DCASE: filename onset offset event_label score, then clip_above_threshold; with header; not
    with a tagger made with ``detect_events=False``), ``errors.tsv`` (filename, reason),
    ``summary.json``; ``timelines/<name>.png`` with ``timeline``; ``report.html`` with ``report`` (one
    self-contained page to listen and see: :mod:`weaktag.inference.report`); ``segments.npz``
    with ``segments=True`` (or at the path ``segments`` names): per file ``<name>/clip_probs``,
    ``<name>/segment_probs`` and, for attention models, ``<name>/attention`` and
    ``<name>/attention_raw``, plus ``classes`` and ``segment_seconds``. Rows follow the order
    of the inputs. Bad files are reported, never fatal. ``top_k`` and ``select`` default to the
    tagger's settings. With ``scores`` (a folder): per file, the segment scores of the tagger's event
    output as a sed_scores_eval table ``<audio id>.tsv`` (:mod:`weaktag.metrics.score_tables`).
    Timelines are drawn in ``timeline_workers`` processes beside the tagging
    (0: in this process; None: one per CPU core, at most 4).

    The tables are streamed as files finish (flushed; ``summary.json`` says ``"status": "running"``
    meanwhile), so even a killed run leaves the finished files' rows. Ctrl-C (KeyboardInterrupt)
    or SIGTERM stops the run: the finished files' outputs are written in input order, and the
    summary's ``interrupted`` names the signal. An output that cannot be written (a full disk)
    raises OSError naming it; summary.json then still says "running".
    """
    started = time.perf_counter()
    settings = tagging_settings(tagger, top_k, select)
    out = None if out_dir is None else Path(out_dir)
    segments = _segments_path(out, timeline, segments)
    if report and out is None:
        raise UsageError("the HTML report needs an output folder (out_dir)")
    found, failures = discover_inputs(inputs)
    root = input_root([p for p, _ in found])
    summary = TagRunSummary(files=0, ok=0, failed=0, audio_seconds=0.0, wall_seconds=0.0, events=0,
                            backend=tagger.backend, input_root=None if root is None else str(root))
    if out is not None:
        _start_output_folder(out, len(found) + len(failures))
    run = _TagRun(tagger, settings, summary, on_result, None if scores is None else Path(scores))
    try:
        run.open(out, segments, timeline, timeline_workers, failures, report)
        run.tag(found, _ProgressBar() if progress else None)
        if run.report is not None:
            summary.outputs["report"] = str(run.finish_report(failures))
    finally:
        run.close()
    tagged = [run.tagged[i] for i in sorted(run.tagged)]
    failures = failures + [run.failed_at[i] for i in sorted(run.failed_at)]
    summary.ok, summary.failed, summary.failures = len(tagged), len(failures), failures
    summary.files = len(tagged) + len(failures)
    summary.not_done = len(found) - len(run.tagged) - len(run.failed_at)
    summary.wall_seconds = time.perf_counter() - started
    if json_path is not None:
        write_text_atomic(json_path, json_lines([file.to_json() for file in tagged]))
        summary.outputs["json"] = str(json_path)
    if segments:
        summary.outputs["segments"] = str(segments)
    if scores is not None:
        summary.outputs["scores"] = str(scores)
    if out is not None:
        _finish_output_folder(out, tagger, settings, summary, tagged, failures, run.timeline_dir, started)
    return summary


def _segments_path(out: Path | None, timeline: bool, segments: str | Path | bool | None) -> str | Path | None:
    """Where segments.npz goes (None: nowhere); timelines and ``segments=True`` need an output folder."""
    if timeline and out is None:
        raise UsageError("timelines need an output folder (out_dir)")
    if segments is True:
        if out is None:
            raise UsageError("segments=True needs an output folder; give a path instead")
        return out / "segments.npz"
    return segments or None


def _start_output_folder(out: Path, files_found: int) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for stale in ("summary.json", "tags.json"):  # a previous run's: never beside this run's tables
        (out / stale).unlink(missing_ok=True)
    write_json(out / "summary.json", {"status": "running", "files_found": files_found})


def _finish_output_folder(out: Path, tagger: Tagger, settings: TaggingConfig, summary: TagRunSummary,
                          tagged: list[FileTags], failures: list[TagFailure], timeline_dir: Path | None,
                          started: float) -> None:
    """The tables rewritten in input order, then ``summary.json`` (last: its "complete" vouches for the rest)."""
    write_tag_tables(out, tagged, failures, events=tagger.settings.detect_events)
    summary.outputs.update({"tags": str(out / "tags.csv"), "tags_json": str(out / "tags.json")})
    if tagger.settings.detect_events:
        summary.outputs["events"] = str(out / "events.tsv")
    summary.outputs.update({"errors": str(out / "errors.tsv"), "summary": str(out / "summary.json")})
    if timeline_dir is not None:
        summary.outputs["timelines"] = str(timeline_dir)
    summary.wall_seconds = time.perf_counter() - started
    write_json(out / "summary.json", {**summary.to_dict(), "settings": run_settings(tagger, settings)})


def run_settings(tagger: Tagger, settings: TaggingConfig) -> dict[str, Any]:
    """How a tagger tagged, as ``summary.json`` records it: its checkpoint, tag selection, event settings
    and chunking (in seconds, as whole segments)."""
    segment = tagger.grid.segment_seconds
    return {"checkpoint": str(tagger.checkpoint.path) if tagger.checkpoint.path else None,
            "top_k": settings.top_k, "select": settings.select, "events": tagger.event_settings.to_dict(),
            "events_for": tagger.settings.events_for,
            "median_filter_segments": [int(x) for x in tagger.decisions.decoding.median_filter_segments],
            "chunk_seconds": tagger.plan.chunk_segments * segment,
            "context_seconds": tagger.plan.context_segments * segment,
            "batch_size": tagger.settings.batch_size, "skip_silent": tagger.settings.skip_silent,
            "device": str(tagger.device),
            "decode_workers": settings.decode_workers}


class _ProgressBar:
    """Seconds of audio tagged, on stderr; its total comes from the headers the tagger has just read."""

    def __init__(self) -> None:
        self.bar: Any = None

    def start(self, expected: float) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(total=round(expected, 1), unit="s", unit_scale=True, desc="tagging", file=sys.stderr,
                        dynamic_ncols=True,
                        bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} s audio [{elapsed}<{remaining}{postfix}]")

    def advance(self, seconds: float) -> None:
        if self.bar is not None:
            self.bar.update(seconds)

    def counts(self, ok: int, failed: int) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(f"{ok} ok, {failed} failed", refresh=False)

    def finish(self) -> None:
        # the total came from the headers; files that failed never credit theirs, and a bar
        # left at 97% reads as a run that stopped early
        if self.bar is not None and self.bar.n < self.bar.total:
            self.bar.total = self.bar.n
            self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class _TagRun:
    """One :func:`tag_files` run's streamed outputs, and what it has tagged so far, by input position."""

    def __init__(self, tagger: Tagger, settings: TaggingConfig, summary: TagRunSummary,
                 on_result: Callable[[TagResult], None] | None, scores: Path | None = None) -> None:
        self.tagger, self.settings, self.summary, self.on_result = tagger, settings, summary, on_result
        self.scores = scores  # a folder of sed_scores_eval tables, one per file
        self.tables: TagTables | None = None
        self.npz: NpzWriter | None = None
        self.timelines: TimelineWriter | None = None
        self.timeline_dir: Path | None = None
        self.report: ReportWriter | None = None
        self.paths: list[Path] = []  # the files found, by input position
        self.bar: _ProgressBar | None = None
        self.tagged: dict[int, FileTags] = {}
        self.failed_at: dict[int, TagFailure] = {}
        self.unmatched = 0  # inputs that matched no file

    def open(self, out: Path | None, segments: str | Path | None, timeline: bool, timeline_workers: int | None,
             failures: list[TagFailure], report: bool = False) -> None:
        """The streamed tables (with the inputs that matched nothing), segments.npz, the timeline workers and
        the report's rows."""
        tagger, self.unmatched = self.tagger, len(failures)
        if out is not None:
            self.tables = TagTables(out, events=tagger.settings.detect_events)
            for failure in failures:
                self.tables.add_failure(failure)
        if segments:
            self.npz = NpzWriter(Path(segments))
            self.npz.add("classes", np.array(tagger.classes))
            self.npz.add("segment_seconds", np.array(tagger.grid.segment_seconds))
        if timeline and out is not None:
            self.timeline_dir = out / "timelines"
            self.timeline_dir.mkdir(parents=True, exist_ok=True)
            workers = default_timeline_workers() if timeline_workers is None else timeline_workers
            self.timelines = TimelineWriter(workers, top_k=min(self.settings.top_k, 8),
                                            event_settings=tagger.event_settings)
        if report and out is not None:
            self.report = ReportWriter(out / REPORT_FILE, tagger.classes, tagger.event_settings,
                                       top_k=min(self.settings.top_k, 8))

    def tag(self, found: list[tuple[Path, str]], bar: _ProgressBar | None) -> None:
        """Tag every file, writing each one's outputs as it finishes; Ctrl-C or SIGTERM ends it early."""
        self.bar, self.paths = bar, [p for p, _ in found]
        on_total = bar.start if bar is not None else None
        advance = bar.advance if bar is not None else None
        with sigterm_raises_stopped(only_if_default=True):
            try:
                for i, result in self.tagger.iter_tag([p for p, _ in found], [n for _, n in found],
                                                      progress=advance, on_total=on_total):
                    self._add(i, result)
            except KeyboardInterrupt as exc:
                self.summary.interrupted = Stopped.of(exc).signal_name
        if bar is not None and not self.summary.interrupted:
            bar.finish()
        if self.timelines is not None:  # every PNG written (or a drawing's error raised) before the summary
            self.timelines.close(raise_errors=not self.summary.interrupted)

    def _add(self, i: int, result: TagResult | TagFailure) -> None:
        if isinstance(result, TagFailure):
            if self.tables is not None:
                self.tables.add_failure(result)
            self.failed_at[i] = result
        else:
            file = result.file_tags(self.settings.top_k, self.settings.select)
            self._write(i, result, file)
            self.summary.audio_seconds += result.duration
            self.summary.events += len(result.events)
            self.tagged[i] = file
            if self.on_result is not None:
                self.on_result(result)
        if self.bar is not None:
            self.bar.counts(len(self.tagged), len(self.failed_at) + self.unmatched)

    def _write(self, i: int, result: TagResult, file: FileTags) -> None:
        """One finished file's rows, matrices, timeline and report row."""
        if self.tables is not None:
            self.tables.add(file)
        if self.npz is not None:
            self.npz.add(f"{result.source}/clip_probs", result.clip_probs)
            self.npz.add(f"{result.source}/segment_probs", result.segment_probs)
            if result.attention is not None:
                self.npz.add(f"{result.source}/attention", result.attention)
                self.npz.add(f"{result.source}/attention_raw", result.attention_raw)
        if self.scores is not None:
            from ..metrics.score_tables import write_score_table  # lazy: tagging alone loads no label readers

            write_score_table(self.scores, result.source, result.scores(self.tagger.event_settings.output),
                              result.classes, result.segment_seconds, result.duration)
        if self.timelines is not None and self.timeline_dir is not None:
            self.timelines.submit(result, self.timeline_dir / timeline_filename(result.source))
        if self.report is not None:
            self.report.add(i, self.paths[i], result, file)

    def finish_report(self, unmatched: list[TagFailure]) -> Path:
        """report.html: the files tagged so far, in input order, and those that failed."""
        assert self.report is not None
        failures = unmatched + [self.failed_at[i] for i in sorted(self.failed_at)]
        checkpoint = self.tagger.checkpoint.path
        return self.report.finish(failures, run_header(None if checkpoint is None else str(checkpoint),
                                                       self.tagger.event_settings.output, len(self.tagged),
                                                       len(failures)))

    def close(self) -> None:
        """After an error: the timeline workers stopped (the error is the news); the files closed either way."""
        if self.timelines is not None:
            self.timelines.close(raise_errors=False)
        if self.bar is not None:
            self.bar.close()
        if self.tables is not None:
            self.tables.close()
        if self.npz is not None:
            self.npz.close()
        if self.report is not None:
            self.report.close()


def tagging_settings(tagger: Tagger, top_k: int | None, select: str | None) -> TaggingConfig:
    """The tagger's settings with ``top_k`` and ``select`` (when given) over them, range-checked."""
    settings = replace(tagger.settings, **{k: v for k, v in (("top_k", top_k), ("select", select)) if v is not None})
    check_fields(settings, "tagging settings")
    return settings


def default_timeline_workers() -> int:
    """Processes drawing timelines: one per core, at most 4; none (draw here) on a single core."""
    cores = os.cpu_count() or 1
    return min(4, cores) if cores > 1 else 0
