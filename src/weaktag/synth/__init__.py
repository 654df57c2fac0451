"""Soundscape synthesis: clips whose event onsets/offsets are known to the millisecond.

* :mod:`.generated` — event sounds and backgrounds weaktag generates itself;
* :mod:`.scenes` — real sources (discovery, trimming), mixing, and ``synthesize`` / ``synthesize_splits``.
"""

from .generated import GENERATED_CLASSES, generate_event
from .scenes import (
    SynthConfig,
    _allocate,
    class_names,
    discover_sources,
    read_sources_tsv,
    synthesize,
    synthesize_splits,
    trim_bounds,
    trim_silence,
)

__all__ = [
    "GENERATED_CLASSES",
    "SynthConfig",
    "class_names",
    "discover_sources",
    "generate_event",
    "read_sources_tsv",
    "synthesize",
    "synthesize_splits",
    "trim_bounds",
    "trim_silence",
]
