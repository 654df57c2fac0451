"""One HTML page per tagging run (``weaktag tag --report``): listen and see at once.

A row per file: its tags, an audio player, and an inline SVG timeline: the log-mel spectrogram with the
detected events drawn over it as boxes (one band per class shown), the event scores of those classes
under it with their thresholds dashed, and a playhead that follows the player. Clicking an event plays
the file from its onset; clicking elsewhere on the timeline plays from there. Under the files, a table
of every tag (file, class, probability, threshold, tagged, events) that sorts by any column.

The page is self-contained, so it opens offline and can be mailed as one file: the audio is embedded
as base64 Ogg Vorbis (mono, :data:`REPORT_SAMPLE_RATE`; about 5 kB a second, 7 kB in base64, against 32 kB
for 16-bit WAV at 16 kHz), the spectrogram as a base64 PNG, and the script and styles inline (no CDN, nothing
fetched). Rows are kept on disk while the run goes on, one file each, and the page is assembled in
input order at the end (atomically), so a run of many files never holds their audio in memory.
"""

from __future__ import annotations

import base64
import html
import io
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import PIL.Image
import soundfile as sf
from matplotlib import colormaps

from ..audio import AudioError, iter_audio_blocks
from ..files import atomic_path, naming
from ..postprocess import EventSettings
from ..version import weaktag_version
from .results import ClipTag, FileTags, TagFailure, TagResult
from .timeline import shown_classes

logger = logging.getLogger(__name__)

#: the rate of the audio embedded in the page (enough to hear what was tagged, at a fraction of the size)
REPORT_SAMPLE_RATE = 22_050
REPORT_FILE = "report.html"
#: timeline size in SVG units (it scales to the page width); score curves keep at most this many points
WIDTH, SPECTROGRAM_HEIGHT, SCORES_HEIGHT, AXIS_HEIGHT = 1000.0, 160.0, 80.0, 18.0
MAX_CURVE_POINTS = 1500
#: matplotlib's default colour cycle (C0-C9), as the PNG timelines colour their classes
COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf")


@dataclass(frozen=True)
class ReportRow:
    """One tagged file as the report shows it."""

    name: str
    audio: bytes  # Ogg Vorbis; empty when the file could not be read again
    result: TagResult
    tags: FileTags


def embedded_audio(path: str | Path, sample_rate: int = REPORT_SAMPLE_RATE) -> bytes:
    """``path`` decoded (streamed) to mono at ``sample_rate`` and encoded as Ogg Vorbis, for the page."""
    buffer = io.BytesIO()
    with sf.SoundFile(buffer, "w", samplerate=sample_rate, channels=1, format="OGG", subtype="VORBIS") as ogg:
        for block in iter_audio_blocks(path, sample_rate, allow_silent=True):
            ogg.write(np.clip(block, -1.0, 1.0))
    return buffer.getvalue()


def spectrogram_png(spectrogram: np.ndarray, max_columns: int = int(WIDTH)) -> bytes:
    """The (bands, columns) log-mel as a PNG in matplotlib's magma (a palette image: one byte a pixel),
    low bands at the bottom; averaged down to at most ``max_columns`` columns (the timeline's width)."""
    pool = max(1, int(np.ceil(spectrogram.shape[1] / max_columns)))
    if pool > 1:
        padded = np.pad(spectrogram, ((0, 0), (0, (-spectrogram.shape[1]) % pool)), mode="edge")
        spectrogram = padded.reshape(spectrogram.shape[0], -1, pool).mean(axis=2)
    low, high = np.percentile(spectrogram, [1, 99.5]) if spectrogram.size else (0.0, 1.0)
    scaled = np.clip((spectrogram - low) / max(float(high - low), 1e-6), 0.0, 1.0)
    image = PIL.Image.fromarray(np.round(scaled[::-1] * 255).astype(np.uint8), mode="P")
    image.putpalette((colormaps["magma"](np.arange(256))[:, :3] * 255).astype(np.uint8).ravel().tolist())
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


