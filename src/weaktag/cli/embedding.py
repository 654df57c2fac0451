"""``weaktag embed``: clip and per-segment embeddings of audio files, from a checkpoint or the bare aisfx backbone."""

from __future__ import annotations

import argparse
import sys

from ..errors import ConfigError, UsageError
from .common import VerbFactory

#: the option of ``weaktag embed`` that sets each TaggingConfig field (errors name the option)
EMBED_OPTIONS = {"batch_size": "--batch-size", "chunk_seconds": "--chunk-seconds",
                 "context_seconds": "--context-seconds", "num_threads": "--threads", "device": "--device",
                 "decode_workers": "--workers"}


def _cmd_embed(args: argparse.Namespace) -> int:
    from ..inference.embedding import Embedder, embed_files

    if (args.checkpoint is None) == (args.backbone is None):
        raise UsageError("give one of --checkpoint CKPT (a trained model) or --backbone aisfx (the bare backbone)")
    options = dict(batch_size=args.batch_size, chunk_seconds=args.chunk_seconds, context_seconds=args.context_seconds,
                   num_threads=args.threads, device=args.device, decode_workers=args.workers,
                   skip_silent=False if args.keep_silent else None)
    try:
        embedder = (Embedder.from_checkpoint(args.checkpoint, **options) if args.checkpoint
                    else Embedder.from_backbone(args.backbone, **options))
    except ConfigError as exc:
        if exc.key not in EMBED_OPTIONS:
            raise
        raise UsageError(f"{EMBED_OPTIONS[exc.key]}: {exc.problem}") from None
    try:
        summary = embed_files(embedder, args.inputs, args.out)
    finally:
        embedder.close()  # its decode workers
    for failure in summary.failures:
        print(f"{failure.source}: {failure.reason}", file=sys.stderr)
    print(f"{summary.text()} ({embedder.layer} layer, {embedder.dimension} features per "
          f"{embedder.segment_seconds * 1000:.2f} ms segment)", file=sys.stderr)
    return 1 if summary.failed and not summary.ok else 0


def add_verbs(verb: VerbFactory) -> None:
    from ..inference.settings import TaggingConfig

    tagging = TaggingConfig()  # the tagger's defaults: embedding runs on its engine
    p = verb("embed", "clip and per-segment embeddings of audio files (<name>.npz each, index.csv), for your own "
                      "downstream model")
    p.add_argument("inputs", nargs="+", help="audio files, folders (searched recursively) and glob patterns")
    p.add_argument("--checkpoint", default=None,
                   help="a weaktag checkpoint (.pt): the features that feed its head (docs/embeddings.md)")
    p.add_argument("--backbone", default=None, choices=("aisfx",),
                   help="instead of a checkpoint: the bare pretrained backbone's outputs")
    p.add_argument("--out", required=True, help="folder for <name>.npz per file, index.csv and errors.tsv")
    p.add_argument("--keep-silent", action="store_true", help="embed all-zero (silent) files instead of refusing them")
    p.add_argument("--batch-size", type=int, default=tagging.batch_size, help="files per forward pass")
    p.add_argument("--chunk-seconds", type=float, default=tagging.chunk_seconds,
                   help="chunk length for long files (rounded to whole segments)")
    p.add_argument("--context-seconds", type=float, default=tagging.context_seconds, metavar="S",
                   help="real audio on each side of a chunk (default: the model's reach)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: all)")
    p.add_argument("--device", default=tagging.device, metavar="DEVICE", help="cpu, cuda, cuda:1, ...")
    p.add_argument("--workers", type=int, default=tagging.decode_workers, metavar="N",
                   help="processes that decode files while the network runs; 0: this process")
    p.set_defaults(func=_cmd_embed)
