"""``weaktag tag`` and ``export``: tagging recordings with a trained model, and ONNX export."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from ..errors import ConfigError, UsageError
from .common import VerbFactory


#: the option of ``weaktag tag`` that sets each TaggingConfig field (errors name the option)
TAG_OPTIONS = {"batch_size": "--batch-size", "chunk_seconds": "--chunk-seconds",
               "context_seconds": "--context-seconds", "num_threads": "--threads",
               "event_output": "--event-output", "median_filter_seconds": "--median-filter",
               "stay_on_fraction": "--stay-on", "max_gap_seconds": "--max-gap", "min_duration_seconds": "--min-duration",
               "device": "--device", "decode_workers": "--workers", "top_k": "--top-k", "select": "--select",
               "events_for": "--events-for", "event_thresholds": "--event-threshold",
               "tag_thresholds": "--tag-threshold"}


def _cmd_tag(args: argparse.Namespace) -> int:
    try:
        tagger = _tagger(args)
    except ConfigError as exc:
        if exc.key not in TAG_OPTIONS:
            raise
        raise UsageError(f"{TAG_OPTIONS[exc.key]}: {exc.problem}") from None
    if args.timeline and not args.out:
        raise UsageError("--timeline needs --out DIR")
    if args.report and not args.out:
        raise UsageError("--report needs --out DIR")
    segments = args.segments
    if segments == "":
        if not args.out:
            raise UsageError("--segments without a path needs --out DIR (or give --segments FILE.npz)")
        segments = True
    return _run_tag(args, tagger, segments)


def _tagger(args: argparse.Namespace):
    from dataclasses import replace

    from ..inference.engine import open_model
    from ..inference.settings import tagging_config
    from ..inference import Tagger, parse_thresholds

    settings = tagging_config(batch_size=args.batch_size, chunk_seconds=args.chunk_seconds,
                              context_seconds=args.context_seconds, pad_batches=args.pad_batches or None, skip_silent=False if args.keep_silent else None,
                              keep_spectrogram=args.timeline or args.report or None, num_threads=args.threads,
                              event_output=args.event_output, median_filter_seconds=args.median_filter,
                              stay_on_fraction=args.stay_on, max_gap_seconds=args.max_gap,
                              min_duration_seconds=args.min_duration,
                              detect_events=False if args.no_events else None, device=args.device,
                              decode_workers=args.workers, top_k=args.top_k, select=args.select,
                              events_for=args.events_for)
    checkpoint = open_model(args.checkpoint)
    # label=value thresholds need the classes: one value per class, the checkpoint's for the others;
    # the Tagger checks them, naming each class
    if args.event_threshold is not None:
        settings = replace(settings, event_thresholds=parse_thresholds(args.event_threshold, checkpoint.classes,
                                                                       checkpoint.events.thresholds or None))
    if args.tag_threshold is not None:
        settings = replace(settings, tag_thresholds=parse_thresholds(args.tag_threshold, checkpoint.classes,
                                                                     checkpoint.tag_thresholds))
    return Tagger.from_checkpoint(args.checkpoint, checkpoint=checkpoint, backend=args.backend, onnx_path=args.onnx,
                                  settings=settings)


def _run_tag(args: argparse.Namespace, tagger, segments) -> int:
    from ..inference import tag_files

    def show(result) -> None:
        # one line of tags per file (* marks a tag at or above its class threshold), then its events
        tags = result.select_tags(args.top_k, args.select)
        write(f"{result.source}\t" + "\t".join(f"{t.label}:{t.probability:.3f}{'*' if t.above_threshold else ''}"
                                                for t in tags))
        tagged = result.tagged()
        for e in result.events:
            note = "" if e.label in tagged else "\t(class below its clip threshold)"
            write(f"  event\t{e.label}\t{e.onset:.2f}-{e.offset:.2f} s\tscore {e.score:.3f}{note}")

    def write(line: str) -> None:  # above the progress bar, never into it
        from tqdm.auto import tqdm

        tqdm.write(line, file=sys.stdout)

    if not args.out:
        print("tags: label:probability, * = at or above the class threshold; events: label onset-offset score, "
              "marked when their class is below its clip threshold", file=sys.stderr)
    try:
        summary = tag_files(tagger, args.inputs, args.out, timeline=args.timeline, segments=segments,
                            json_path=args.json, progress=not args.quiet, on_result=None if args.out else show,
                            scores=args.scores, report=args.report)
    except OSError as exc:  # an output that could not be written (tag_files names it): say what that leaves
        if exc.filename is None or not exc.strerror:
            raise
        where = f"the outputs in {args.out} are incomplete" if args.out else "its outputs are incomplete"
        raise OSError(exc.errno, f"{exc.strerror} (tagging stopped; {where})", exc.filename) from exc
    finally:
        tagger.close()  # its decode workers, now rather than when the process exits
    sys.stdout.flush()
    print(summary.text(), file=sys.stderr)
    if summary.interrupted:
        kept = f"; their results are in {args.out}" if args.out else ""
        print(f"weaktag tag: interrupted ({summary.interrupted}) after {summary.files} file(s), "
              f"{summary.not_done} not done{kept}", file=sys.stderr)
        return 128 + int(getattr(signal, summary.interrupted))
    return 1 if summary.failed and not summary.ok else 0


def _cmd_export(args: argparse.Namespace) -> int:
    from ..inference.export import PARITY_FLOOR, PARITY_MARGIN, export_onnx

    if args.format != "onnx":
        raise UsageError(f"unknown export format {args.format!r} (only onnx)")
    low, high = _opset_range()
    if not low <= args.opset <= high:  # outside it torch prints its whole graph before failing
        raise UsageError(f"--opset {args.opset}: this PyTorch exports ONNX opsets {low} to {high}")
    output = args.output or str(Path(args.checkpoint).with_suffix(".onnx"))
    report = export_onnx(args.checkpoint, output, frontend=not args.no_frontend, opset=args.opset,
                         verify=not args.no_verify, verify_audio=args.verify_audio)
    kind = "waveform (batch, samples) in, front end included" if report.frontend else "log-mel (batch, frames, 64) in"
    print(f"wrote {report.path} (ONNX opset {report.opset}; {kind})")
    for check, outputs in report.parity.items():  # the output nearest its tolerance
        name, p = max(outputs.items(), key=lambda item: item[1].diff / item[1].tolerance)
        print(f"  |onnxruntime - torch| on {check}, nearest its tolerance: {p.diff:.2e} ({name}; tolerance "
              f"{p.tolerance:.2e})")
    if report.parity:
        print(f"  parity {'OK' if report.ok else 'FAILED'} (per output: {PARITY_FLOOR:g} + {PARITY_MARGIN:g} x "
              "its float32 and onnxruntime operator error)")
    if args.int8:
        from ..inference.export import quantize_onnx

        quantized = quantize_onnx(report.path)
        print(f"wrote {quantized.path} (int8 dynamic quantisation; clip probabilities within "
              f"{quantized.max_abs_diff:.2e} of the float model's on random audio, bound {quantized.tolerance:g})")
    return 0


def _opset_range() -> tuple[int, int]:
    try:
        from torch.onnx import _constants

        return _constants.ONNX_MIN_OPSET, _constants.ONNX_MAX_OPSET
    except (ImportError, AttributeError):  # a private module: a later PyTorch may move it
        return 7, 20


def add_verbs(verb: VerbFactory) -> None:
    from ..inference.settings import TaggingConfig
    from ..postprocess import OUTPUT_KINDS

    tagging = TaggingConfig()  # the one set of tagging defaults, shared with the Python API

    p = verb("tag", "tag audio files, folders or globs: clip tags, events, timelines")
    p.add_argument("--checkpoint", required=True, help="weaktag checkpoint (.pt), or an ONNX file from `weaktag export`")
    p.add_argument("inputs", nargs="+", help="audio files, folders (searched recursively) and glob patterns")
    p.add_argument("--out", default=None, help="write tags.csv, tags.json, events.tsv, errors.tsv, summary.json here "
                   "(default: print one line per file, and its events)")
    p.add_argument("--backend", choices=("torch", "onnxruntime"), default=None,
                   help="default: onnxruntime for an .onnx --checkpoint, torch otherwise")
    p.add_argument("--onnx", default=None, help="exported model for --backend onnxruntime (default: export now)")
    p.add_argument("--top-k", type=int, default=tagging.top_k, help="report the K most probable classes (K >= 1)")
    p.add_argument("--select", choices=("top-k", "threshold", "union"), default=tagging.select,
                   help="clip tags: the top K, those above their class threshold, or either")
    p.add_argument("--tag-threshold", default=None,
                   help="clip thresholds: 0.4 | one per class, comma-separated | label=value,... (default: checkpoint)")
    p.add_argument("--event-output", choices=OUTPUT_KINDS, default=None,
                   help="segment matrix that scores events (default: checkpoint)")
    p.add_argument("--event-threshold", default=None,
                   help="event thresholds: 0.5 | one per class | label=value,... (default: checkpoint, else 0.5)")
    p.add_argument("--median-filter", type=float, default=None, metavar="SECONDS",
                   help="median filter length in seconds, 0 = off (default: checkpoint)")
    p.add_argument("--stay-on", type=float, default=None, metavar="FRACTION",
                   help="hysteresis: an event lasts while its score stays at or above FRACTION x its threshold, "
                   "1 = off (default: checkpoint)")
    p.add_argument("--max-gap", type=float, default=None, metavar="SECONDS",
                   help="merge events of a class at most this far apart, 0 = off (default: checkpoint)")
    p.add_argument("--min-duration", type=float, default=None, metavar="SECONDS",
                   help="drop events shorter than this, 0 = off (default: checkpoint)")
    p.add_argument("--events-for", choices=("all", "tagged"), default=tagging.events_for,
                   help="events of every class (those of classes below their clip threshold are marked), or only "
                   "of the classes tagged for the clip")
    p.add_argument("--no-events", action="store_true", help="clip tags only: no event decoding, no events.tsv")
    p.add_argument("--timeline", action="store_true", help="also write timelines/<name>.png under --out")
    p.add_argument("--report", action="store_true", help="also write report.html under --out: one self-contained "
                   "page (opens offline) with a player, the spectrogram, scores and clickable events per file, and a "
                   "sortable table of tags")
    p.add_argument("--segments", nargs="?", const="", default=None, metavar="FILE.npz",
                   help="save X^a, A and X^b per file (default file: OUT/segments.npz)")
    p.add_argument("--json", default=None, help="also write the tags and events as JSON here")
    p.add_argument("--scores", default=None, metavar="DIR",
                   help="also write each file's segment scores (the --event-output) as a sed_scores_eval table "
                   "DIR/<audio id>.tsv (onset offset <class>...)")
    p.add_argument("--keep-silent", action="store_true",
                   help="tag all-zero (silent) files too, instead of reporting them as failures")
    p.add_argument("--batch-size", type=int, default=tagging.batch_size, help="files per forward pass")
    p.add_argument("--chunk-seconds", type=float, default=tagging.chunk_seconds,
                   help="chunk length for long files, any value > 0 (rounded to whole 0.16 s segments)")
    p.add_argument("--context-seconds", type=float, default=tagging.context_seconds, metavar="S",
                   help="real audio on each side of a chunk (default: the model's reach; a GRU neck's is declared, "
                        "more makes its chunks closer to a whole-file pass, see docs/model.md#necks)")
    p.add_argument("--pad-batches", action="store_true", help="also batch files of different lengths (zero-padded)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: all)")
    p.add_argument("--device", default=tagging.device, metavar="DEVICE",
                   help="where the network runs: cpu, cuda, cuda:1, ...")
    p.add_argument("--workers", type=int, default=tagging.decode_workers, metavar="N",
                   help="processes that read, decode and resample files while the network runs; 0: this process "
                        "(on a GPU, try the CPU cores less one or two)")
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
    p.add_argument("--int8", action="store_true", help="also write OUTPUT.int8.onnx: onnxruntime's dynamic int8 "
                   "quantisation (smaller, often faster on CPUs; measure its accuracy with evaluate --onnx)")
    p.set_defaults(func=_cmd_export)
