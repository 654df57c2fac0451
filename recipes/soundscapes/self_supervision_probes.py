#!/usr/bin/env python
"""Validation probes behind attention-self-ext's and PSL's defaults: one training run per setting, seed 0,
today's recipe (``recipes/soundscapes/work/soundscapes.yaml``), compared on *validation* mAP only (test is not looked at).

    python recipes/soundscapes/self_supervision_probes.py NAME [section.key=value ...]   # one probe, appended to
                                                                                # recipes/soundscapes/work/ssl/probes.jsonl
    python recipes/soundscapes/self_supervision_probes.py --table                        # probes.jsonl -> results table

The committed table (``recipes/soundscapes/results/self_supervision/probes.md``) came from these runs:
  peak50-dist         scheme.name=attention-self-ext scheme.pseudo_target=distribution
  mean-dist           ... scheme.pseudo_threshold=absent-mean scheme.pseudo_target=distribution
  max-dist            ... scheme.pseudo_threshold=absent-max scheme.pseudo_target=distribution
  peak50-binary       ... scheme.pseudo_target=binary
  peak50-binary-seg1  ... scheme.pseudo_target=binary scheme.segment_weight=1
  self-paper          scheme.name=attention-self
  psl-2s-w05          scheme.name=psl scheme.teacher=<attention seed 0 of recipes/soundscapes/work/quality> scheme.chunk_seconds=2
                      scheme.teacher_weight=0.5
(at the time the extension's default target was ``distribution``; it is ``binary`` since these probes).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent  # recipes/soundscapes
sys.path.insert(0, str(HERE))
from compare_soundscapes import soundscapes_config  # noqa: E402  (the narrow recipe on the soundscapes)

WORK = HERE / "work" / "ssl"
RESULTS = HERE / "results" / "self_supervision"
KEYS = ("pseudo_density", "true_density", "precision", "recall", "attention_in_events", "attention_entropy")


def probe(name: str, overrides: list[str]) -> dict:
    from weaktag.config import load_config
    from weaktag.training import train

    config = load_config(soundscapes_config(), overrides + [f"output_dir={WORK / name}"])
    started = time.time()
    result = train(config, overwrite=True)  # a probe run again starts over
    best = [e for e in result.diagnostics if e["epoch"] == result.best_epoch]
    row = {"name": name, "overrides": overrides, "val_mAP": result.best_val_map, "best_epoch": result.best_epoch,
           "seconds": time.time() - started, "diag_best": best[0] if best else None}
    WORK.mkdir(parents=True, exist_ok=True)
    with (WORK / "probes.jsonl").open("a") as f:
        f.write(json.dumps(row) + "\n")
    return row


def table(rows: list[dict]) -> str:
    lines = ["| probe | overrides | validation mAP | best epoch | " + " | ".join(KEYS) + " |",
             "|---|---|---:|---:|" + "---:|" * len(KEYS)]
    for r in rows:
        d = r.get("diag_best") or {}
        cells = [f"{d[k]:.3f}" if k in d else "-" for k in KEYS]
        lines.append(f"| {r['name']} | `{' '.join(r['overrides'])}` | {r['val_mAP']:.4f} | {r['best_epoch']} | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if argv[:1] == ["--table"]:
        rows = [json.loads(line) for line in (WORK / "probes.jsonl").read_text().splitlines() if line.strip()]
        RESULTS.mkdir(parents=True, exist_ok=True)
        text = ("Validation probes, seed 0, today's recipe (10 epochs from scratch); diagnostics at the best epoch "
                "on the strongly labelled validation clips. References from the same seed in "
                "recipes/soundscapes/results/quality: attention 0.5575, attention-self 0.5330, attention-strong 0.6013 "
                "validation mAP.\n\n" + table(rows) + "\n")
        (RESULTS / "probes.md").write_text(text)
        (RESULTS / "probes.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        print(text)
        return 0
    print(json.dumps(probe(argv[0], argv[1:]), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