class ReportWriter:
    """Collects the rows of ``path`` (report.html) as files finish, and writes the page at :meth:`finish`.

    ``top_k`` and ``max_classes``: the classes each timeline shows (as the PNG timelines choose them);
    ``event_settings``: the tagger's, whose output kind and thresholds the score curves show."""

    def __init__(self, path: str | Path, classes: Sequence[str], event_settings: EventSettings, top_k: int = 3,
                 max_classes: int = 8, title: str = "weaktag tag") -> None:
        self.path = Path(path)
        self.classes, self.settings = list(classes), event_settings
        self.top_k, self.max_classes, self.title = top_k, max_classes, title
        self.rows_dir = self.path.parent / f".{self.path.name}.rows"
        shutil.rmtree(self.rows_dir, ignore_errors=True)  # an interrupted earlier run's
        self.rows_dir.mkdir(parents=True)
        self.tag_rows: dict[int, list[str]] = {}

    def add(self, index: int, audio_path: str | Path, result: TagResult, tags: FileTags) -> None:
        """File ``index`` (its input position) tagged: its row, with its audio read again for the player."""
        try:
            audio = embedded_audio(audio_path)
        except AudioError as exc:  # changed or removed since it was tagged: the row without its player
            logger.warning("report: no player for %s (%s)", result.source, exc)
            audio = b""
        row = ReportRow(result.source, audio, result, tags)
        with naming(self.path):  # a full disk names the report
            (self.rows_dir / f"{index}.html").write_text(self._file_row(index, row))
        self.tag_rows[index] = [_tag_row(index, tags, t) for t in tags.tags]

    def finish(self, failures: Sequence[TagFailure], header: dict[str, str]) -> Path:
        """The page: ``header`` (name -> value lines about the run), the files in input order, the tag table
        and the files that failed; written atomically, then the kept rows removed."""
        order = sorted(self.tag_rows)
        with atomic_path(self.path) as tmp, open(tmp, "w", encoding="utf-8") as page:
            page.write(_HEAD.replace("{title}", html.escape(self.title)))
            page.write("<dl class=\"run\">" + "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>"
                                                     for k, v in header.items()) + "</dl>\n")
            page.write("<h2>Files</h2>\n<table id=\"files\" class=\"files\"><thead><tr><th>file</th>"
                       "<th>listen and see</th></tr></thead><tbody>\n")
            for index in order:
                page.write((self.rows_dir / f"{index}.html").read_text())
            page.write("</tbody></table>\n<h2>Tags</h2>\n<p class=\"note\">Click a column's name to sort by it "
                       "(again: the other way).</p>\n<table id=\"tags\" class=\"sortable\"><thead><tr>"
                       + "".join(f"<th data-type=\"{kind}\">{name}</th>" for name, kind in _TAG_COLUMNS)
                       + "</tr></thead><tbody>\n")
            page.writelines(line for index in order for line in self.tag_rows[index])
            page.write("</tbody></table>\n")
            if failures:
                page.write("<h2>Not tagged</h2>\n<ul class=\"failures\">" + "".join(
                    f"<li>{html.escape(f.source)}: {html.escape(f.reason)}</li>" for f in failures) + "</ul>\n")
            page.write(_SCRIPT + "</body>\n</html>\n")
        self.close()
        return self.path

    def close(self) -> None:
        """The kept rows removed (after :meth:`finish`, or instead of it after an error)."""
        shutil.rmtree(self.rows_dir, ignore_errors=True)

    def _file_row(self, index: int, row: ReportRow) -> str:
        result, tags = row.result, row.tags
        audio_id = f"audio{index}"
        chips = "".join(f"<li class=\"{'tagged' if t.above_threshold else 'below'}\">{html.escape(t.label)} "
                        f"{t.probability:.2f}</li>" for t in tags.tags)
        source = f" src=\"data:audio/ogg;base64,{base64.b64encode(row.audio).decode('ascii')}\"" if row.audio else ""
        return (f"<tr id=\"file{index}\"><td class=\"name\"><b>{html.escape(row.name)}</b><br>{result.duration:.2f} s, "
                f"{len(result.events)} event(s)<ul class=\"chips\">{chips}</ul></td><td>"
                f"<audio id=\"{audio_id}\" controls preload=\"metadata\"{source}></audio>\n"
                f"{self._timeline(result, audio_id)}</td></tr>\n")

    def _timeline(self, result: TagResult, audio_id: str) -> str:
        """The SVG: spectrogram with event boxes in one band per class shown, score curves, time axis."""
        shown = shown_classes(result, self.top_k, self.max_classes)
        duration = max(result.duration, result.num_segments * result.segment_seconds, 1e-3)
        x = WIDTH / duration  # SVG units per second
        height = SPECTROGRAM_HEIGHT + SCORES_HEIGHT + AXIS_HEIGHT
        parts = [f"<svg class=\"timeline\" viewBox=\"0 0 {WIDTH:g} {height:g}\" data-audio=\"{audio_id}\" "
                 f"data-duration=\"{duration:.6f}\" data-width=\"{WIDTH:g}\" role=\"img\" "
                 f"aria-label=\"timeline of {html.escape(result.source)}\">"]
        spec = result.spectrogram
        if spec is not None and spec.size:
            png = base64.b64encode(spectrogram_png(spec)).decode("ascii")
            parts.append(f"<image class=\"spectrogram\" x=\"0\" y=\"0\" width=\"{spec.shape[1] * result.spectrogram_hop * x:.2f}\" "
                         f"height=\"{SPECTROGRAM_HEIGHT:g}\" preserveAspectRatio=\"none\" href=\"data:image/png;base64,{png}\"/>")
        else:
            parts.append(f"<rect x=\"0\" y=\"0\" width=\"{WIDTH:g}\" height=\"{SPECTROGRAM_HEIGHT:g}\" fill=\"#222\"/>"
                         f"<text x=\"8\" y=\"20\" fill=\"#ddd\">spectrogram not kept</text>")
        band = SPECTROGRAM_HEIGHT / max(1, len(shown))
        scores = result.scores(self.settings.output)
        thresholds = self.settings.thresholds_for(result.classes)
        for k, c in enumerate(shown):
            colour, label, top = COLOURS[k % len(COLOURS)], result.classes[c], k * band
            parts.append(f"<text class=\"lane\" x=\"4\" y=\"{top + 12:.1f}\" fill=\"{colour}\">{html.escape(label)}</text>")
            for e in (e for e in result.events if e.label == label):
                parts.append(
                    f"<rect class=\"event\" x=\"{e.onset * x:.2f}\" y=\"{top + 2:.1f}\" "
                    f"width=\"{max((e.offset - e.onset) * x, 1.0):.2f}\" height=\"{band - 4:.1f}\" stroke=\"{colour}\" "
                    f"fill=\"{colour}\" data-onset=\"{e.onset:.3f}\" data-offset=\"{e.offset:.3f}\" "
                    f"data-label=\"{html.escape(label)}\"><title>{html.escape(label)} {e.onset:.2f}-{e.offset:.2f} s, "
                    f"score {e.score:.2f} (click to play)</title></rect>")
            parts.append(_curve(scores[c], result.segment_seconds * x, colour))
            level = SPECTROGRAM_HEIGHT + SCORES_HEIGHT * (1 - float(thresholds[c]))
            parts.append(f"<line class=\"threshold\" x1=\"0\" x2=\"{WIDTH:g}\" y1=\"{level:.1f}\" y2=\"{level:.1f}\" "
                         f"stroke=\"{colour}\" stroke-dasharray=\"6 4\"><title>{html.escape(label)} threshold "
                         f"{float(thresholds[c]):.2f}</title></line>")
        parts += _axis(duration, x)
        parts.append(f"<line class=\"playhead\" x1=\"0\" x2=\"0\" y1=\"0\" y2=\"{SPECTROGRAM_HEIGHT + SCORES_HEIGHT:g}\"/>")
        return "".join(parts) + "</svg>"


