"""``weaktag train``, ``psl``, ``distill`` and ``evaluate``: training runs and their evaluation."""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path

from ..errors import UsageError
from .common import VerbFactory, labelled_set_options, log_lines_on_stdout


def _cmd_train(args: argparse.Namespace) -> int:
    from ..config import load_config
    from ..training import train

    config = load_config(args.config, args.overrides)
    # without Lightning's progress bar, training logs a line every epoch (instead of minutes of silence):
    # printed with the results on stdout
    with contextlib.nullcontext() if config.train.progress else log_lines_on_stdout("weaktag.training"):
        result = train(config, resume=args.resume, overwrite=args.overwrite)
    if result.best_epoch < 0:  # another rank of a distributed run: rank 0 reports
        return 0
    print(f"best epoch {result.best_epoch}: validation mAP {result.best_val_map:.4f}")
    if result.test_map is not None:
        print(f"test mAP {result.test_map:.4f}")
    skipped = sum(len(v) for v in result.skipped.values())
    if skipped:
        print(f"skipped {skipped} unreadable clip(s); see {Path(config.output_dir) / 'summary.json'}")
    print(f"checkpoint: {result.checkpoint}")
    return 0


def _cmd_taught(args: argparse.Namespace) -> int:
    # PSL and distillation are training schemes; these verbs are `train` with the scheme and its teacher set
    # (the other settings: the scheme's defaults unless given)
    overrides = [f"scheme.name={args.scheme}", f"scheme.teacher={Path(args.teacher).resolve()}"]
    for key in ("chunk_seconds", "teacher_weight", "segment_weight"):
        value = getattr(args, key, None)
        if value is not None:
            overrides.append(f"scheme.{key}={value}")
    overrides += args.overrides
    return _cmd_train(argparse.Namespace(config=args.config, overrides=overrides, resume=args.resume,
                                         overwrite=args.overwrite))


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from ..experiments.evaluation import evaluate_checkpoint, evaluate_score_tables, write_confusion_figure

    if args.scores is not None:
        if args.onnx is not None:
            raise UsageError("--onnx runs a checkpoint's export; score tables hold their scores already")
        if args.event_output is not None:
            raise UsageError("--event-output chooses a checkpoint's output; score tables hold one already")
        report = evaluate_score_tables(args.scores, args.labels, args.audio_dir)
    else:
        report = evaluate_checkpoint(args.checkpoint, args.labels, args.audio_dir, progress=not args.quiet,
                                     event_output=args.event_output, onnx_path=args.onnx)
    figure = None
    if args.output and report.tagging.confusion is not None:  # single-label labels: beside the report
        figure = write_confusion_figure(report, Path(args.output).with_suffix(".confusion.png"))
    text = report.to_markdown(confusion_figure=figure.name if figure else None)
    print(text)
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)  # as export and plot do
        Path(args.output).write_text(text)
    if figure:
        print(f"confusion matrix: {figure}")
    return 0


def _taught_verb(verb: VerbFactory, name: str, description: str, config_help: str,
                 weight_default: str) -> argparse.ArgumentParser:
    """A verb that trains a student of a teacher checkpoint (``psl``, ``distill``): `train` with its scheme set."""
    p = verb(name, description)
    p.add_argument("--teacher", required=True, help="the teacher: a weaktag checkpoint (model.pt) on the same classes")
    p.add_argument("--config", required=True, help=config_help)
    p.add_argument("--chunk-seconds", type=float, default=None,
                   help=f"length of the chunks the teacher labels (default: the {name} scheme's, 2 s)")
    p.add_argument("--teacher-weight", type=float, default=None,
                   help=f"w in w * BCE(student, teacher) + (1 - w) * BCE(student, clip labels) ({weight_default})")
    p.add_argument("--resume", action="store_true", help="continue a stopped run, as for train")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier run in output_dir, as for train")
    p.add_argument("overrides", nargs="*", help="section.key=value overrides, as for train")
    return p


def add_verbs(verb: VerbFactory) -> None:
    from ..postprocess import OUTPUT_KINDS

    p = verb("train", "train one model from a YAML config")
    p.add_argument("--config", required=True, help="YAML config (see configs/)")
    p.add_argument("--resume", action="store_true", help="continue a stopped run of this config from the last "
                   "epoch saved in its output_dir (same result as an uninterrupted run)")
    p.add_argument("--overwrite", action="store_true", help="replace an earlier run in output_dir (its model.pt, "
                   "summary.json, MODEL_CARD.md, checkpoints/ and logs/; other files stay)")
    p.add_argument("overrides", nargs="*", help="section.key=value overrides, e.g. scheme.name=attention train.lr=1e-3")
    p.set_defaults(func=_cmd_train)

    p = _taught_verb(verb, "psl", "train a PSL student (Dinkel et al. 2022) on chunks labelled by a teacher checkpoint",
                     "YAML config of the student (data, model, train); see configs/",
                     "default 1: PSL proper, the teacher's labels alone; 0.5 is the paper's teacher-student baseline")
    p.set_defaults(func=_cmd_taught, scheme="psl")

    p = _taught_verb(verb, "distill", "train a small student on a teacher checkpoint's clip and segment outputs on "
                     "chunks, with the clip labels mixed in",
                     "YAML config of the student (data, model, train), e.g. narrow", "default 0.9")
    p.add_argument("--segment-weight", type=float, default=None,
                   help="lambda of BCE(student's segment probabilities, teacher's segment scores) (default 1)")
    p.set_defaults(func=_cmd_taught, scheme="distill")

    p = verb("evaluate", "tagging (and event) metrics of a checkpoint, or of another system's score tables, on a "
             "labelled set")
    scored = p.add_mutually_exclusive_group(required=True)
    scored.add_argument("--checkpoint", help="a weaktag checkpoint (model.pt written by train)")
    scored.add_argument("--scores", metavar="DIR", help="a folder of sed_scores_eval score tables (<audio id>.tsv: "
                        "onset offset <class>...), e.g. from `weaktag tag --scores`, instead of a checkpoint")
    labelled_set_options(p, "DCASE TSV, manifest .jsonl, folder ...")
    p.add_argument("--output", default=None, help="also write the report (markdown) here, and for single-label "
                   "labels the confusion matrix beside it (REPORT.confusion.png)")
    p.add_argument("--event-output", choices=OUTPUT_KINDS, default=None,
                   help="which output scores time for event metrics (default: the checkpoint's, X^a)")
    p.add_argument("--onnx", default=None, metavar="FILE", help="score the audio with this export of the checkpoint "
                   "(e.g. its int8 copy, `weaktag export --int8`) on onnxruntime instead of PyTorch")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_evaluate)
