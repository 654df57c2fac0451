#!/usr/bin/env python
"""Benchmark (outside CI): every training scheme x 5 trials on real-recording soundscapes.

    python recipes/soundscapes/compare_soundscapes.py                # the full run: 7 schemes x 5 trials
    python recipes/soundscapes/compare_soundscapes.py --smoke        # 2 schemes x 1 trial x 1 epoch, into recipes/soundscapes/work/smoke*

Steps (each skipped when its output is already there, so an interrupted run resumes):

1. ``recipes/soundscapes/work/sources/<class>/``: symlinks to the isolated events of ESC-10 (10 classes
   x 40) and DCASE 2016 task 2 (11 classes x 20), one class-folder view of both, because
   ``synthesize_splits`` takes one sources folder;
2. ``recipes/soundscapes/work/soundscapes/{train,validation,test}``: 10 s soundscapes of 1-3 of those
   events over excerpts of ``../shared/data/backgrounds``, with exact strong labels (each
   class's recordings are split disjointly across train / validation / test);
3. ``weaktag compare --config recipes/soundscapes/work/soundscapes.yaml --schemes <all> --trials 5
   --out-dir recipes/soundscapes/work/compare`` (trials already finished are not run again), the config
   being weaktag's narrow recipe on this data (written by ``soundscapes_config``);
4. the report (report.md, table.md, results.json and the figures report.md embeds) is copied to
   ``recipes/soundscapes/results/compare/``.

Extra arguments after the options are ``section.key=value`` config overrides.
``WEAKTAG_SHARED_DATA`` points at the shared data folder when it is not ``../shared/data``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import sys
import time
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent  # recipes/soundscapes
REPO = HERE.parents[1]
WORK = HERE / "work"
CONFIG = WORK / "soundscapes.yaml"  # written by soundscapes_config()
SPLITS = {"train": 600, "validation": 200, "test": 300}
SYNTH_SEED = 0
ALL_SCHEMES = "pool-weak,pool-strong,pool-weak-strong,attention,attention-strong,attention-self,attention-strong-self"
#: what is committed of a report: the report, its table, the results it is made from (the figures
#: report.md embeds are copied too); the CSVs and the parts that report.md repeats stay in the work folder
REPORT_FILES = ("report.md", "table.md", "results.json")


def shared_data() -> Path:
    path = Path(os.environ.get("WEAKTAG_SHARED_DATA", REPO.parent / "shared" / "data"))
    needed = [path / "esc10", path / "dcase2016_task2_events", path / "backgrounds"]
    missing = [str(p) for p in needed if not p.is_dir()]
    if missing:
        sys.exit(f"real data not available: {', '.join(missing)} missing (set WEAKTAG_SHARED_DATA)")
    return path


def build_sources(shared: Path, out: Path) -> dict[str, int]:
    """``out/<class>/<file>`` symlinks over ESC-10 (class folders) and DCASE 2016 task 2 (flat)."""
    from weaktag.synth import discover_sources

    banks = [discover_sources(shared / "esc10"), discover_sources(shared / "dcase2016_task2_events")]
    overlap = set(banks[0]) & set(banks[1])
    if overlap:
        raise SystemExit(f"ESC-10 and DCASE 2016 share class names {sorted(overlap)}; cannot merge")
    counts = {}
    for bank in banks:
        for label, files in bank.items():
            folder = out / label
            folder.mkdir(parents=True, exist_ok=True)
            for f in files:
                link = folder / f.name
                if not link.is_symlink():
                    link.symlink_to(f.resolve())
            counts[label] = len(files)
    return counts


def build_soundscapes(shared: Path) -> bool:
    """Synthesize the benchmark's soundscapes unless already built as now specified; True when (re)built."""
    from weaktag.synth import SynthConfig, synthesize_splits

    stamp = WORK / "soundscapes" / "built.json"
    wanted = {"splits": SPLITS, "seed": SYNTH_SEED, "sources": ["esc10", "dcase2016_task2_events"],
              "backgrounds": "backgrounds"}
    if stamp.exists() and json.loads(stamp.read_text()) == wanted:
        print(f"soundscapes: {stamp.parent} already built")
        return False
    started = time.time()
    if (WORK / "soundscapes").exists():
        shutil.rmtree(WORK / "soundscapes")
    counts = build_sources(shared, WORK / "sources")
    print(f"sources: {len(counts)} classes, {sum(counts.values())} recordings -> {WORK / 'sources'}")
    manifests = synthesize_splits(WORK / "soundscapes", SPLITS, SynthConfig(seed=SYNTH_SEED),
                                  sources=WORK / "sources", backgrounds=shared / "backgrounds")
    for name, m in manifests.items():
        print(f"  {name}: {len(m)} clips, {sum(len(c.events or ()) for c in m)} events")
    stamp.write_text(json.dumps(wanted, indent=2))  # last: an interrupted build is rebuilt
    print(f"soundscapes built in {time.time() - started:.0f} s")
    return True


