#!/usr/bin/env python
"""The soundscapes, version 2 (issue 21): backgrounds split by recording, a final test split, unlabelled clips.

    python recipes/soundscapes/soundscapes2.py       # build work/soundscapes2/ and work/soundscapes2.yaml (~1 min)

Version 1 (``compare_soundscapes.py``, ``work/soundscapes/``) stays as it is, so the reports made on it stay
reproducible. Version 2, under ``recipes/soundscapes/work/soundscapes2/``, from the same sources (ESC-10 and
DCASE 2016 task 2, one class-folder view of both: ``work/sources/``) and mixing settings:

* backgrounds split by recording (``BACKGROUND_SPLITS``): the five recordings of ``backgrounds/`` sorted by
  file name, the first three to train, the fourth to validation, the fifth to test (``work/backgrounds2/<side>/``,
  symlinks), so no split hears another's background;
* each class's event recordings partitioned over train / validation / test as in version 1;
* ``train`` 600, ``validation`` 200, ``test`` 300 (the development test split), ``test_final`` 300 (fresh
  soundscapes from the test-side event recordings and background, drawn from their own random stream:
  the split name enters the seed; used only for the final table) and ``unlabeled`` 1800 (train-side
  recordings and backgrounds; its manifest has labels, which training does not use);
* ``work/soundscapes2.yaml``: the narrow recipe with data.train / validation / test on these splits
  (``data.test=`` the ``test_final`` manifest, :func:`final_test`, points it at the final split);
* the 25%-labelled variant (:func:`write_labelled_fraction`): ``train/labelled25.jsonl``, a stratified 25% of
  train with its labels (``weaktag.labels.hold_out``, seed 0), and ``train/unlabeled75.jsonl``, the other
  75% with their labels dropped.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path

HERE = Path(__file__).resolve().parent  # recipes/soundscapes
sys.path.insert(0, str(HERE))
from compare_soundscapes import SYNTH_SEED, WORK, build_sources, narrow_config, shared_data  # noqa: E402

DATA = WORK / "soundscapes2"
CONFIG = WORK / "soundscapes2.yaml"
BACKGROUNDS = WORK / "backgrounds2"
SPLITS = {"train": 600, "validation": 200, "test": 300, "test_final": 300, "unlabeled": 1800}
#: the splits that take their event recordings and background from another's side
SIDE_OF = {"test_final": "test", "unlabeled": "train"}
#: how many background recordings each side gets, in this order, from the recordings sorted by file name
BACKGROUND_SPLITS = {"train": 3, "validation": 1, "test": 1}
#: the splits a trained model is configured with (data.train / validation / test)
CONFIG_SPLITS = ("train", "validation", "test")
LABELLED_FRACTION = 0.25
LABELLED_SEED = 0
LABELLED = DATA / "train" / "labelled25.jsonl"
UNLABELLED = DATA / "train" / "unlabeled75.jsonl"


def manifest(split: str) -> Path:
    return DATA / split / "manifest.jsonl"


def final_test() -> Path:
    """The final test split's manifest, for ``data.test=``."""
    return manifest("test_final")


def background_sides(shared: Path) -> dict[str, list[Path]]:
    """Side (train / validation / test) -> its background recordings, by ``BACKGROUND_SPLITS``'s rule."""
    from weaktag.audio import AUDIO_SUFFIXES

    files = sorted(f for f in (shared / "backgrounds").iterdir() if f.suffix.lower() in AUDIO_SUFFIXES)
    if len(files) != sum(BACKGROUND_SPLITS.values()):
        raise SystemExit(f"{shared / 'backgrounds'}: {len(files)} recordings, the split rule needs "
                         f"{sum(BACKGROUND_SPLITS.values())} ({BACKGROUND_SPLITS})")
    sides, start = {}, 0
    for side, count in BACKGROUND_SPLITS.items():
        sides[side] = files[start : start + count]
        start += count
    return sides


def link_backgrounds(sides: dict[str, list[Path]]) -> dict[str, Path]:
    """``work/backgrounds2/<side>/``: symlinks to the side's recordings (synthesize_splits takes a folder)."""
    folders = {}
    for side, files in sides.items():
        folders[side] = BACKGROUNDS / side
        if folders[side].exists():
            shutil.rmtree(folders[side])
        folders[side].mkdir(parents=True)
        for f in files:
            (folders[side] / f.name).symlink_to(f.resolve())
    return folders


def build_soundscapes2(shared: Path) -> bool:
    """Synthesize version 2 unless already built as now specified; True when (re)built."""
    from weaktag.synth import SynthConfig, synthesize_splits

    sides = background_sides(shared)
    stamp = DATA / "built.json"
    wanted = {"splits": SPLITS, "seed": SYNTH_SEED, "sources": ["esc10", "dcase2016_task2_events"],
              "side_of": SIDE_OF, "backgrounds": {side: [f.name for f in files] for side, files in sides.items()}}
    if stamp.exists() and json.loads(stamp.read_text()) == wanted:
        print(f"soundscapes v2: {DATA} already built")
        return False
    started = time.time()
    if DATA.exists():
        shutil.rmtree(DATA)
    counts = build_sources(shared, WORK / "sources")
    print(f"sources: {len(counts)} classes, {sum(counts.values())} recordings -> {WORK / 'sources'}")
    folders = link_backgrounds(sides)
    for side, files in sides.items():
        print(f"  {side} backgrounds: {', '.join(f.name for f in files)}")
    manifests = synthesize_splits(DATA, SPLITS, SynthConfig(seed=SYNTH_SEED), sources=WORK / "sources",
                                  backgrounds={name: folders[SIDE_OF.get(name, name)] for name in SPLITS},
                                  sources_from=SIDE_OF)
    for name, m in manifests.items():
        print(f"  {name}: {len(m)} clips, {sum(len(c.events or ()) for c in m)} events")
    write_labelled_fraction()
    stamp.write_text(json.dumps(wanted, indent=2))  # last: an interrupted build is rebuilt
    print(f"soundscapes v2 built in {time.time() - started:.0f} s")
    return True


def write_labelled_fraction(fraction: float = LABELLED_FRACTION, seed: int = LABELLED_SEED,
                            labelled: Path = LABELLED, unlabelled: Path = UNLABELLED) -> tuple[int, int]:
    """``labelled``: a stratified ``fraction`` of train with its labels; ``unlabelled``: the rest, labels dropped.
    Returns the two sizes."""
    from weaktag.labels import Manifest, hold_out

    train = Manifest.from_jsonl(manifest("train"))
    rest, kept = hold_out(train, fraction, seed)  # hold_out's held-out part is the labelled fraction
    kept.to_jsonl(labelled)
    Manifest([replace(c, labels=frozenset(), events=None) for c in rest], list(train.classes)).to_jsonl(unlabelled)
    return len(kept), len(rest)


def soundscapes2_config() -> Path:
    """``work/soundscapes2.yaml``: the narrow recipe on version 2's train / validation / test."""
    return narrow_config(CONFIG, {split: f"soundscapes2/{split}/manifest.jsonl" for split in CONFIG_SPLITS},
                         WORK / "detection", "recipes/soundscapes/soundscapes2.py")


def main() -> int:
    build_soundscapes2(shared_data())
    print(f"config: {soundscapes2_config()}; 25% labelled: {LABELLED}, the rest unlabelled: {UNLABELLED}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
