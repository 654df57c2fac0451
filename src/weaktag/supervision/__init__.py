"""Training schemes, one module per family; pick one by name with :func:`make_scheme`."""

from __future__ import annotations

from .attention import ATTENTION_TARGETS, Attention, StronglySupervisedAttention, attention_loss
from .base import Batch, LossTerms, TrainingScheme, bce
from .pooling import PoolStrong, PoolWeak, PoolWeakStrong
from .self_supervised import SelfSupervisedAttention, StrongAndSelfSupervisedAttention, pseudo_strong_labels

SCHEMES: dict[str, type[TrainingScheme]] = {
    cls.name: cls
    for cls in (
        PoolWeak,
        PoolStrong,
        PoolWeakStrong,
        Attention,
        StronglySupervisedAttention,
        SelfSupervisedAttention,
        StrongAndSelfSupervisedAttention,
    )
}


def make_scheme(name: str, alpha: float = 1.0, attention_target: str = "normalized") -> TrainingScheme:
    """Build a scheme by its name (``weaktag schemes`` lists them)."""
    try:
        cls = SCHEMES[name]
    except KeyError:
        raise ValueError(f"unknown scheme {name!r}; choose one of: {', '.join(SCHEMES)}") from None
    if cls in (StronglySupervisedAttention, SelfSupervisedAttention, StrongAndSelfSupervisedAttention):
        return cls(alpha=alpha, attention_target=attention_target)
    return cls()


__all__ = [
    "ATTENTION_TARGETS",
    "SCHEMES",
    "Attention",
    "Batch",
    "LossTerms",
    "PoolStrong",
    "PoolWeak",
    "PoolWeakStrong",
    "SelfSupervisedAttention",
    "StrongAndSelfSupervisedAttention",
    "StronglySupervisedAttention",
    "TrainingScheme",
    "attention_loss",
    "bce",
    "make_scheme",
    "pseudo_strong_labels",
]
