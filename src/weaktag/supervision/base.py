"""What a training scheme is: a named object that turns model outputs and labels into a loss.

Conventions shared by every scheme (the paper is ambiguous on both, so we choose and say so):

* Binary cross-entropy is ``BCE(prediction, target)``: the paper's formulas write
  ``y-hat log y + (1 - y-hat) log(1 - y)``, with prediction and target swapped, which
  is undefined for binary targets; we read it as the standard BCE.
* Losses are computed in float32 outside autocast (mixed precision): from the segment logits where
  the model gives them (:func:`segment_bce`, BCE-with-logits), else on probabilities (:func:`bce`),
  which the attention pooling y = sum_t A X^a makes unavoidable for the clip prediction.
* Reduction is the mean over every element (classes, and segments for segment-level
  terms), then over the batch. The paper writes sums; with sums the attention term
  would outweigh the clip term by a factor T (62 for 10 s), and the paper's alpha = 1
  was tuned for a balance we cannot see. Means keep alpha = 1 meaning "equal weight";
  ``scheme.loss_reduction=sum`` gives the attention terms the paper's sum over time.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F

from ..batch import Batch
from ..models import ModelOutput
from ..settings import at_least
from .self_supervised import pseudo_strong_labels

_CLAMP = 1e-7  # keeps log() finite for probabilities at exactly 0 or 1


@dataclass
class LossTerms:
    """The total loss and its named parts (logged separately)."""

    total: torch.Tensor
    parts: dict[str, torch.Tensor]


def _reduce(loss: torch.Tensor, reduce_dims: tuple[int, ...] | None, weight: torch.Tensor | None = None
            ) -> torch.Tensor:
    if weight is not None:  # per class: the class axis is dim 1 of every (B, C) or (B, C, T) loss
        loss = loss * weight.to(loss.device, torch.float32).reshape((1, -1) + (1,) * (loss.dim() - 2))
    return loss.mean() if reduce_dims is None else loss.mean(dim=reduce_dims)


def bce(prediction: torch.Tensor, target: torch.Tensor, reduce_dims: tuple[int, ...] | None = None,
        weight: torch.Tensor | None = None) -> torch.Tensor:
    """Binary cross-entropy on probabilities; mean over ``reduce_dims`` (all when None), each element
    times ``weight[c]`` of its class when given (:func:`class_weights`).

    Computed in float32 with clamping because the attention A can be tiny but not 0, and outside
    autocast, which refuses BCE on probabilities in half precision.
    """
    with torch.autocast(prediction.device.type, enabled=False):
        p = prediction.float().clamp(_CLAMP, 1 - _CLAMP)
        return _reduce(F.binary_cross_entropy(p, target.float(), reduction="none"), reduce_dims, weight)


def logit_bce_terms(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Element-wise BCE of sigmoid(logits) against ``target``, not reduced, computed from the logits in float32
    (exact, stable under mixed precision)."""
    with torch.autocast(logits.device.type, enabled=False):
        return F.binary_cross_entropy_with_logits(logits.float(), target.float(), reduction="none")


def logit_bce(logits: torch.Tensor, target: torch.Tensor, reduce_dims: tuple[int, ...] | None = None,
              weight: torch.Tensor | None = None) -> torch.Tensor:
    """:func:`bce` of sigmoid(logits): :func:`logit_bce_terms`, reduced as :func:`bce` reduces."""
    return _reduce(logit_bce_terms(logits, target), reduce_dims, weight)


def segment_bce(output: ModelOutput, target: torch.Tensor, reduce_dims: tuple[int, ...] | None = None,
                weight: torch.Tensor | None = None) -> torch.Tensor:
    """BCE(X^a, target) from X^a's logits when the model gives them (exact and stable under mixed
    precision), else from the probabilities; the same value either way up to the clamp of :func:`bce`."""
    if output.segment_logits is None:
        return bce(output.segment_probs, target, reduce_dims, weight)
    return logit_bce(output.segment_logits, target, reduce_dims, weight)


