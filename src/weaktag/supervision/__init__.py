"""Training schemes, one module per family; pick one by name with :func:`make_scheme`.

Each scheme class describes itself (labels it uses, attention supervision, Table I row,
parameters; see :class:`TrainingScheme`), and the registry checks those declarations when
the module loads, so a new scheme cannot be half-described.
"""

from __future__ import annotations

from typing import Any

from .attention import (
    ATTENTION_TARGETS,
    Attention,
    AttentionScheme,
    SelfSupervisedAttention,
    StrongAndSelfSupervisedAttention,
    StronglySupervisedAttention,
    attention_loss,
)
from ..batch import Batch
from ..models import HEADS
from .base import LabelKind, LossTerms, TrainingScheme, bce, class_weights, logit_bce, masked_clip_mean
from .baselines import PredictedLabelAssumption, StrongLabelAssumption, extrapolated_labels
from .mmnet import MMNet, MMNetMultiScale, micro_loss
from .extended import PSEUDO_TARGETS, ExtendedSelfSupervisedAttention
from .psl import PseudoStrongLabelStudent
from .pooling import PoolingScheme, PoolStrong, PoolWeak, PoolWeakStrong
from .self_supervised import THRESHOLD_RULES, PseudoLabelRule, pseudo_labels, pseudo_strong_labels

LABEL_KINDS = ("weak", "strong", "weak+strong")
ATTENTION_SUPERVISION = ("none", "strong", "self", "strong+self")


def _register(*classes: type[TrainingScheme]) -> dict[str, type[TrainingScheme]]:
    registry: dict[str, type[TrainingScheme]] = {}
    for cls in classes:
        problems = []
        if not cls.name or cls.name in registry:
            problems.append(f"name {cls.name!r} is empty or taken")
        if cls.labels not in LABEL_KINDS:
            problems.append(f"labels {cls.labels!r} not in {LABEL_KINDS}")
        if cls.needs_strong and "strong" not in cls.labels:
            problems.append("needs strong labels but does not declare them")
        if cls.uses_attention != (cls.attention_supervision in ATTENTION_SUPERVISION):
            problems.append(f"attention_supervision {cls.attention_supervision!r} does not fit "
                            f"uses_attention={cls.uses_attention}")
        if cls.head_kind() not in HEADS or (cls.head_kind() == "mean") == cls.uses_attention:
            problems.append(f"head {cls.head_kind()!r} is not one of {HEADS} or does not fit "
                            f"uses_attention={cls.uses_attention}")
        if problems:
            raise TypeError(f"scheme class {cls.__name__}: " + "; ".join(problems))
        registry[cls.name] = cls
    return registry


SCHEMES: dict[str, type[TrainingScheme]] = _register(
    PoolWeak,
    PoolStrong,
    PoolWeakStrong,
    Attention,
    StronglySupervisedAttention,
    SelfSupervisedAttention,
    StrongAndSelfSupervisedAttention,
    ExtendedSelfSupervisedAttention,
    PseudoStrongLabelStudent,
    MMNet,
    MMNetMultiScale,
    StrongLabelAssumption,
    PredictedLabelAssumption,
)


def scheme_class(name: str) -> type[TrainingScheme]:
    try:
        return SCHEMES[name]
    except KeyError:
        raise ValueError(f"unknown scheme {name!r}; choose one of: {', '.join(SCHEMES)}") from None


def make_scheme(name: str, **settings: Any) -> TrainingScheme:
    """Build a scheme by name; ``settings`` may hold every ``scheme.*`` config value, and each scheme
    takes the ones it declares in ``parameters`` (bad values raise ValueError naming the key)."""
    cls = scheme_class(name)
    # None means "the scheme's own default" (settings most schemes do not take are None in the config)
    return cls(**{k: v for k, v in settings.items() if k in cls.parameters and v is not None})


__all__ = [
    "ATTENTION_SUPERVISION",
    "ATTENTION_TARGETS",
    "LABEL_KINDS",
    "SCHEMES",
    "Attention",
    "AttentionScheme",
    "Batch",
    "ExtendedSelfSupervisedAttention",
    "PSEUDO_TARGETS",
    "PseudoLabelRule",
    "PseudoStrongLabelStudent",
    "THRESHOLD_RULES",
    "LabelKind",
    "LossTerms",
    "MMNet",
    "MMNetMultiScale",
    "PredictedLabelAssumption",
    "StrongLabelAssumption",
    "PoolStrong",
    "PoolWeak",
    "PoolWeakStrong",
    "PoolingScheme",
    "SelfSupervisedAttention",
    "StrongAndSelfSupervisedAttention",
    "StronglySupervisedAttention",
    "TrainingScheme",
    "attention_loss",
    "bce",
    "class_weights",
    "extrapolated_labels",
    "logit_bce",
    "micro_loss",
    "make_scheme",
    "masked_clip_mean",
    "pseudo_labels",
    "pseudo_strong_labels",
    "scheme_class",
]
