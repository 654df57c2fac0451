"""``weaktag <verb>``: every verb parses its arguments and calls one library function."""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import traceback
import warnings
from pathlib import Path
from typing import Iterator

import numpy as np


def _cmd_train(args: argparse.Namespace) -> int:
    from .config import load_config
    from .training import train

    config = load_config(args.config, args.overrides)
    # without Lightning's progress bar, say something every epoch instead of minutes of silence
    result = train(config, on_epoch=None if config.train.progress else (lambda line: print(line, flush=True)))
    print(f"best epoch {result.best_epoch}: validation mAP {result.best_val_map:.4f}")
    if result.test_map is not None:
        print(f"test mAP {result.test_map:.4f}")
    skipped = sum(len(v) for v in result.skipped.values())
    if skipped:
        print(f"skipped {skipped} unreadable clip(s); see {Path(config.output_dir) / 'summary.json'}")
    print(f"checkpoint: {result.checkpoint}")
    return 0


def _cmd_psl(args: argparse.Namespace) -> int:
    # PSL is a training scheme; this verb is `train` with the scheme and its teacher set (chunk length
    # and teacher weight: the scheme's defaults unless given)
    overrides = ["scheme.name=psl", f"scheme.teacher={Path(args.teacher).resolve()}"]
    for key, value in (("chunk_seconds", args.chunk_seconds), ("teacher_weight", args.teacher_weight)):
        if value is not None:
            overrides.append(f"scheme.{key}={value}")
    overrides += args.overrides
    return _cmd_train(argparse.Namespace(config=args.config, overrides=overrides))


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from .experiments.evaluation import evaluate_checkpoint

    report = evaluate_checkpoint(args.checkpoint, args.labels, args.audio_dir, progress=not args.quiet,
                                 event_output=args.event_output)
    text = report.to_markdown()
    print(text)
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)  # as export and plot do
        Path(args.output).write_text(text)
    return 0


def _cmd_tag(args: argparse.Namespace) -> int:
    from .config import tagging_config
    from .inference import Tagger, parse_thresholds, tag_files

    if args.timeline and not args.out:
        raise ValueError("--timeline needs --out DIR")
    segments = args.segments
    if segments == "":
        if not args.out:
            raise ValueError("--segments without a path needs --out DIR (or give --segments FILE.npz)")
        segments = True
    settings = tagging_config(batch_size=args.batch_size, chunk_seconds=args.chunk_seconds,
                              pad_batches=args.pad_batches or None, skip_silent=False if args.keep_silent else None,
                              keep_spectrogram=args.timeline or None, num_threads=args.threads,
                              event_output=args.event_output, median_filter_seconds=args.median_filter,
                              detect_events=False if args.no_events else None)
    tagger = Tagger.from_checkpoint(args.checkpoint, backend=args.backend, onnx_path=args.onnx, settings=settings)
    if args.event_threshold is not None:
        defaults = tagger.event_settings.thresholds or None
        tagger.configure_events(thresholds=parse_thresholds(args.event_threshold, tagger.classes, defaults))
    if args.tag_threshold is not None:
        tagger.tag_thresholds = np.asarray(parse_thresholds(args.tag_threshold, tagger.classes, tagger.tag_thresholds))

    def show(result) -> None:
        # one line of tags per file (* marks a tag at or above its class threshold), then its events
        tags = result.select_tags(args.top_k, args.select)
        write(f"{result.source}\t" + "\t".join(f"{t.label}:{t.probability:.3f}{'*' if t.above_threshold else ''}"
                                                for t in tags))
        for e in result.events:
            write(f"  event\t{e.label}\t{e.onset:.2f}-{e.offset:.2f} s\tscore {e.score:.3f}")

    def write(line: str) -> None:  # above the progress bar, never into it
        from tqdm.auto import tqdm

        tqdm.write(line, file=sys.stdout)

    if not args.out:
        print("tags: label:probability, * = at or above the class threshold; events: label onset-offset score",
              file=sys.stderr)
    summary = tag_files(tagger, args.inputs, args.out, top_k=args.top_k, select=args.select, timeline=args.timeline,
                        segments=segments, json_path=args.json, progress=not args.quiet,
                        on_result=None if args.out else show)
    sys.stdout.flush()
    print(summary.text(), file=sys.stderr)
    return 1 if summary.failed and not summary.ok else 0