def copy_report(src: Path, dst: Path) -> list[Path]:
    """The committed part of the report in ``src`` (REPORT_FILES and the figures report.md embeds) -> ``dst``."""
    dst.mkdir(parents=True, exist_ok=True)
    report = src / "report.md"
    figures = re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", report.read_text()) if report.is_file() else []
    copied = []
    for name in (*REPORT_FILES, *figures):
        if (src / name).is_file():
            shutil.copy2(src / name, dst / name)
            copied.append(dst / name)
    return copied


def soundscapes_config() -> Path:
    """``work/soundscapes.yaml``: the packaged narrow recipe (weaktag.recipes, ``narrow.yaml``) on the
    soundscapes' data, without training logs. Written anew on every call, so the recipe stays defined in
    one place; compare's fingerprints see the settings, not the file."""
    return narrow_config(CONFIG, {split: f"soundscapes/{split}/manifest.jsonl" for split in SPLITS},
                         WORK / "compare", "recipes/soundscapes/compare_soundscapes.py")


def narrow_config(path: Path, data: dict[str, str], output_dir: Path, writer: str) -> Path:
    """``path``: the packaged narrow recipe with ``data`` (paths relative to ``path``'s folder), training logs off
    and ``output_dir``; its first line names the script that wrote it (``writer``)."""
    from weaktag.recipes import recipe_path

    config = yaml.safe_load(recipe_path("narrow").read_text())
    config["data"] = data
    config["train"] = {**config["train"], "logger": "none"}
    config["output_dir"] = rel(output_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"# written by {writer} from weaktag's narrow recipe\n" + yaml.safe_dump(config, sort_keys=False))
    return path


def rel(path: Path | str) -> str:
    """A path relative to the working directory: short paths in the recorded commands."""
    return os.path.relpath(path, Path.cwd())


def run_compare(args: list[str]) -> None:
    """``weaktag <args>`` in this process, printed first; a failure ends the benchmark with its status."""
    from weaktag.cli import main as weaktag

    print("weaktag " + shlex.join(args), flush=True)
    rc = weaktag(args)
    if rc != 0:
        raise SystemExit(rc)


def compare_part(script: str, name: str, arms: list[str], trials: int, out_dir: Path, results_dir: Path,
                 config_path: Path, gain_pair: tuple[str, str], overrides: list[str], argv: list[str],
                 recipe: Path | None = None) -> None:
    """One part of a benchmark: ``weaktag compare`` of ``arms`` (with ``recipe`` as ``--recipe recommended``),
    its command and machine in the report's note, the report copied to ``results_dir``."""
    options = ["compare", "--config", rel(config_path), "--schemes", ",".join(arms), "--trials", str(trials),
               "--out-dir", rel(out_dir), "--gain-pair", ",".join(gain_pair),
               "--note", f"Produced by `{shlex.join(['python', script, *argv])}` on a "
                         f"machine with {os.cpu_count()} CPU cores ({name} part)."]
    if recipe is not None:
        options += ["--recipe", f"recommended={rel(recipe)}"]
    run_compare(options + overrides)
    copied = copy_report(out_dir, results_dir)
    print(f"{name} report: {len(copied)} files -> {rel(results_dir)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--schemes", default=ALL_SCHEMES)
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--out-dir", default=str(WORK / "compare"), help="trial runs and the report")
    parser.add_argument("--results-dir", default=str(HERE / "results" / "compare"), help="where the report is copied")
    parser.add_argument("--smoke", action="store_true",
                        help="attention,attention-self x 1 trial x 1 epoch into recipes/soundscapes/work/smoke*")
    parser.add_argument("overrides", nargs="*", help="config overrides, e.g. train.max_epochs=1")
    args = parser.parse_args(argv)
    if args.smoke:
        args.schemes, args.trials = "attention,attention-self", 1
        args.out_dir, args.results_dir = str(WORK / "smoke"), str(WORK / "smoke-results")
        args.overrides = ["train.max_epochs=1", *args.overrides]

    started = time.time()
    if build_soundscapes(shared_data()) and (Path(args.out_dir) / "runs").exists():
        print(f"new soundscapes: removing the trials trained on the old ones in {args.out_dir}")
        shutil.rmtree(Path(args.out_dir) / "runs")
    from weaktag.cli import main as weaktag

    options = ["--config", rel(soundscapes_config()), "--schemes", args.schemes, "--trials", str(args.trials),
               "--out-dir", rel(args.out_dir)]
    print("weaktag " + shlex.join(["compare", *options, *args.overrides]), flush=True)
    script = shlex.join(["python", "recipes/soundscapes/compare_soundscapes.py",
                         *(sys.argv[1:] if argv is None else argv)])
    note = (f"Produced by `{script}` (it builds the soundscapes if missing, then runs the command above) "
            f"on a machine with {os.cpu_count()} CPU cores.")
    command = ["compare", *options, "--note", note, *args.overrides]
    rc = weaktag(command)
    if rc != 0:
        return rc
    copied = copy_report(Path(args.out_dir), Path(args.results_dir))
    print(f"report: {len(copied)} files -> {args.results_dir} (see report.md); total {time.time() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
