"""The HTML report of ``weaktag tag --report`` (issue 25, item 5): one self-contained page per run, a row per
file with its audio, timeline and clickable events, a sortable table of tags; rendered in headless Chromium."""

from __future__ import annotations

import base64
import csv
import io
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import PIL.Image
import pytest
import soundfile as sf
import torch

from weaktag.checkpoint import save_checkpoint
from weaktag.cli import main
from weaktag.inference.report import REPORT_SAMPLE_RATE, WIDTH
from weaktag.models import BackboneConfig, ModelConfig, WeakTagNet

SR = 16_000
CLASSES = ["beep", "knock", "siren"]
DURATIONS = {"a.wav": 3.0, "sub/b.wav": 7.5}


class _Page(HTMLParser):
    """The elements a test looks at: audio players, event boxes, timelines, tag table rows, every src/href."""

    def __init__(self) -> None:
        super().__init__()
        self.audio: list[dict] = []
        self.events: list[dict] = []
        self.timelines: list[dict] = []
        self.links: list[str] = []
        self.tag_rows: list[list[str]] = []
        self._table: str | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list) -> None:
        a = dict(attrs)
        self.links += [a[k] for k in ("src", "href") if k in a]
        if tag == "audio":
            self.audio.append(a)
        elif tag == "rect" and a.get("class") == "event":
            self.events.append({**a, "timeline": self.timelines[-1]})
        elif tag == "svg":
            self.timelines.append(a)
        elif tag == "table":
            self._table = a.get("id")
        elif tag == "tbody" and self._table == "tags":
            self._table = "tags body"  # its rows, not the header's
        elif tag == "tr" and self._table == "tags body":
            self.tag_rows.append([])
        elif tag == "td" and self._table == "tags body":
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell is not None:
            self.tag_rows[-1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A tagged folder (two files and a bad one) with --report; low event thresholds so there are events."""
    root = tmp_path_factory.mktemp("report")
    torch.manual_seed(1)
    model = WeakTagNet(ModelConfig(len(CLASSES), backbone=BackboneConfig(width=0.125))).eval()
    ckpt = save_checkpoint(root / "model.pt", model, CLASSES, "attention", {}, tag_thresholds=np.array([0.5, 0.5, 0.6]))
    rng = np.random.default_rng(0)
    for name, seconds in DURATIONS.items():
        path = root / "audio" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        wave = rng.standard_normal(int(seconds * SR)) * 0.05
        wave[SR: 2 * SR] += 0.5 * np.sin(2 * np.pi * 880 * np.arange(SR) / SR)
        sf.write(str(path), wave.astype(np.float32), SR)
    (root / "audio" / "broken.wav").write_text("not audio")
    out = root / "out"
    assert main(["tag", "--checkpoint", str(ckpt), str(root / "audio"), "--out", str(out), "--report", "--quiet",
                 "--event-threshold", "0.3"]) == 0
    return out


def _page(run: Path) -> _Page:
    page = _Page()
    page.feed((run / "report.html").read_text())
    return page


def test_the_report_holds_each_files_audio_events_and_tags_and_nothing_from_outside(run: Path):
    page = _page(run)
    assert all(link.startswith(("data:", "#")) for link in page.links), page.links  # opens offline: no CDN
    assert len(page.audio) == len(page.timelines) == len(DURATIONS)
    for audio, (name, seconds) in zip(page.audio, DURATIONS.items()):
        assert audio["src"].startswith("data:audio/ogg;base64,")
        wave, rate = sf.read(io.BytesIO(base64.b64decode(audio["src"].split(",", 1)[1])))
        assert rate == REPORT_SAMPLE_RATE and len(wave) / rate == pytest.approx(seconds, abs=0.01), name
    # the event boxes are the events of events.tsv, each placed at its onset on its file's timeline
    with open(run / "events.tsv", newline="") as f:
        expected = sorted((r["event_label"], float(r["onset"]), float(r["offset"]))
                          for r in csv.DictReader(f, delimiter="\t"))
    boxes = sorted((e["data-label"], float(e["data-onset"]), float(e["data-offset"])) for e in page.events)
    assert expected and [b[0] for b in boxes] == [e[0] for e in expected]
    np.testing.assert_allclose([b[1:] for b in boxes], [e[1:] for e in expected], atol=1e-3)
    for e in page.events:
        assert float(e["x"]) == pytest.approx(float(e["data-onset"]) / float(e["timeline"]["data-duration"]) * WIDTH,
                                              abs=0.01)
    # the tag table is tags.csv, row for row
    with open(run / "tags.csv", newline="") as f:
        tags = [(r["filename"], r["label"], float(r["probability"])) for r in csv.DictReader(f)]
    assert [tuple(r[:2]) for r in page.tag_rows] == [t[:2] for t in tags]
    np.testing.assert_allclose([float(r[2]) for r in page.tag_rows], [t[2] for t in tags], atol=1e-4)
    text = (run / "report.html").read_text()
    assert "broken.wav" in text.split("Not tagged", 1)[1]  # the file that failed is named
    assert not list(run.glob(".report.html.rows"))  # the rows kept during the run are gone


def test_report_needs_an_output_folder(run: Path, capsys):
    assert main(["tag", "--checkpoint", str(run.parent / "model.pt"), str(run.parent / "audio"), "--report"]) == 2
    assert capsys.readouterr().err.strip() == "weaktag tag: error: --report needs --out DIR"


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    pytest.skip("no headless browser: install Debian's chromium (apt-get install chromium) to render the report")


def test_the_report_renders_in_headless_chromium(run: Path, tmp_path: Path):
    browser, shot = _chromium(), tmp_path / "report.png"
    # one launch: the page's DOM after its script and media have run (virtual time), and a screenshot;
    # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start
    shown = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                            "--virtual-time-budget=2000", "--window-size=1200,900", f"--screenshot={shot}",
                            "--dump-dom", (run / "report.html").resolve().as_uri()],
                           capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr[-2000:]
    rendered = _Page()
    rendered.feed(shown.stdout)
    assert 'data-ready="yes"' in shown.stdout  # the page's script ran to its end without an error
    assert len(rendered.events) == len(_page(run).events) > 0
    # the browser decoded each embedded file (its player's duration, set by the page on loadedmetadata)
    assert [float(a.get("data-seconds", "nan")) for a in rendered.audio] == pytest.approx(list(DURATIONS.values()),
                                                                                        abs=0.05)
    assert shot.is_file(), shown.stderr[-2000:]
    pixels = np.asarray(PIL.Image.open(shot).convert("RGB"))
    assert pixels.shape == (900, 1200, 3)
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 100  # drawn: text, players, spectrograms, not blank