def _cmd_export(args: argparse.Namespace) -> int:
    from .inference.export import export_onnx

    if args.format != "onnx":
        raise ValueError(f"unknown export format {args.format!r} (only onnx)")
    low, high = _opset_range()
    if not low <= args.opset <= high:  # outside it torch prints its whole graph before failing
        raise ValueError(f"--opset {args.opset}: this PyTorch exports ONNX opsets {low} to {high}")
    output = args.output or str(Path(args.checkpoint).with_suffix(".onnx"))
    report = export_onnx(args.checkpoint, output, frontend=not args.no_frontend, opset=args.opset,
                         verify=not args.no_verify, verify_audio=args.verify_audio)
    kind = "waveform (batch, samples) in, front end included" if report.frontend else "log-mel (batch, frames, 64) in"
    print(f"wrote {report.path} (ONNX opset {report.opset}; {kind})")
    for name, diff in report.max_abs_diff.items():
        print(f"  max |onnxruntime - torch| on {name}: {diff:.2e}")
    if report.max_abs_diff:
        print(f"  parity {'OK' if report.ok else 'FAILED'} (tolerance {report.tolerance:g})")
    return 0


def _opset_range() -> tuple[int, int]:
    try:
        from torch.onnx import _constants

        return _constants.ONNX_MIN_OPSET, _constants.ONNX_MAX_OPSET
    except (ImportError, AttributeError):  # a private module: a later PyTorch may move it
        return 7, 20


