"""``weaktag <verb>``: every verb parses its arguments and calls one library function."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import warnings
from pathlib import Path

import numpy as np


def _cmd_train(args: argparse.Namespace) -> int:
    from .config import load_config
    from .train import train

    config = load_config(args.config, args.overrides)
    result = train(config)
    print(f"best epoch {result.best_epoch}: validation mAP {result.best_val_map:.4f}")
    if result.test_map is not None:
        print(f"test mAP {result.test_map:.4f}")
    skipped = sum(len(v) for v in result.skipped.values())
    if skipped:
        print(f"skipped {skipped} unreadable clip(s); see {Path(config.output_dir) / 'summary.json'}")
    print(f"checkpoint: {result.checkpoint}")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from .evaluate.checkpoint_eval import evaluate_checkpoint

    report = evaluate_checkpoint(args.checkpoint, args.labels, args.audio_dir, progress=not args.quiet)
    text = report.to_markdown()
    print(text)
    if args.output:
        Path(args.output).write_text(text)
    return 0


def _cmd_tag(args: argparse.Namespace) -> int:
    from .infer import Tagger

    tagger = Tagger.from_checkpoint(args.checkpoint)
    rows, failures = [], []
    segments: dict[str, np.ndarray] = {}
    for path in args.files:
        try:
            result = tagger.tag(path)
        except Exception as exc:  # one bad file must not stop the others
            failures.append((path, str(exc)))
            print(f"error: {exc}", file=sys.stderr)
            continue
        tags = result.top(args.top_k)
        rows.append({"file": path, "duration": round(result.duration, 3),
                     "tags": [{"label": l, "probability": round(p, 4)} for l, p in tags]})
        print(f"{path}\t" + "\t".join(f"{l}:{p:.3f}" for l, p in tags))
        if args.segments:
            key = Path(path).name
            segments[f"{key}/segment_probs"] = result.segment_probs
            if result.attention is not None:
                segments[f"{key}/attention"] = result.attention
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    if args.segments:
        np.savez_compressed(args.segments, classes=np.array(tagger.classes), **segments)
    return 1 if failures and not rows else 0


def _cmd_synth(args: argparse.Namespace) -> int:
    from .synth import SynthConfig, synthesize, synthesize_splits

    config = SynthConfig(num_clips=args.num_clips, clip_seconds=args.seconds, seed=args.seed)
    if args.splits:
        splits = {}
        for item in args.splits.split(","):
            name, _, count = item.partition("=")
            splits[name] = int(count)
        manifests = synthesize_splits(args.out_dir, splits, config, args.sources, args.backgrounds)
        for name, m in manifests.items():
            print(f"{name}: {len(m)} clips, {len(m.classes)} classes -> {Path(args.out_dir) / name}")
    else:
        m = synthesize(args.out_dir, config, args.sources, args.backgrounds)
        print(f"{len(m)} clips, {len(m.classes)} classes -> {args.out_dir}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    result = run_demo(args.out_dir, epochs=args.epochs, seed=args.seed)
    print()
    print(result.table())
    print(f"\ntotal {result.wall_seconds:.0f} s; runs and checkpoints under {Path(args.out_dir) / 'runs'}")
    return 0


def _cmd_schemes(args: argparse.Namespace) -> int:
    from .supervision import SCHEMES

    for name, cls in SCHEMES.items():
        print(f"{name:24s} {cls.description}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="weaktag", description="Weakly labeled audio event classification.")
    parser.add_argument("-v", "--verbose", action="store_true", help="show library warnings and logs")
    sub = parser.add_subparsers(dest="verb", required=True)

    p = sub.add_parser("train", help="train one model from a YAML config")
    p.add_argument("--config", required=True, help="YAML config (see configs/)")
    p.add_argument("overrides", nargs="*", help="section.key=value overrides, e.g. scheme.name=attention train.lr=1e-3")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("evaluate", help="tagging (and event) metrics of a checkpoint on a labelled set")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--labels", required=True, help="label file: DCASE TSV, manifest .jsonl, folder ...")
    p.add_argument("--audio-dir", default=None, help="folder of the audio files the labels name")
    p.add_argument("--output", default=None, help="also write the report (markdown) here")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser("tag", help="clip tags with probabilities for audio files")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("files", nargs="+")
    p.add_argument("--top-k", type=int, default=5)
    p.add_argument("--json", default=None, help="write the tags as JSON here")
    p.add_argument("--segments", default=None, help="save segment-level X^a and attention A to this .npz")
    p.set_defaults(func=_cmd_tag)

    p = sub.add_parser("synth", help="write soundscapes with known onsets/offsets")
    p.add_argument("out_dir")
    p.add_argument("--num-clips", type=int, default=100)
    p.add_argument("--splits", default=None, help="e.g. train=600,validation=200,test=300 (overrides --num-clips)")
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sources", default=None, help="real event recordings, <class>/<file> layout")
    p.add_argument("--backgrounds", default=None, help="real background recordings")
    p.set_defaults(func=_cmd_synth)

    p = sub.add_parser("demo", help="synthesize data, train attention vs attention-self, compare (CPU, minutes)")
    p.add_argument("--out-dir", default="weaktag-demo")
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("schemes", help="list the training schemes")
    p.set_defaults(func=_cmd_schemes)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.verbose:
        logging.getLogger("lightning").setLevel(logging.ERROR)
        logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
        warnings.filterwarnings("ignore", category=UserWarning, module="lightning")
    try:
        return args.func(args)
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        print(f"weaktag {args.verb}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
