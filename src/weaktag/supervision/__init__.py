"""Training schemes, one module per family; pick one by name with :func:`make_scheme`.

Each scheme class describes itself (labels it uses, attention supervision, Table I row, its
parameter dataclass; see :class:`TrainingScheme`) and registers with :func:`register_scheme`,
which checks those declarations, so a new scheme cannot be half-described.
"""

from __future__ import annotations

# The scheme modules register their classes (register_scheme) as they load: this order is SCHEMES'
# order (Table I's rows first), which ``weaktag schemes`` and compare's default arms follow.
from .pooling import PoolingScheme, PoolStrong, PoolWeak, PoolWeakStrong  # isort: skip
from .attention import (  # isort: skip
    ATTENTION_TARGETS,
    Attention,
    AttentionParameters,
    AttentionScheme,
    SelfSupervisedAttention,
    StrongAndSelfSupervisedAttention,
    StronglySupervisedAttention,
    attention_loss,
)
from .extended import PSEUDO_TARGETS, ExtendedParameters, ExtendedSelfSupervisedAttention  # isort: skip
from .psl import PseudoStrongLabelStudent, PSLParameters  # isort: skip
from .distill import DistilledStudent, DistillParameters  # isort: skip
from .mmnet import MMNet, MMNetClasswise, MMNetMultiScale, MMNetParameters, micro_loss  # isort: skip
from .baselines import PredictedLabelAssumption, StrongLabelAssumption, extrapolated_labels  # isort: skip
from ..batch import Batch
from .base import (LabelKind, LossTerms, SchemeParameters, TrainingScheme, bce, class_weights, logit_bce,
                   masked_clip_mean)
from .registry import (ATTENTION_SUPERVISION, LABEL_KINDS, SCHEMES, make_scheme, register_scheme, scheme_class,
                       scheme_parameters, unknown_parameter)
from .self_supervised import THRESHOLD_RULES, PseudoLabelRule, pseudo_labels, pseudo_strong_labels

__all__ = [
    "ATTENTION_SUPERVISION",
    "ATTENTION_TARGETS",
    "LABEL_KINDS",
    "SCHEMES",
    "Attention",
    "AttentionParameters",
    "DistillParameters",
    "DistilledStudent",
    "AttentionScheme",
    "Batch",
    "ExtendedParameters",
    "ExtendedSelfSupervisedAttention",
    "PSEUDO_TARGETS",
    "PseudoLabelRule",
    "PseudoStrongLabelStudent",
    "SchemeParameters",
    "THRESHOLD_RULES",
    "LabelKind",
    "LossTerms",
    "MMNet",
    "MMNetClasswise",
    "MMNetMultiScale",
    "MMNetParameters",
    "PSLParameters",
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
    "register_scheme",
    "scheme_class",
    "scheme_parameters",
    "unknown_parameter",
]