def _cmd_synth(args: argparse.Namespace) -> int:
    from .synth import SynthConfig, synthesize, synthesize_splits

    config = SynthConfig(num_clips=args.num_clips, clip_seconds=args.seconds, seed=args.seed)
    if args.splits:
        splits = {}
        for item in args.splits.split(","):
            name, _, count = (part.strip() for part in item.partition("="))
            if not name or not count.isdigit():
                raise ValueError(f"--splits: {item!r} is not name=count (e.g. train=600,validation=200,test=300)")
            splits[name] = int(count)
        manifests = synthesize_splits(args.out_dir, splits, config, args.sources, args.backgrounds)
        for name, m in manifests.items():
            print(f"{name}: {len(m)} clips, {len(m.classes)} classes -> {Path(args.out_dir) / name}")
    else:
        m = synthesize(args.out_dir, config, args.sources, args.backgrounds)
        print(f"{len(m)} clips, {len(m.classes)} classes -> {args.out_dir}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from .experiments.demo import run_demo

    result = run_demo(args.out_dir, epochs=args.epochs, seed=args.seed, log=lambda line: print(line, flush=True))
    print()
    print(result.table())
    minutes = result.compare_minutes()
    took = f"about {minutes:.0f} min here" if minutes >= 1 else "under a minute here"
    print("\nOne seed is one draw: differences of a few points between schemes are within seed-to-seed noise.\n"
          f"For a real comparison, run paired trials (Wilcoxon tests included; {took}):\n"
          f"  {result.compare_command()}")
    print(f"\ntotal {result.wall_seconds / 60:.1f} min; data, runs and checkpoints under {result.out_dir}")
    print("\nTry next:")
    for command in result.next_commands():
        print(f"  {command}")
    return 0


def _cmd_schemes(args: argparse.Namespace) -> int:
    from .supervision import SCHEMES

    for name, cls in SCHEMES.items():
        print(f"{name:24s} {cls.description}")
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    import shlex

    from .config import load_config, recipe_config
    from .experiments.compare import run_compare
    from .recipes import recipe_names, recipe_path
    from .supervision import SCHEMES

    config = load_config(args.config, args.overrides)
    recipes, recipe_sources = {}, {}
    for spec in args.recipe or []:
        name, sep, path = (part.strip() for part in spec.partition("="))
        if not sep and name in recipe_names():  # a packaged recipe by its name
            path = str(recipe_path(name))
        elif not sep or not name or not path or ":" in name or "/" in name:
            raise ValueError(f"--recipe {spec!r}: expected NAME=CONFIG.yaml (a name without ':' or '/') or a "
                             f"packaged recipe ({', '.join(recipe_names())})")
        recipes[name] = recipe_config(config, path, args.overrides)
        recipe_sources[name] = path if sep else f"{name} (packaged: {path})"
    schemes = [s.strip() for s in args.schemes.split(",") if s.strip()] if args.schemes else list(SCHEMES)
    seeds = None
    if args.seeds:
        try:
            seeds = [int(s) for s in args.seeds.split(",")]
        except ValueError:
            raise ValueError(f"--seeds: {args.seeds!r} is not comma-separated whole numbers (e.g. 0,1,2)") from None
    trials = args.trials if args.trials is not None else (len(seeds) if seeds else 5)
    gain_pair = tuple(s.strip() for s in args.gain_pair.split(",")) if args.gain_pair else None
    out_dir = args.out_dir or config.output_dir
    command = ["weaktag", "compare", "--config", args.config, "--schemes", ",".join(schemes), "--trials", str(trials),
               "--out-dir", str(out_dir)]
    for flag, value in (("--seeds", args.seeds), ("--gain-pair", args.gain_pair), ("--clip", args.clip)):
        if value:
            command += [flag, value]
    if args.durations_from != "auto":
        command += ["--durations-from", args.durations_from]
    for spec in args.recipe or []:
        command += ["--recipe", spec]
    result = run_compare(config, schemes, trials, out_dir, seeds, gain_pair=gain_pair, attention_clip=args.clip,
                         durations_from=args.durations_from, command=shlex.join(command + list(args.overrides)),
                         recipes=recipes, recipe_sources=recipe_sources,
                         note=args.note, log=None if args.quiet else print)
    print()
    print((Path(out_dir) / "table.md").read_text())
    print(f"{len(result.ran)} trial(s) run, {len(result.reused)} reused; {result.wall_seconds:.0f} s")
    print(f"report: {result.report}")
    return 0


def _cmd_plot(args: argparse.Namespace) -> int:
    from .experiments.figures import attention_figure_for_audio, gain_vs_duration_for_checkpoints

    if args.figure == "gain-vs-duration":
        table = gain_vs_duration_for_checkpoints(args.checkpoint_a, args.checkpoint_b, args.labels, args.out,
                                                 audio_dir=args.audio_dir, durations_labels=args.durations_labels,
                                                 table_out=args.table)
        print(table.to_markdown())
    else:
        figure = attention_figure_for_audio(args.checkpoint, args.audio, args.out, labels=args.labels,
                                            audio_dir=args.audio_dir, show=args.show)
        events = ", ".join(f"{e.label} {e.onset:.2f}-{e.offset:.2f} s" for e in figure.events)
        print(f"{figure.seconds:.1f} s of audio; panels: {'; '.join(figure.panels)}"
              + (f"; events: {events}" if events else ""))
    print(f"figure: {args.out}")
    return 0


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("weaktag")
    except Exception:  # running from a source tree that was never installed
        from . import __version__

        return __version__


_VERBOSE_HELP = "show library warnings, logs and tracebacks"


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Adds "(default: X)" where it informs: not when the help already says its default, and not for
    required options, flags (default False) or options whose default is "not given" (None)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default  # by identity: a default of 0 is informative, and 0 == False
        unset = default is None or default is False or default is argparse.SUPPRESS or default == []
        if "default" in text or action.required or not action.option_strings or unset:
            return text
        return f"{text} (default: %(default)s)"


def _verbose_after_verb(parser: argparse.ArgumentParser) -> None:
    """``weaktag train ... -v`` works as well as ``weaktag -v train ...``; SUPPRESS keeps the top-level
    value when the verb's parser does not see the flag."""
    parser.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help=_VERBOSE_HELP)


