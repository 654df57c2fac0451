"""``weaktag demo``: synthesize soundscapes, train ``attention`` and ``attention-self`` in a
narrow configuration and, when the aisfx package is installed, the packaged recommended recipe
(pretrained backbone), and print their test mAP side by side. Needs no data and no GPU.

It says what each model is, prints a line per training epoch, warns that one seed is not a
comparison (and writes ``demo.yaml`` so that the paired-trials command it suggests runs as
printed), and ends with the commands to try next on what it wrote.
"""

from __future__ import annotations

import shlex
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import yaml

from ..config import ExperimentConfig, config_from_dict, load_config, recipe_config
from ..models.aisfx import weights_path
from ..recipes import recipe_path
from ..synth import SynthConfig, synthesize_splits
from ..training import TrainResult, prepare_data, train

DEMO_SPLITS = {"train": 240, "validation": 80, "test": 120}
DEMO_SCHEMES = ("attention", "attention-self")
NARROW = "narrow"  # the packaged recipe the two paper schemes train under
RECOMMENDED = "recommended"  # the packaged recipe, trained third when its backbone (aisfx) is installed
COMPARE_TRIALS = 5  # paired seeds suggested for a real comparison
#: one line each: what the demo's schemes are (the paper's Table I rows 4 and 6)
SCHEME_LINES = {
    "attention": "attention (Table I row 4): class-wise attention pooling trained on clip labels only",
    "attention-self": "attention-self (Table I row 6): the same, plus its attention supervised by pseudo-strong "
                      "labels made from its own segment outputs (the paper's method)",
    RECOMMENDED: "recommended (weaktag's recipe, configs/recommended.yaml, not the paper's): the pretrained aisfx "
                 "backbone, frozen, with a trainable neck, mixup, and the event output and thresholds chosen on "
                 "validation; clip labels only",
}


@dataclass
class DemoResult:
    results: dict[str, TrainResult]
    wall_seconds: float
    out_dir: Path
    #: wall time of each arm's train() call: fitting, choosing the event settings, the test evaluation (and for the
    #: recommended recipe its backbone's features)
    arm_seconds: dict[str, float] = field(default_factory=dict)
    feature_seconds: float = 0.0  # the log-mel features the narrow arms share (computed once)

    def table(self) -> str:
        rows = ["| scheme | test mAP | best epoch | train time (s) |", "|---|---|---|---|"]
        for name, r in self.results.items():
            rows.append(f"| {name} | {r.test_map:.3f} | {r.best_epoch} | {r.wall_seconds:.0f} |")
        return "\n".join(rows)

    def compare_command(self) -> str:
        """Paired trials of the demo's schemes (and the recommended recipe, when it ran) on its data
        (``demo.yaml``, written by :func:`run_demo`)."""
        q = shlex.quote
        arms, recipe = list(DEMO_SCHEMES), ""
        if RECOMMENDED in self.results:
            arms.append(f"{RECOMMENDED}:{recommended_scheme()}")
            recipe = f" --recipe {RECOMMENDED}"
        return (f"weaktag compare --config {q(str(self.out_dir / 'demo.yaml'))} --schemes {','.join(arms)}{recipe} "
                f"--trials {COMPARE_TRIALS} --out-dir {q(str(self.out_dir / 'compare'))}")

    def compare_minutes(self) -> float:
        """What :meth:`compare_command` should take on a machine as busy as this one was during the demo: the
        features once, and every arm's measured wall time (training and evaluation) once per trial. compare's
        own evaluation (PSDS, event metrics) comes on top, so this is rather an underestimate."""
        arms = sum(self.arm_seconds.get(name, r.wall_seconds) for name, r in self.results.items())
        return (self.feature_seconds + COMPARE_TRIALS * arms) / 60

    def best(self) -> str:
        """The model with the best test mAP (the first trained on a tie, or when none was tested)."""
        def test_map(name: str) -> float:
            value = self.results[name].test_map
            return float("-inf") if value is None else value

        return max(self.results, key=test_map)

    def next_commands(self) -> list[str]:
        """Runnable commands on what the demo wrote: tag and evaluate with the best model, plot its attention
        beside another model's."""
        out = self.out_dir
        best = self.best()
        checkpoint = self.results[best].checkpoint
        other = self.results[next(name for name in self.results if name != best)].checkpoint
        test = out / "data" / "test"
        clip = min((test / "audio").glob("*.wav"), default=test / "audio" / "test_00000.wav")
        q = lambda p: shlex.quote(str(p))  # noqa: E731 - paths as a shell wants them
        return [
            f"weaktag tag --checkpoint {q(checkpoint)} {q(test / 'audio')} --out {q(out / 'tagged')} --timeline",
            f"weaktag evaluate --checkpoint {q(checkpoint)} --labels {q(test / 'strong.tsv')} "
            f"--audio-dir {q(test / 'audio')}",
            f"weaktag plot attention --checkpoint {q(checkpoint)} --checkpoint {q(other)} --audio {q(clip)} "
            f"--labels {q(test / 'strong.tsv')} --audio-dir {q(test / 'audio')} --out {q(out / 'attention.png')}",
        ]


