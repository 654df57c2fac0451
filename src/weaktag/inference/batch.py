"""Tagging many files: discovery of inputs, batched tagging, output files and a run summary.

:func:`tag_files` is what ``weaktag tag`` runs.
"""

from __future__ import annotations

import glob
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..audio import AUDIO_SUFFIXES
from ..files import json_lines, write_json, write_text_atomic
from .engine import Tagger
from .results import TagFailure, TagResult, TagSelection
from .timeline import TimelineWriter
from .writers import NpzWriter, timeline_filename, write_tag_tables


def discover_inputs(inputs: Sequence[str | Path]) -> tuple[list[tuple[Path, str]], list[TagFailure]]:
    """Files to tag from file paths, folders (searched recursively for audio suffixes) and glob patterns.

    Returns ``(path, name)`` pairs, where the name is what output tables call the file: the
    path relative to the folder for files found in a folder, the path as given otherwise.
    Arguments that match nothing come back as failures. Hidden files and files without an
    audio suffix inside folders are not considered; files named explicitly always are.
    """
    found: list[tuple[Path, str]] = []
    failures: list[TagFailure] = []
    seen: set[Path] = set()
    names: set[str] = set()

    def add(path: Path, name: str) -> None:
        key = path.resolve()
        if key in seen:
            return
        seen.add(key)
        if name in names:
            name = str(path)
        names.add(name)
        found.append((path, name))

    for arg in inputs:
        arg = str(arg)
        path = Path(arg)
        if path.is_dir():
            files = sorted(f for f in path.rglob("*") if f.is_file() and f.suffix.lower() in AUDIO_SUFFIXES
                           and not any(part.startswith(".") for part in f.relative_to(path).parts))
            if not files:
                failures.append(TagFailure(arg, f"no audio files ({' '.join(AUDIO_SUFFIXES)}) in this folder"))
            for f in files:
                add(f, f.relative_to(path).as_posix())
        elif path.exists():
            add(path, arg)
        elif glob.has_magic(arg):
            matches = [Path(m) for m in sorted(glob.glob(arg, recursive=True)) if not Path(m).is_dir()]
            if not matches:
                failures.append(TagFailure(arg, "no file matches this pattern"))
            for m in matches:
                add(m, str(m))
        else:
            failures.append(TagFailure(arg, "file not found"))
    return found, failures


@dataclass
class TagRunSummary:
    """What a :func:`tag_files` run did."""

    files: int
    ok: int
    failed: int
    audio_seconds: float
    wall_seconds: float
    events: int
    backend: str
    failures: list[TagFailure] = field(default_factory=list)
    outputs: dict[str, str] = field(default_factory=dict)

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
        return {"files": self.files, "ok": self.ok, "failed": self.failed,
                "audio_seconds": round(self.audio_seconds, 3), "audio_hours": round(self.audio_seconds / 3600, 6),
                "wall_seconds": round(self.wall_seconds, 3),
                "speed_x_real_time": None if speed is None else round(speed, 2),
                "real_time_factor": None if rtf is None else round(rtf, 6), "events": self.events,
                "backend": self.backend,
                "failures": [{"filename": f.source, "reason": f.reason} for f in self.failures],
                "outputs": self.outputs}

    def text(self) -> str:
        if self.audio_seconds > 0:
            audio = (f"{self.audio_seconds / 3600:.3f} h of audio in {self.wall_seconds:.1f} s "
                     f"({self.speed:.0f}x real time, real-time factor {self.real_time_factor:.4f})")
        else:  # nothing tagged: a speed would be 0x and a real-time factor NaN
            audio = f"no audio tagged ({self.wall_seconds:.1f} s)"
        lines = [f"tagged {self.ok} of {self.files} file(s), {self.failed} failed; {audio}; "
                 f"{self.events} event(s); backend {self.backend}"]
        for f in self.failures[:10]:
            lines.append(f"  failed: {f.source}: {f.reason}")
        if len(self.failures) > 10:
            lines.append(f"  ... and {len(self.failures) - 10} more (see errors.tsv)")
        for kind, path in self.outputs.items():
            lines.append(f"  {kind}: {path}")
        return "\n".join(lines)


def default_timeline_workers() -> int:
    """Processes drawing timelines: one per core, at most 4; none (draw here) on a single core."""
    cores = os.cpu_count() or 1
    return min(4, cores) if cores > 1 else 0