def _curve(scores: np.ndarray, step: float, colour: str) -> str:
    """A class's segment scores as a step curve under the spectrogram (max-pooled to MAX_CURVE_POINTS, so
    a peak never disappears from an hour's curve)."""
    pool = max(1, int(np.ceil(len(scores) / MAX_CURVE_POINTS)))
    padded = np.pad(scores, (0, (-len(scores)) % pool), constant_values=-np.inf) if len(scores) else np.zeros(1)
    pooled = padded.reshape(-1, pool).max(axis=1)
    points = []
    for t, value in enumerate(pooled):
        y = SPECTROGRAM_HEIGHT + SCORES_HEIGHT * (1 - float(value))
        points += [f"{t * pool * step:.2f},{y:.1f}", f"{(t + 1) * pool * step:.2f},{y:.1f}"]
    return f"<polyline class=\"score\" fill=\"none\" stroke=\"{colour}\" points=\"{' '.join(points)}\"/>"


def _axis(duration: float, x: float) -> list[str]:
    step = next(s for s in (0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600, float("inf"))
                if duration / s <= 12)
    y = SPECTROGRAM_HEIGHT + SCORES_HEIGHT + AXIS_HEIGHT - 4
    ticks = np.arange(0.0, duration + 1e-9, step) if np.isfinite(step) else np.zeros(1)
    return [f"<text class=\"tick\" x=\"{t * x:.1f}\" y=\"{y:.1f}\">{t:g} s</text>" for t in ticks[:-1] if t * x < WIDTH - 30]