def demo_settings(out_dir: Path, scheme: str, epochs: int, seed: int) -> dict:
    """The demo's recipe: the packaged narrow recipe on the demo's data, with its scheme, epochs and seed."""
    settings = yaml.safe_load(recipe_path(NARROW).read_text())
    settings["data"] = {split: str(out_dir / "data" / split / "manifest.jsonl")
                        for split in ("train", "validation", "test")}
    settings["scheme"] = {**settings.get("scheme", {}), "name": scheme}
    settings["train"] = {**settings.get("train", {}), "max_epochs": epochs, "seed": seed}
    settings["output_dir"] = str(out_dir / "runs" / scheme)
    return settings


def demo_config(out_dir: Path, scheme: str, epochs: int, seed: int) -> ExperimentConfig:
    return config_from_dict(demo_settings(out_dir, scheme, epochs, seed))


def recommended_scheme() -> str:
    return load_config(recipe_path(RECOMMENDED)).scheme.name


def recommended_config(out_dir: Path, seed: int) -> ExperimentConfig:
    """The packaged recommended recipe on the demo's data (its own epochs: it trains a head on fixed features)."""
    config = recipe_config(demo_config(out_dir, DEMO_SCHEMES[0], 1, seed), recipe_path(RECOMMENDED),
                           [f"train.seed={seed}", "train.progress=false", "train.accelerator=cpu"])
    config.output_dir = str(out_dir / "runs" / RECOMMENDED)
    return config


def recommended_available() -> str | None:
    """None when the recommended recipe can run here, else why not (its backbone's package is missing)."""
    try:
        weights_path()
    except FileNotFoundError as exc:
        return str(exc)
    return None


def run_demo(out_dir: str | Path = "weaktag-demo", epochs: int = 12, seed: int = 0,
             splits: dict[str, int] | None = None, log: Callable[[str], None] = print,
             with_recommended: bool = True) -> DemoResult:
    started = time.time()
    out_dir = Path(out_dir)
    splits = splits or DEMO_SPLITS
    missing = recommended_available() if with_recommended else "not asked for"
    log("weaktag demo: two of the paper's training schemes" + (" and weaktag's recommended recipe" if not missing
                                                                 else "") + " on generated soundscapes (CPU)")
    for scheme in DEMO_SCHEMES + ((RECOMMENDED,) if not missing else ()):
        log(f"  - {SCHEME_LINES[scheme]}")
    if missing and with_recommended:
        log(f"  (the recommended recipe is skipped: {missing})")
    log(f"synthesizing {sum(splits.values())} ten-second soundscapes into {out_dir / 'data'} ...")
    synthesize_splits(out_dir / "data", splits, SynthConfig(seed=seed))
    # the same recipe as a config file, for `weaktag train/compare --config` on the demo's data
    # (data paths relative to the YAML's folder, so the demo's folder can move; output_dir is not)
    recipe = demo_settings(Path("."), DEMO_SCHEMES[-1], epochs, seed)
    recipe["output_dir"] = str(out_dir.resolve() / "runs" / "from-demo-yaml")
    (out_dir / "demo.yaml").write_text(yaml.safe_dump(recipe, sort_keys=False))
    features_started = time.time()
    data = prepare_data(demo_config(out_dir, DEMO_SCHEMES[0], epochs, seed))
    feature_seconds = time.time() - features_started
    results, arm_seconds = {}, {}
    for scheme in DEMO_SCHEMES:
        log(f"training {scheme} ({epochs} epochs) ...")
        arm_started = time.time()
        # overwrite: running the demo again into the same folder starts over (its data is written anew too)
        results[scheme] = train(demo_config(out_dir, scheme, epochs, seed), data=data,
                                on_epoch=lambda line: log(f"  {line}"), overwrite=True)
        arm_seconds[scheme] = time.time() - arm_started
        log(f"  {scheme}: test mAP {results[scheme].test_map:.3f} (best epoch {results[scheme].best_epoch})")
    if not missing:
        config = recommended_config(out_dir, seed)
        log(f"training {RECOMMENDED} ({config.scheme.name}, {config.train.max_epochs} epochs on the frozen "
            "backbone's features, computed once) ...")
        # one line every 10 epochs: the head trains in well under a second per epoch
        arm_started = time.time()
        results[RECOMMENDED] = train(config, on_epoch=_every(10, lambda line: log(f"  {line}")), overwrite=True)
        arm_seconds[RECOMMENDED] = time.time() - arm_started
        r = results[RECOMMENDED]
        log(f"  {RECOMMENDED}: test mAP {r.test_map:.3f} (best epoch {r.best_epoch})")
    return DemoResult(results, time.time() - started, out_dir, arm_seconds, feature_seconds)


def _every(n: int, say: Callable[[str], None]) -> Callable[[str], None]:
    """Pass on the epoch lines of epochs 1, n, 2n, ... only."""
    def maybe(line: str) -> None:
        epoch = int(line.split()[1].split("/")[0]) if line.startswith("epoch ") else 1
        if epoch == 1 or epoch % n == 0:
            say(line)
    return maybe
