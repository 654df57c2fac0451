"""``weaktag info``: what a checkpoint is (its model card) and what it costs to run."""

from __future__ import annotations

import argparse

from .common import VerbFactory


def _cmd_info(args: argparse.Namespace) -> int:
    from ..card import describe_checkpoint

    print(describe_checkpoint(args.checkpoint), end="")
    return 0


def add_verbs(verb: VerbFactory) -> None:
    p = verb("info", "a checkpoint's model card (classes, data, metrics, thresholds, licence), front end and cost")
    p.add_argument("checkpoint", help="a weaktag checkpoint (model.pt)")
    p.set_defaults(func=_cmd_info)
