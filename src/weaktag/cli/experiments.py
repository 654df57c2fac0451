"""``weaktag synth``, ``demo``, ``schemes``, ``compare`` and ``plot``: data, comparisons and figures."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import UsageError
from .common import HelpFormatter, VerbFactory, verbose_after_verb, warnings_only


def _cmd_synth(args: argparse.Namespace) -> int:
    from ..synth import SynthConfig, synthesize, synthesize_splits

    config = SynthConfig(num_clips=args.num_clips, clip_seconds=args.seconds, seed=args.seed)
    if args.splits:
        splits = {}
        for item in args.splits.split(","):
            name, _, count = (part.strip() for part in item.partition("="))
            if not name or not count.isdigit():
                raise UsageError(f"--splits: {item!r} is not name=count (e.g. train=600,validation=200,test=300)")
            splits[name] = int(count)
        manifests = synthesize_splits(args.out_dir, splits, config, args.sources, args.backgrounds)
        for name, m in manifests.items():
            print(f"{name}: {len(m)} clips, {len(m.classes)} classes -> {Path(args.out_dir) / name}")
    else:
        m = synthesize(args.out_dir, config, args.sources, args.backgrounds)
        print(f"{len(m)} clips, {len(m.classes)} classes -> {args.out_dir}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from ..experiments.demo import run_demo

    result = run_demo(args.out_dir, epochs=args.epochs, seed=args.seed, log=lambda line: print(line, flush=True))
    print()
    print(result.table())
    minutes = result.compare_minutes()
    took = (f"at least {minutes:.0f} min at this machine's load during the demo, less on idle cores, more on busier "
            "ones" if minutes >= 1 else "under a minute at this load")
    print("\nOne seed is one draw: differences of a few points between schemes are within seed-to-seed noise.\n"
          f"For a real comparison, run paired trials (Wilcoxon tests included; {took}):\n"
          f"  {result.compare_command()}")
    print(f"\ntotal {result.wall_seconds / 60:.1f} min; data, runs and checkpoints under {result.out_dir}")
    print(f"\nTry next (with {result.best()}, the best test mAP above):")
    for command in result.next_commands():
        print(f"  {command}")
    return 0


def _cmd_schemes(args: argparse.Namespace) -> int:
    from ..supervision import SCHEMES

    for name, cls in SCHEMES.items():
        print(f"{name:24s} {cls.description}")
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    import shlex
    from ..config import load_config, recipe_config
    from ..experiments.compare import CompareConfig, Recipe, run_compare
    from ..experiments.crossval import run_fold_compare
    from ..recipes import recipe_names, recipe_path
    from ..supervision import SCHEMES
    from ..stopping import Stopped

    config = load_config(args.config, args.overrides)
    recipes = {}
    for spec in args.recipe or []:
        name, sep, path = (part.strip() for part in spec.partition("="))
        if not sep and name in recipe_names():  # a packaged recipe by its name
            path = str(recipe_path(name))
        elif not sep or not name or not path or ":" in name or "/" in name:
            raise UsageError(f"--recipe {spec!r}: expected NAME=CONFIG.yaml (a name without ':' or '/') or a "
                             f"packaged recipe ({', '.join(recipe_names())})")
        source = path if sep else f"{name} (packaged: {path})"
        recipes[name] = Recipe(recipe_config(config, path, args.overrides), source)
    schemes = [s.strip() for s in args.schemes.split(",") if s.strip()] if args.schemes else list(SCHEMES)
    seeds = None
    if args.seeds:
        try:
            seeds = [int(s) for s in args.seeds.split(",")]
        except ValueError:
            raise UsageError(f"--seeds: {args.seeds!r} is not comma-separated whole numbers (e.g. 0,1,2)") from None
    if args.folds and args.trials is not None:
        raise UsageError("--folds runs one trial per fold: leave out --trials")
    trials = args.trials if args.trials is not None else (len(seeds) if seeds else 5)
    gain_pair = tuple(s.strip() for s in args.gain_pair.split(",")) if args.gain_pair else None
    out_dir = args.out_dir or config.output_dir
    command = ["weaktag", "compare", "--config", args.config, "--schemes", ",".join(schemes),
               *(["--folds"] if args.folds else ["--trials", str(trials)]), "--out-dir", str(out_dir)]
    for flag, value in (("--seeds", args.seeds), ("--gain-pair", args.gain_pair), ("--clip", args.clip)):
        if value:
            command += [flag, value]
    if args.durations_from != "auto":
        command += ["--durations-from", args.durations_from]
    for spec in args.recipe or []:
        command += ["--recipe", spec]
    try:
        options = CompareConfig(schemes, trials, seeds, gain_pair, args.clip, args.durations_from,
                                shlex.join(command + list(args.overrides)), args.note)
        run = run_fold_compare if args.folds else run_compare
        with warnings_only("weaktag.training"):  # a line per trial, not per epoch (as train prints them)
            result = run(config, options, out_dir, recipes=recipes, log=None if args.quiet else print)
    except KeyboardInterrupt as exc:  # a trial's training, or anything around it
        stopped = Stopped.of(exc)
        raise Stopped.of(exc, f"stopped by {stopped.signal_name}; the finished trials are kept in {out_dir}: run the "
                         "same compare command again to reuse them and run the rest") from None
    print()
    print((Path(out_dir) / "table.md").read_text())
    print(f"{len(result.ran)} trial(s) run, {len(result.reused)} reused; {result.wall_seconds:.0f} s")
    print(f"report: {result.report}")
    return 0


def _cmd_plot(args: argparse.Namespace) -> int:
    from ..experiments.figures import attention_figure_for_audio, gain_vs_duration_for_checkpoints

    if args.figure == "gain-vs-duration":
        table = gain_vs_duration_for_checkpoints(args.checkpoint_a, args.checkpoint_b, args.labels, args.out,
                                                 audio_dir=args.audio_dir, durations_labels=args.durations_labels,
                                                 table_out=args.table)
        print(table.to_markdown())
    else:
        figure = attention_figure_for_audio(args.checkpoint, args.audio, args.out, labels=args.labels,
                                            audio_dir=args.audio_dir, show=args.show)
        events = ", ".join(f"{e.label} {e.onset:.2f}-{e.offset:.2f} s" for e in figure.events)
        print(f"{figure.seconds:.1f} s of audio; panels: {'; '.join(figure.titles)}"
              + (f"; events: {events}" if events else ""))
    print(f"figure: {args.out}")
    return 0


def add_verbs(verb: VerbFactory) -> None:
    p = verb("synth", "write soundscapes with known onsets/offsets")
    p.add_argument("out_dir", help="folder to write (audio/, strong.tsv, weak.tsv, manifest.jsonl, sources.tsv)")
    p.add_argument("--num-clips", type=int, default=100, help="soundscapes to write (without --splits)")
    p.add_argument("--splits", default=None, help="e.g. train=600,validation=200,test=300 (overrides --num-clips)")
    p.add_argument("--seconds", type=float, default=10.0, help="length of each soundscape")
    p.add_argument("--seed", type=int, default=0, help="random seed (same seed, same soundscapes)")
    p.add_argument("--sources", default=None, help="real event recordings, <class>/<file> layout "
                   "(default: sounds weaktag generates)")
    p.add_argument("--backgrounds", default=None, help="real background recordings (default: generated noise)")
    p.set_defaults(func=_cmd_synth)

    p = verb("demo", "synthesize data, train attention vs attention-self, compare (CPU, minutes)")
    p.add_argument("--out-dir", default="weaktag-demo", help="everything the demo writes goes here")
    p.add_argument("--epochs", type=int, default=12, help="training epochs per model")
    p.add_argument("--seed", type=int, default=0, help="seed of the data and of both trainings")
    p.set_defaults(func=_cmd_demo)

    p = verb("schemes", "list the training schemes")
    p.set_defaults(func=_cmd_schemes)

    p = verb("compare", "paired trials of several schemes on one data set: tables, tests, figures")
    p.add_argument("--config", required=True, help="YAML config shared by every trial (needs data.test, or --folds)")
    p.add_argument("--schemes", default=None, help="comma-separated scheme names (default: all; see weaktag "
                   "schemes); RECIPE:SCHEME trains SCHEME under a --recipe")
    p.add_argument("--recipe", action="append", default=None, metavar="NAME=CONFIG",
                   help="another recipe on the same data (its model, scheme, train and augment sections, and the "
                   "training data its data section names; validation and test come from --config), compared "
                   "as arms NAME:SCHEME; a packaged recipe by name alone "
                   "(--recipe recommended); repeatable")
    p.add_argument("--trials", type=int, default=None,
                   help="trials (seeds) per scheme (default 5, or the number of --seeds)")
    p.add_argument("--seeds", default=None, help="comma-separated seeds, one per trial (default: train.seed + i)")
    p.add_argument("--out-dir", default=None, help="runs and report (default: the config's output_dir); "
                   "finished trials found here are not run again")
    p.add_argument("--gain-pair", default=None,
                   help="a,b for Fig. 4: AP(b) - AP(a) (default: attention,attention-self)")
    p.add_argument("--clip", default=None, help="test clip id for Fig. 5 (default: one with a short event)")
    p.add_argument("--durations-from", choices=("auto", "train", "test"), default="auto",
                   help="strong labels giving each class's median event duration (auto: train when strong)")
    p.add_argument("--folds", action="store_true",
                   help="leave-one-fold-out cross-validation: data.train holds every clip with its fold (esc50.csv, "
                   "UrbanSound8K.csv, a table with a fold column); trial i tests on fold i, trains on the others and "
                   "holds data.validation_fraction of them out for validation")
    p.add_argument("--note", default=None, help="a line of text for the report")
    p.add_argument("--quiet", action="store_true", help="no per-trial progress lines")
    p.add_argument("overrides", nargs="*", help="section.key=value config overrides, e.g. train.max_epochs=10")
    p.set_defaults(func=_cmd_compare)

    p = verb("plot", "the paper's figures from checkpoints: gain-vs-duration (Fig. 4), attention (5)")
    figures = p.add_subparsers(dest="figure", required=True)
    f = figures.add_parser("gain-vs-duration", help="per-class AP gain of checkpoint B over A vs. event duration",
                           formatter_class=HelpFormatter)
    verbose_after_verb(f)
    f.add_argument("--checkpoint-a", required=True, help="baseline model (e.g. attention)")
    f.add_argument("--checkpoint-b", required=True, help="model whose gain is plotted (e.g. attention-self)")
    f.add_argument("--labels", required=True, help="labelled evaluation set (AP per class; durations if strong)")
    f.add_argument("--audio-dir", default=None, help="folder of the audio files the labels name")
    f.add_argument("--durations-labels", default=None, help="strong labels for the durations (default: --labels)")
    f.add_argument("--table", default=None, help="also write the table here (.csv, else markdown)")
    f.add_argument("--out", required=True, help="PNG to write")
    f.set_defaults(func=_cmd_plot)
    f = figures.add_parser("attention", help="log-mel, ground truth, attention A and X^a of one recording",
                           formatter_class=HelpFormatter)
    verbose_after_verb(f)
    f.add_argument("--checkpoint", required=True, action="append", help="a model; repeat for more panels")
    f.add_argument("--audio", required=True, help="the recording")
    f.add_argument("--labels", default=None, help="strong labels holding the recording (ground-truth row)")
    f.add_argument("--audio-dir", default=None, help="folder of the audio files the labels name")
    f.add_argument("--show", choices=("both", "attention", "segment"), default="both", help="which matrices per model")
    f.add_argument("--out", required=True, help="PNG to write")
    f.set_defaults(func=_cmd_plot)
