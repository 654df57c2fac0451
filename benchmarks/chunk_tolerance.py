"""Chunked against whole-file tagging of a long recording, for a trained checkpoint (outside CI).

    python benchmarks/chunk_tolerance.py --checkpoint runs/.../model.pt            # a few minutes on 2 cores
    python benchmarks/chunk_tolerance.py --checkpoint model.pt --audio long.wav --name mine

Why: a GRU neck's state reaches the whole file, so chunked tagging (``weaktag tag`` cuts long files into
chunks with context on each side) is only approximate for it; how close it is depends on how far the
*trained* GRU remembers, which a random one in the unit tests cannot show (``weaktag.models.neck``).

What is measured: the largest absolute difference, over every segment and class, between a chunked pass
and one whole-file pass (one chunk), of the segment probabilities X^a and of the clip probabilities, for
each chunk length x context (``TaggingConfig.chunk_seconds``, ``context_seconds``; "default" is the
checkpoint's declared reach). The long file is ``--audio``, or (default) the first ``--clips`` clips of
the soundscapes v2 *validation* split (``recipes/soundscapes/soundscapes2.py``) joined end to end into a
temporary WAV: numbers, not quality, so no test clip is needed.

Writes ``benchmarks/results/chunk_tolerance[-NAME].json`` and ``.md`` and prints the markdown.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from weaktag.audio import load_audio
from weaktag.checkpoint import load_checkpoint
from weaktag.inference import Tagger
from weaktag.labels import read_labels

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"
VALIDATION = ROOT.parent / "recipes" / "soundscapes" / "work" / "soundscapes2" / "validation" / "manifest.jsonl"
CHUNKS = (10.24, 30.72, 61.44)
CONTEXTS: tuple[float | None, ...] = (None, 36.0, 72.0)  # None: the checkpoint's declared reach


def joined_clips(manifest: Path, clips: int, sample_rate: int, out: Path) -> Path:
    """The first ``clips`` clips of ``manifest``, end to end, as one WAV at ``sample_rate``."""
    if not manifest.is_file():
        raise SystemExit(f"{manifest}: missing; build it with python recipes/soundscapes/soundscapes2.py, "
                         "or give --audio")
    waves = [load_audio(c.audio_path, sample_rate) for c in read_labels(manifest).clips[:clips]]
    sf.write(out, np.concatenate(waves), sample_rate)
    return out


def differences(checkpoint, audio: Path, seconds: float) -> list[dict]:
    whole = Tagger(checkpoint, chunk_seconds=seconds + 1.0, detect_events=False).tag(audio)
    rows = []
    for chunk in CHUNKS:
        for context in CONTEXTS:
            options = {} if context is None else {"context_seconds": context}
            tagger = Tagger(checkpoint, chunk_seconds=chunk, detect_events=False, **options)
            got = tagger.tag(audio)
            rows.append({"chunk_seconds": chunk, "context_seconds": context,
                         "context_used_seconds": tagger.plan.context_segments * checkpoint.model.grid.segment_seconds,
                         "segment_max_diff": float(np.abs(got.segment_probs - whole.segment_probs).max()),
                         "clip_max_diff": float(np.abs(got.clip_probs - whole.clip_probs).max())})
    return rows


def markdown(result: dict) -> str:
    lines = [f"Chunked vs whole-file tagging, `{result['checkpoint']}` (neck `{result['neck']}`), "
             f"{result['audio']} ({result['seconds']:.0f} s): largest absolute difference.", "",
             "| chunk (s) | context (s) | X^a segment probabilities | clip probabilities |", "|---:|---|---:|---:|"]
    for r in result["rows"]:
        context = f"{r['context_used_seconds']:.1f}" + (" (declared)" if r["context_seconds"] is None else "")
        lines.append(f"| {r['chunk_seconds']:g} | {context} | {r['segment_max_diff']:.4f} | {r['clip_max_diff']:.4f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, type=Path)
    parser.add_argument("--audio", type=Path, default=None, help="a long recording (default: joined validation clips)")
    parser.add_argument("--clips", type=int, default=30, help="validation clips to join (default 30: 300 s)")
    parser.add_argument("--name", default="", help="suffix of the result files")
    args = parser.parse_args()
    checkpoint = load_checkpoint(args.checkpoint)
    with tempfile.TemporaryDirectory() as tmp:
        audio = args.audio or joined_clips(VALIDATION, args.clips, checkpoint.model.grid.sample_rate,
                                           Path(tmp) / "joined.wav")
        seconds = sf.info(audio).duration
        rows = differences(checkpoint, audio, seconds)
    described = (str(args.audio) if args.audio else f"the first {args.clips} soundscapes v2 validation clips joined")
    result = {"checkpoint": str(args.checkpoint), "neck": checkpoint.model.config.neck.kind, "audio": described,
              "seconds": seconds, "machine": platform.machine(), "rows": rows}
    stem = "chunk_tolerance" + (f"-{args.name}" if args.name else "")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
    text = markdown(result)
    (RESULTS / f"{stem}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