def tag_files(tagger: Tagger, inputs: Sequence[str | Path], out_dir: str | Path | None = None, *, top_k: int = 5,
              select: TagSelection = "union", timeline: bool = False, segments: str | Path | bool | None = None,
              json_path: str | Path | None = None, progress: bool = True,
              on_result: Callable[[TagResult], None] | None = None,
              timeline_workers: int | None = None) -> TagRunSummary:
    """What ``weaktag tag`` does: find files, tag them in batches, write the outputs, summarise.

    With ``out_dir``: ``tags.csv`` and ``tags.json`` (selected clip tags), ``events.tsv``
    (DCASE: filename onset offset event_label score, with header; not with a tagger made with
    ``detect_events=False``), ``errors.tsv`` (filename,
    reason), ``summary.json``; ``timelines/<name>.png`` with ``timeline``; ``segments.npz``
    with ``segments=True`` (or at the path ``segments`` names): per file ``<name>/clip_probs``,
    ``<name>/segment_probs`` and, for attention models, ``<name>/attention`` and
    ``<name>/attention_raw``, plus ``classes`` and ``segment_seconds``. Rows follow the order
    of the inputs. Bad files are reported, never fatal. Timelines are drawn in ``timeline_workers``
    processes beside the tagging (0: in this process; None: one per CPU core, at most 4).
    """
    started = time.perf_counter()
    out = None if out_dir is None else Path(out_dir)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    if timeline and out is None:
        raise ValueError("timelines need an output folder (out_dir)")
    if segments is True:
        if out is None:
            raise ValueError("segments=True needs an output folder; give a path instead")
        segments = out / "segments.npz"
    found, failures = discover_inputs(inputs)
    paths = [p for p, _ in found]
    names = [n for _, n in found]
    npz = NpzWriter(Path(segments)) if segments else None
    if npz is not None:
        npz.add("classes", np.array(tagger.classes))
        npz.add("segment_seconds", np.array(tagger.grid.segment_seconds))
    timeline_dir = None
    timelines: TimelineWriter | None = None
    if timeline:
        timeline_dir = out / "timelines"
        timeline_dir.mkdir(parents=True, exist_ok=True)
        workers = default_timeline_workers() if timeline_workers is None else timeline_workers
        timelines = TimelineWriter(workers, top_k=min(top_k, 8) or 3, event_settings=tagger.event_settings)
    bar = None

    def start_bar(expected: float) -> None:
        # the total comes from the headers the tagger has just read (in its workers, when it has them)
        nonlocal bar
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=round(expected, 1), unit="s", unit_scale=True, desc="tagging", file=sys.stderr,
                       dynamic_ncols=True,
                       bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} s audio [{elapsed}<{remaining}{postfix}]")

    rows: dict[int, dict] = {}
    failed_at: dict[int, TagFailure] = {}
    audio_seconds = 0.0
    n_events = 0
    try:
        def advance(seconds: float) -> None:
            if bar is not None:
                bar.update(seconds)

        for i, result in tagger.iter_tag(paths, names, progress=advance, on_total=start_bar):
            if isinstance(result, TagFailure):
                failed_at[i] = result
            else:
                audio_seconds += result.duration
                n_events += len(result.events)
                rows[i] = result.to_dict(top_k, select)
                if npz is not None:
                    npz.add(f"{result.source}/clip_probs", result.clip_probs)
                    npz.add(f"{result.source}/segment_probs", result.segment_probs)
                    if result.attention is not None:
                        npz.add(f"{result.source}/attention", result.attention)
                        npz.add(f"{result.source}/attention_raw", result.attention_raw)
                if timelines is not None:
                    timelines.submit(result, timeline_dir / timeline_filename(result.source))
                if on_result is not None:
                    on_result(result)
            if bar is not None:
                bar.set_postfix_str(f"{len(rows)} ok, {len(failed_at) + len(failures)} failed", refresh=False)
        if bar is not None and bar.n < bar.total:
            # the total came from the headers; files that failed never credit theirs, and a bar
            # left at 97% reads as a run that stopped early
            bar.total = bar.n
            bar.refresh()
        if timelines is not None:  # every PNG written (or a drawing's error raised) before the summary
            timelines.close()
    finally:
        if timelines is not None:
            timelines.close()
        if bar is not None:
            bar.close()
        if npz is not None:
            npz.close()
    failures = failures + [failed_at[i] for i in sorted(failed_at)]
    ordered = [rows[i] for i in sorted(rows)]
    summary = TagRunSummary(files=len(rows) + len(failures), ok=len(rows), failed=len(failures),
                            audio_seconds=audio_seconds, wall_seconds=time.perf_counter() - started, events=n_events,
                            backend=tagger.backend, failures=failures)
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
                            "median_filter_segments": [int(x) for x in tagger.median_filter_segments],
                            "chunk_seconds": tagger.chunk_segments * tagger.grid.segment_seconds,
                            "context_seconds": tagger.context_segments * tagger.grid.segment_seconds,
                            "batch_size": tagger.batch_size, "skip_silent": tagger.skip_silent,
                            "device": str(tagger.device), "decode_workers": tagger.settings.decode_workers}
        write_json(out / "summary.json", info)
    return summary