def class_weights(prevalence: torch.Tensor, beta: float = 0.3) -> torch.Tensor:
    """Per-class loss weights (M&mnet eq. 11): w_c = ((p-bar / p_c) * ((1 - p_c) / (1 - p-bar)))^beta.

    ``prevalence`` holds p_c, the fraction of training clips labelled with class c; p-bar is their
    mean. Rare classes weigh more than 1, common ones less; beta = 0 gives 1 everywhere. A class no
    training clip has (p_c = 0, weight infinite) or every clip has (p_c = 1, weight 0) gets 1 instead,
    and p-bar is the mean over the other classes: such a class has nothing to rebalance.
    """
    p = prevalence.double()
    usable = (p > 0) & (p < 1)
    weights = torch.ones_like(p)
    if bool(usable.any()) and beta != 0:
        mean = p[usable].mean()
        weights[usable] = ((mean / p[usable]) * ((1 - p[usable]) / (1 - mean))) ** beta
    return weights.float()


def masked_clip_mean(per_clip: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over the clips where ``mask`` is true; 0 (with gradient graph) when none is."""
    mask = mask.to(per_clip.dtype)
    return (per_clip * mask).sum() / mask.sum().clamp(min=1.0)


LabelKind = Literal["weak", "strong", "weak+strong"]


@dataclass
class SchemeParameters:
    """A config's ``scheme`` section: which scheme, and its parameters. This class holds what every
    scheme takes; a scheme with parameters of its own declares a subclass (its :attr:`TrainingScheme.Parameters`),
    one field per parameter with its type, default and range (field metadata, :mod:`weaktag.settings`),
    read from ``scheme.<key>`` in a config and checked by the same code that checks config files."""

    name: str = ""  # the scheme (weaktag.supervision.SCHEMES); set by scheme_parameters and configs
    # > 0: per-class loss weights of M&mnet's eq. 11 with this beta (the paper: 0.3), from the training
    # set's label prevalence, for any scheme (class_weights; set by training); 0: unweighted
    class_weight_beta: float = field(default=0.0, metadata=at_least(0.0))
    #: what compare's trial records made before a setting existed (or before its default changed) were made
    #: with, where that is not today's default: such a trial is then not reused for a trial of today's
    recorded_defaults: ClassVar[dict[str, Any]] = {}

    def check(self) -> None:
        """Rules between parameters, beyond each one's range; ValueError naming the keys."""

    def unlabeled_setting(self) -> str | None:
        """``scheme.<key>=<value>``, the setting that makes this scheme's loss read data.unlabeled's clips through the
        mean teacher's outputs (:meth:`TrainingScheme.unlabeled_loss`), so that a config without both can be refused
        naming it; None (the default): the scheme reads labelled clips only."""
        return None


class TrainingScheme(ABC):
    """One row of the paper's Table I (or a peer method): its model head, its labels and its loss.

    A scheme describes itself in class attributes, so that training, ``compare`` and the
    reports read what it is instead of keeping their own lists:

    * ``labels``: which labels its loss uses: ``weak`` (clip labels), ``strong`` (onsets and
      offsets) or ``weak+strong``;
    * ``needs_strong``: it cannot train without some strongly labelled clips;
    * ``uses_attention``: the model has an attention output (the attention branch L8-b, or M&mnet's a_t);
    * ``head``: the model head it trains (``weaktag.models.HEADS``); empty: ``attention`` or ``mean``
      from ``uses_attention``;
    * ``attention_supervision``: what supervises the attention: ``none``, ``strong``, ``self``
      or ``strong+self`` (empty for schemes without attention);
    * ``table_i_row``: its row in the paper's Table I (None for weaktag's own schemes);
    * ``Parameters``: its parameter dataclass (:class:`SchemeParameters` or a subclass); a scheme is
      built from an instance of it (``weaktag.supervision.make_scheme``); ``parameters``, the names
      of the fields it adds (``scheme.<name>`` in a config), is derived from it when it registers.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    labels: ClassVar[LabelKind] = "weak"
    needs_strong: ClassVar[bool] = False
    uses_attention: ClassVar[bool] = True
    attention_supervision: ClassVar[str] = "none"
    table_i_row: ClassVar[int | None] = None
    Parameters: ClassVar[type[SchemeParameters]] = SchemeParameters
    parameters: ClassVar[tuple[str, ...]] = ()  # set by weaktag.supervision.register_scheme
    head: ClassVar[str] = ""

    #: per-class loss weights (:func:`class_weights`, set by training when ``scheme.class_weight_beta`` > 0);
    #: every BCE term against labels is weighted by them on its class axis; None: unweighted
    class_weights: torch.Tensor | None = None

    def __init__(self, params: SchemeParameters) -> None:
        self.params = params

    @classmethod
    def head_kind(cls) -> str:
        """The model head this scheme trains: :attr:`head`, else attention or mean pooling."""
        return cls.head or ("attention" if cls.uses_attention else "mean")

    def model_options(self) -> dict[str, float]:
        """Options of the model head that this scheme's parameters set (``ModelConfig`` fields)."""
        return {}

    @abstractmethod
    def loss(self, output: ModelOutput, batch: Batch, teacher: ModelOutput | None = None) -> LossTerms:
        """The loss of a batch; ``teacher`` is the mean teacher's output on it when :attr:`teacher_decay` > 0."""

    def unlabeled_loss(self, output: ModelOutput, batch: Batch, teacher: ModelOutput) -> LossTerms | None:
        """The loss this scheme adds for a batch's unlabelled clips (``batch`` holds them alone, their label rows
        zeros), given the mean teacher's ``teacher`` output on them; training adds it to :meth:`loss`'s (which reads
        the labelled clips). None (the default): unlabelled clips train only through the mean teacher's
        consistency loss. A scheme that returns terms says so in :meth:`SchemeParameters.unlabeled_setting`."""
        return None

    #: trains on chunks of the training clips labelled by a teacher checkpoint (PSL; weaktag.training.psl)
    needs_teacher: ClassVar[bool] = False
    needs_teacher_segments: ClassVar[bool] = False  # the teacher's segment scores as well (distillation)
    #: False: training leaves batch mixup out (a teacher's chunk labels say what is in a chunk, not in a mix
    #: of two, and PSL's configs train without it)
    allows_mixup: ClassVar[bool] = True

    #: > 0: training keeps an exponential moving average of the network (decay per step) and passes its
    #: output on each batch to :meth:`loss` (a mean teacher); 0: no teacher
    teacher_decay: float = 0.0

    def start_epoch(self, epoch: int) -> None:
        """Called before each training epoch (0-based), for schemes whose loss changes over training."""

    def pseudo_labels(self, output: ModelOutput, batch: Batch) -> torch.Tensor | None:
        """The pseudo-strong labels P this scheme would train its attention on for ``batch`` (None: it has no
        attention); used by the self-supervision diagnostics. Schemes that do not train on P report the
        paper's rule (eq. 1), so that every attention model's diagnostics can be compared."""
        if output.attention is None:
            return None
        return pseudo_strong_labels(output.segment_probs, batch.weak)

    def clip_scores(self, output: ModelOutput) -> torch.Tensor:
        """Clip-level scores used for evaluation (the head's prediction by default)."""
        return output.clip_probs

    @classmethod
    def table_i_marks(cls) -> tuple[bool, bool, bool, bool, bool]:
        """Table I's columns: attention with no / strong / self supervision, strong label, weak label."""
        supervision = cls.attention_supervision
        return (cls.uses_attention and supervision == "none", "strong" in supervision, "self" in supervision,
                "strong" in cls.labels, "weak" in cls.labels)
