"""Tagging recordings with a trained model: the engine, its backends, batch tagging with output files,
timelines and ONNX export.

* :mod:`.engine` — :class:`Tagger`: chunked, batched tagging of files or arrays of any length;
* :mod:`.settings` — :class:`TaggingConfig`, and what a tagger derives from it (chunk plan, thresholds);
* :mod:`.chunking` — long recordings through the network chunk by chunk, stitched; spectrograms for timelines;
* :mod:`.batching` — short recordings batched into forward passes;
* :mod:`.results` — :class:`TagResult`, :class:`ClipTag`, :class:`TagFailure`;
* :mod:`.backends` — PyTorch and onnxruntime;
* :mod:`.decoding` — headers and short files read in worker processes (``decode_workers``);
* :mod:`.batch` — :func:`tag_files` (what ``weaktag tag`` runs) and input discovery;
* :mod:`.embedding` — :class:`Embedder` and :func:`embed_files` (``weaktag embed``): features instead of tags;
* :mod:`.writers` — tags.csv / tags.json / events.tsv / errors.tsv / segments.npz;
* :mod:`.timeline` — a PNG per recording;
* :mod:`.export` — ``weaktag export`` to ONNX, verified against PyTorch.
"""

from .settings import TaggingConfig, tagging_config
from ..postprocess import DetectedEvent, EventSettings, parse_thresholds
from .batch import TagRunSummary, discover_inputs, tag_files
from .engine import Tagger
from .embedding import Embedder, Embedding, embed_files
from .results import ClipTag, TagFailure, TagResult

__all__ = [
    "ClipTag",
    "DetectedEvent",
    "Embedder",
    "Embedding",
    "EventSettings",
    "TagFailure",
    "TagResult",
    "TagRunSummary",
    "Tagger",
    "TaggingConfig",
    "discover_inputs",
    "embed_files",
    "parse_thresholds",
    "tag_files",
    "tagging_config",
]