_TAG_COLUMNS = (("file", "text"), ("class", "text"), ("probability", "number"), ("threshold", "number"),
                ("tagged", "text"), ("events", "number"), ("rank", "number"))


def _tag_row(index: int, tags: FileTags, tag: ClipTag) -> str:
    events = sum(e.label == tag.label for e in tags.events)
    cells = [f"<a href=\"#file{index}\">{html.escape(tags.source)}</a>", html.escape(tag.label),
             f"{tag.probability:.4f}", f"{tag.threshold:.4f}", "yes" if tag.above_threshold else "no", str(events),
             str(tag.rank)]
    return "<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>\n"


def run_header(checkpoint: str | None, event_output: str, files: int, failed: int) -> dict[str, str]:
    """The lines above the files: what tagged them and how many."""
    return {"checkpoint": checkpoint or "(in memory)", "event scores": event_output,
            "files": f"{files} tagged, {failed} not tagged", "written by": f"weaktag {weaktag_version()}"}


_HEAD = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
dl.run { display: grid; grid-template-columns: max-content auto; gap: 0.2em 1em; }
dt { font-weight: bold; } dd { margin: 0; }
table { border-collapse: collapse; width: 100%; }
td, th { border-bottom: 1px solid #ddd; padding: 0.4em; vertical-align: top; text-align: left; }
table.files td.name { width: 16em; word-break: break-all; }
table.sortable th { cursor: pointer; user-select: none; background: #f4f4f4; }
table.sortable th.up::after { content: " \\25B2"; } table.sortable th.down::after { content: " \\25BC"; }
ul.chips { list-style: none; padding: 0; margin: 0.4em 0 0; }
ul.chips li { display: inline-block; margin: 0.1em; padding: 0.05em 0.4em; border-radius: 0.6em; font-size: 90%; }
li.tagged { background: #cde8c6; } li.below { background: #eee; color: #666; }
audio { width: 100%; max-width: 1000px; display: block; }
svg.timeline { width: 100%; max-width: 1000px; display: block; cursor: pointer; background: #fff; }
svg .event { fill-opacity: 0.25; stroke-width: 2; }
svg .event:hover { fill-opacity: 0.5; }
svg .lane { font-size: 11px; font-weight: bold; paint-order: stroke; stroke: #000; stroke-width: 2px; }
svg .tick { font-size: 11px; fill: #444; }
svg .score { stroke-width: 1.5; }
svg .playhead { stroke: #0af; stroke-width: 2; }
.note { color: #666; }
</style>
</head>
<body>
<h1>{title}</h1>
"""

_SCRIPT = """<script>
(function () {
  document.querySelectorAll("svg.timeline").forEach(function (svg) {
    var audio = document.getElementById(svg.dataset.audio);
    var duration = parseFloat(svg.dataset.duration), width = parseFloat(svg.dataset.width);
    var head = svg.querySelector(".playhead");
    svg.addEventListener("click", function (event) {
      var box = event.target.closest(".event"), time;
      if (box) {
        time = parseFloat(box.dataset.onset);
      } else {
        var point = svg.createSVGPoint();
        point.x = event.clientX; point.y = event.clientY;
        time = Math.max(0, point.matrixTransform(svg.getScreenCTM().inverse()).x / width * duration);
      }
      audio.currentTime = time;
      audio.play();
    });
    audio.addEventListener("timeupdate", function () {
      var x = Math.min(width, audio.currentTime / duration * width);
      head.setAttribute("x1", x); head.setAttribute("x2", x);
    });
    audio.addEventListener("loadedmetadata", function () { audio.dataset.seconds = audio.duration.toFixed(2); });
  });
  document.querySelectorAll("table.sortable").forEach(function (table) {
    var headers = table.querySelectorAll("th");
    headers.forEach(function (th, column) {
      th.addEventListener("click", function () {
        var up = !th.classList.contains("up"), number = th.dataset.type === "number";
        headers.forEach(function (other) { other.classList.remove("up", "down"); });
        th.classList.add(up ? "up" : "down");
        var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = a.cells[column].textContent, y = b.cells[column].textContent;
          var order = number ? parseFloat(x) - parseFloat(y) : x.localeCompare(y);
          return up ? order : -order;
        });
        rows.forEach(function (row) { body.appendChild(row); });
      });
    });
  });
  document.body.dataset.ready = "yes";
})();
</script>
"""
