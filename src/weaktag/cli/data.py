"""``weaktag pack``: datasets decoded once into HDF5 shards that training reads instead of the audio files."""

from __future__ import annotations

import argparse
import os

from ..errors import UsageError
from .common import VerbFactory, labelled_set_options


def _cmd_pack(args: argparse.Namespace) -> int:
    from ..labels import detect_label_format, read_labels
    from ..packing import pack

    extra = {}
    if args.class_labels_indices is not None:
        # only the AudioSet reader takes it; any other reader would fail on an unexpected argument
        if detect_label_format(args.labels) != "audioset":
            raise UsageError(f"{args.labels}: --class-labels-indices is for AudioSet segment CSVs only")
        extra["class_labels_indices"] = args.class_labels_indices
    manifest = read_labels(args.labels, audio_dir=args.audio_dir, **extra)
    report = pack(manifest, args.out, sample_rate=args.sample_rate, clips_per_shard=args.clips_per_shard,
                  workers=args.workers, progress=not args.quiet, overwrite=args.overwrite, labels=args.labels)
    print(report.summary())
    return 0


def add_verbs(verb: VerbFactory) -> None:
    from ..labels.pack import DEFAULT_CLIPS_PER_SHARD, DEFAULT_SAMPLE_RATE  # not ..packing: it imports torch

    p = verb("pack", "decode a labelled set once into HDF5 shards (int16 waveforms and labels) for training")
    labelled_set_options(p, "DCASE TSV, manifest .jsonl, AudioSet CSV, folder ...")
    p.add_argument("--out", required=True, help="the pack folder to write (must not exist, or be empty)")
    p.add_argument("--sample-rate", type=int, default=DEFAULT_SAMPLE_RATE,
                   help="rate the waveforms are stored at: the backbone's front end's (44100 for aisfx)")
    p.add_argument("--clips-per-shard", type=int, default=DEFAULT_CLIPS_PER_SHARD, help="clips in each HDF5 file")
    p.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1),
                   help="processes that decode audio (0 or 1: decode in this one)")
    p.add_argument("--class-labels-indices", default=None,
                   help="class_labels_indices.csv, for an AudioSet segment CSV")
    p.add_argument("--overwrite", action="store_true", help="replace the pack already in --out")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_pack)