def build_parser() -> argparse.ArgumentParser:
    from .config import TaggingConfig
    from .postprocess import OUTPUT_KINDS

    tagging = TaggingConfig()  # the one set of tagging defaults, shared with the Python API
    formatter = _HelpFormatter
    parser = argparse.ArgumentParser(prog="weaktag", description="Weakly labeled audio event classification.")
    parser.add_argument("-v", "--verbose", action="store_true", help=_VERBOSE_HELP)
    parser.add_argument("--version", action="version", version=f"weaktag {_version()}")
    sub = parser.add_subparsers(dest="verb", required=True)

    def verb(name: str, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help, formatter_class=formatter)
        _verbose_after_verb(p)
        return p

    p = verb("train", "train one model from a YAML config")
    p.add_argument("--config", required=True, help="YAML config (see configs/)")
    p.add_argument("overrides", nargs="*", help="section.key=value overrides, e.g. scheme.name=attention train.lr=1e-3")
    p.set_defaults(func=_cmd_train)

    p = verb("psl", "train a PSL student (Dinkel et al. 2022) on chunks labelled by a teacher checkpoint")
    p.add_argument("--teacher", required=True, help="the teacher: a weaktag checkpoint (model.pt) on the same classes")
    p.add_argument("--config", required=True, help="YAML config of the student (data, model, train); see configs/")
    p.add_argument("--chunk-seconds", type=float, default=None,
                   help="length of the chunks the teacher labels (default: the psl scheme's, 2 s)")
    p.add_argument("--teacher-weight", type=float, default=None,
                   help="w in w * BCE(student, teacher) + (1 - w) * BCE(student, clip labels) (default 0.5)")
    p.add_argument("overrides", nargs="*", help="section.key=value overrides, as for train")
    p.set_defaults(func=_cmd_psl)

    p = verb("evaluate", "tagging (and event) metrics of a checkpoint on a labelled set")
    p.add_argument("--checkpoint", required=True, help="a weaktag checkpoint (model.pt written by train)")
    p.add_argument("--labels", required=True, help="label file: DCASE TSV, manifest .jsonl, folder ...")
    p.add_argument("--audio-dir", default=None, help="folder of the audio files the labels name "
                   "(default: relative to the label file)")
    p.add_argument("--output", default=None, help="also write the report (markdown) here")
    p.add_argument("--event-output", choices=OUTPUT_KINDS, default=None,
                   help="which output scores time for event metrics (default: the checkpoint's, X^a)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_evaluate)

    p = verb("tag", "tag audio files, folders or globs: clip tags, events, timelines")
    p.add_argument("--checkpoint", required=True, help="weaktag checkpoint (.pt), or an ONNX file from `weaktag export`")
    p.add_argument("inputs", nargs="+", help="audio files, folders (searched recursively) and glob patterns")
    p.add_argument("--out", default=None, help="write tags.csv, tags.json, events.tsv, errors.tsv, summary.json here "
                   "(default: print one line per file, and its events)")
    p.add_argument("--backend", choices=("torch", "onnxruntime"), default=None,
                   help="default: onnxruntime for an .onnx --checkpoint, torch otherwise")
    p.add_argument("--onnx", default=None, help="exported model for --backend onnxruntime (default: export now)")
    p.add_argument("--top-k", type=int, default=5, help="report the K most probable classes")
    p.add_argument("--select", choices=("top-k", "threshold", "union"), default="union",
                   help="clip tags: the top K, those above their class threshold, or either")
    p.add_argument("--tag-threshold", default=None,
                   help="clip thresholds: 0.4 | one per class, comma-separated | label=value,... (default: checkpoint)")
    p.add_argument("--event-output", choices=OUTPUT_KINDS, default=None,
                   help="segment matrix that scores events (default: checkpoint)")
    p.add_argument("--event-threshold", default=None,
                   help="event thresholds: 0.5 | one per class | label=value,... (default: checkpoint, else 0.5)")
    p.add_argument("--median-filter", type=float, default=None, metavar="SECONDS",
                   help="median filter length in seconds, 0 = off (default: checkpoint)")
    p.add_argument("--no-events", action="store_true", help="clip tags only: no event decoding, no events.tsv")
    p.add_argument("--timeline", action="store_true", help="also write timelines/<name>.png under --out")
    p.add_argument("--segments", nargs="?", const="", default=None, metavar="FILE.npz",
                   help="save X^a, A and X^b per file (default file: OUT/segments.npz)")
    p.add_argument("--json", default=None, help="also write the tags and events as JSON here")
    p.add_argument("--keep-silent", action="store_true",
                   help="tag all-zero (silent) files too, instead of reporting them as failures")
    p.add_argument("--batch-size", type=int, default=tagging.batch_size, help="files per forward pass")
    p.add_argument("--chunk-seconds", type=float, default=tagging.chunk_seconds,
                   help="chunk length for long files, any value > 0 (rounded to whole 0.16 s segments)")
    p.add_argument("--pad-batches", action="store_true", help="also batch files of different lengths (zero-padded)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: all)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_tag)

    p = verb("export", "export a checkpoint to ONNX (dynamic batch and time), verified against PyTorch")
    p.add_argument("--checkpoint", required=True, help="a weaktag checkpoint (model.pt)")
    p.add_argument("--format", default="onnx", choices=("onnx",), help="export format")
    p.add_argument("--output", "-o", default=None, help="output file (default: the checkpoint's name with .onnx)")
    p.add_argument("--no-frontend", action="store_true", help="log-mel (batch, frames, bands) input instead of waveform")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset")
    p.add_argument("--verify-audio", nargs="*", default=[], metavar="FILE",
                   help="also check parity on these audio files (random audio is always checked)")
    p.add_argument("--no-verify", action="store_true", help="skip the onnxruntime-vs-PyTorch check")
    p.set_defaults(func=_cmd_export)

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
    p.add_argument("--config", required=True, help="YAML config shared by every trial (needs data.test)")
    p.add_argument("--schemes", default=None, help="comma-separated scheme names (default: all; see weaktag "
                   "schemes); RECIPE:SCHEME trains SCHEME under a --recipe")
    p.add_argument("--recipe", action="append", default=None, metavar="NAME=CONFIG",
                   help="another recipe on the same data (its model, scheme, train and augment sections; the data "
                   "comes from --config), compared as arms NAME:SCHEME; a packaged recipe by name alone "
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
    p.add_argument("--note", default=None, help="a line of text for the report")
    p.add_argument("--quiet", action="store_true", help="no per-trial progress lines")
    p.add_argument("overrides", nargs="*", help="section.key=value config overrides, e.g. train.max_epochs=10")
    p.set_defaults(func=_cmd_compare)

    p = verb("plot", "the paper's figures from checkpoints: gain-vs-duration (Fig. 4), attention (5)")
    figures = p.add_subparsers(dest="figure", required=True)
    f = figures.add_parser("gain-vs-duration", help="per-class AP gain of checkpoint B over A vs. event duration",
                           formatter_class=formatter)
    _verbose_after_verb(f)
    f.add_argument("--checkpoint-a", required=True, help="baseline model (e.g. attention)")
    f.add_argument("--checkpoint-b", required=True, help="model whose gain is plotted (e.g. attention-self)")
    f.add_argument("--labels", required=True, help="labelled evaluation set (AP per class; durations if strong)")
    f.add_argument("--audio-dir", default=None, help="folder of the audio files the labels name")
    f.add_argument("--durations-labels", default=None, help="strong labels for the durations (default: --labels)")
    f.add_argument("--table", default=None, help="also write the table here (.csv, else markdown)")
    f.add_argument("--out", required=True, help="PNG to write")
    f.set_defaults(func=_cmd_plot)
    f = figures.add_parser("attention", help="log-mel, ground truth, attention A and X^a of one recording",
                           formatter_class=formatter)
    _verbose_after_verb(f)
    f.add_argument("--checkpoint", required=True, action="append", help="a model; repeat for more panels")
    f.add_argument("--audio", required=True, help="the recording")
    f.add_argument("--labels", default=None, help="strong labels holding the recording (ground-truth row)")
    f.add_argument("--audio-dir", default=None, help="folder of the audio files the labels name")
    f.add_argument("--show", choices=("both", "attention", "segment"), default="both", help="which matrices per model")
    f.add_argument("--out", required=True, help="PNG to write")
    f.set_defaults(func=_cmd_plot)
    return parser


#: failures a user can cause and fix (bad files, configs, labels, options): one line, exit status 2
EXPECTED_ERRORS: tuple[type[BaseException], ...] = (FileNotFoundError, PermissionError, IsADirectoryError,
                                                    NotADirectoryError, ValueError, RuntimeError, OSError)


def _quiet_dependencies() -> None:
    """Warnings from dependencies that a user cannot act on (shown again with -v)."""
    warnings.filterwarnings("ignore", category=UserWarning, module="lightning")
    # sed_eval -> dcase_util imports pkg_resources, which setuptools deprecates loudly
    warnings.filterwarnings("ignore", message=".*pkg_resources is deprecated.*")
    warnings.filterwarnings("ignore", category=DeprecationWarning)


def _one_line_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                      file=None, line: str | None = None) -> None:
    """What is left after _quiet_dependencies (e.g. "skipping clip: file not found"), as one line
    without Python's source location and code echo."""
    print(f"weaktag: warning: {' '.join(str(message).split())}", file=file or sys.stderr)


#: loggers that say "GPU available", "💡 Tip", "`Trainer.fit` stopped" and the like at INFO
_CHATTY_LOGGERS = ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero",
                   "lightning.pytorch.loops", "lightning.pytorch.accelerators", "lightning.pytorch.trainer")


@contextlib.contextmanager
def _cli_output(verbose: bool) -> Iterator[None]:
    """Warnings and log levels for one command, restored afterwards (main() is also called from tests).

    Lightning logs "GPU available ...", "💡 Tip: ..." at INFO through console handlers of its own
    (set up when it is imported, whenever that is), so its chatty loggers get a level instead.
    """
    chatty = [] if verbose else [logging.getLogger(name) for name in _CHATTY_LOGGERS]
    levels = [logger.level for logger in chatty]
    for logger in chatty:
        logger.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            if not verbose:
                _quiet_dependencies()
                warnings.showwarning = _one_line_warning
            yield
    finally:
        for logger, level in zip(chatty, levels):
            logger.setLevel(level)


def _error_line(exc: BaseException) -> str:
    """One line for an expected error; an OSError from the system says its file and reason."""
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        return f"{exc.filename}: {exc.strerror}"
    return " ".join(str(exc).split()) or type(exc).__name__


_PACKAGE = Path(__file__).resolve().parent


def _raised_in_weaktag(exc: BaseException) -> bool:
    """True when weaktag itself raised ``exc`` (a message written for users), False when a dependency
    did (its message may be obscure, or a bug: the traceback helps)."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    # by file, not module name: under `python -m weaktag.cli` this module is __main__
    return tb is None or Path(tb.tb_frame.f_code.co_filename).resolve().is_relative_to(_PACKAGE)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    with _cli_output(args.verbose):
        try:
            return args.func(args)
        except KeyboardInterrupt:
            print(f"weaktag {args.verb}: interrupted", file=sys.stderr)
            return 130
        except EXPECTED_ERRORS as exc:
            if args.verbose:
                traceback.print_exc()
            # an OSError names its file and reason; other errors from inside a dependency may be bugs
            explained = args.verbose or isinstance(exc, OSError) or _raised_in_weaktag(exc)
            hint = "" if explained else " (weaktag -v shows the traceback)"
            print(f"weaktag {args.verb}: error: {_error_line(exc)}{hint}", file=sys.stderr)
            return 2


if __name__ == "__main__":
    sys.exit(main())
