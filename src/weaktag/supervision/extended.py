"""weaktag's extension of self-supervised attention (not the paper's; the paper's row 6 is
:class:`~weaktag.supervision.attention.SelfSupervisedAttention`, unchanged).

``attention-self-ext`` trains ``L_pred + alpha(epoch) * L_att(A, P)`` like row 6, with each of
these switched by a ``scheme.*`` setting (:class:`ExtendedParameters`; the defaults were chosen on
validation data; see README):

* ``pseudo_threshold`` / ``pseudo_quantile`` / ``peak_ratio`` / ``confidence_gate``: how P is made
  (:class:`~weaktag.supervision.self_supervised.PseudoLabelRule`);
* ``pseudo_target``: ``binary`` (BCE of A against P, as row 6) or ``distribution``: the
  cross-entropy of A against P normalised to the pseudo-event length, P/k, whose optimum is the
  same A = P/k but whose pull does not grow with the number of P's zeros; only the supervised
  rows (present, gated, non-empty) count, so absent classes' attention is left alone;
* ``alpha_warmup_epochs``: alpha ramps linearly from 0 over these epochs, so P is first made
  from an X^a that has learnt something;
* ``teacher_decay``: P from an exponential moving average of the network (a mean teacher)
  instead of the network itself;
* ``segment_weight``: also train X^a on P (self-training of the segment outputs):
  ``segment_weight * BCE(X^a, P)`` over the supervised rows and every segment of the classes absent
  from the clip (which the weak labels say are negative everywhere);
* ``unlabeled_pseudo_threshold``: the attention term also on data.unlabeled's clips (the mean teacher's),
  their clip labels the teacher's clip predictions at or above it and P made from them by the same rule
  (:meth:`ExtendedSelfSupervisedAttention.unlabeled_loss`); their L_pred stays off.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch

from ..errors import ConfigError
from ..models import ModelOutput
from ..settings import at_least, choices
from .attention import AttentionParameters, AttentionScheme
from .base import _CLAMP, Batch, LossTerms, bce
from .registry import register_scheme
from .self_supervised import THRESHOLD_RULES, PseudoLabelRule, pseudo_labels

PSEUDO_TARGETS = ("binary", "distribution")
UNIT = {"min": 0.0, "max": 1.0}


@dataclass
class ExtendedParameters(AttentionParameters):
    """Row 6's parameters and the extension's (module docstring)."""

    pseudo_threshold: str = field(default="peak-relative", metadata=choices(*THRESHOLD_RULES))  # theta's rule
    pseudo_quantile: float = field(default=0.9, metadata=UNIT)  # the absent classes' quantile (absent-quantile)
    peak_ratio: float = field(default=0.5, metadata=UNIT)  # of the way to each class's peak (peak-relative)
    confidence_gate: float = field(default=0.0, metadata=UNIT)  # present classes with y-hat_c below it: no P row
    pseudo_target: str = field(default="binary", metadata=choices(*PSEUDO_TARGETS))  # BCE of A vs P, or vs P/k
    alpha_warmup_epochs: int = field(default=0, metadata=at_least(0))  # alpha ramps from 0 over these epochs
    teacher_decay: float = field(default=0.0, metadata={"min": 0.0, "max_exclusive": 1.0})  # > 0: a mean teacher
    segment_weight: float = field(default=0.0, metadata=at_least(0.0, finite=True))  # > 0: also BCE(X^a, P)
    # > 0: L_att(A, P) on the unlabelled clips too, a class present where the mean teacher's clip probability
    # reaches it: where A looks is what weak labels leave unsupervised, and it needs only a guess of which classes
    # are there; L_pred does not train on those guesses (the consistency loss already pulls y-hat to the
    # teacher's). 0: off; needs data.unlabeled and mean_teacher.weight > 0
    unlabeled_pseudo_threshold: float = field(default=0.0, metadata=UNIT)

    def check(self) -> None:
        if self.pseudo_target == "distribution" and self.attention_target != "normalized":
            raise ConfigError("scheme.pseudo_target=distribution needs scheme.attention_target=normalized "
                             f"(A is a distribution over time), not {self.attention_target!r}")

    def unlabeled_setting(self) -> str | None:
        threshold = self.unlabeled_pseudo_threshold
        return f"scheme.unlabeled_pseudo_threshold={threshold:g}" if threshold > 0 else None


def distribution_attention_loss(attention: torch.Tensor, pseudo: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """KL(P/k || A) = -sum_t (P/k) log A - log k on the supervised (clip, class) rows, averaged over every
    (clip, class) with 0 for the others: reduced like row 6's term (a mean over classes), so that alpha
    weighs it as row 6 weighs BCE(A, P) and a clip's term does not grow when few classes are supervised.

    Subtracting log k (the target's entropy) makes the loss 0 at its optimum without changing its gradient.
    """
    a = attention.float().clamp(min=_CLAMP)
    k = pseudo.float().sum(dim=-1)
    target = pseudo.float() / k.clamp(min=1.0).unsqueeze(-1)
    kl = -(target * a.log()).sum(dim=-1) - torch.log(k.clamp(min=1.0))
    return (kl * rows.float()).mean()


def binary_row_attention_loss(attention: torch.Tensor, pseudo: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """Row 6's BCE(A, P), mean over time, on the supervised rows only (0 for the others; mean over every
    (clip, class) as row 6)."""
    per_row = bce(attention, pseudo, reduce_dims=(2,))
    return (per_row * rows.float()).mean()


def segment_self_training_loss(segment_probs: torch.Tensor, pseudo: torch.Tensor, rows: torch.Tensor,
                               weak: torch.Tensor) -> torch.Tensor:
    """BCE(X^a, P) on the supervised rows and on every row of an absent class (target 0 there), mean over
    those rows' segments."""
    per_row = bce(segment_probs, pseudo, reduce_dims=(2,))  # every row has T segments: a mean over rows
    use = (rows | (weak < 0.5)).float()
    return (per_row * use).sum() / use.sum().clamp(min=1.0)


@register_scheme
class ExtendedSelfSupervisedAttention(AttentionScheme):
    """weaktag's extension of row 6 (see the module docstring); weak labels only."""

    name = "attention-self-ext"
    description = "attention; L_pred + alpha * L_att(A, P), weaktag's pseudo-label rule (extension)"
    attention_supervision = "self"
    table_i_row = None
    Parameters = ExtendedParameters
    params: ExtendedParameters
    self_term = True

    def __init__(self, params: ExtendedParameters) -> None:
        super().__init__(params)
        self.rule = PseudoLabelRule(params.pseudo_threshold, float(params.pseudo_quantile), float(params.peak_ratio),
                                    float(params.confidence_gate))
        self.teacher_decay = float(params.teacher_decay)  # read by training (the mean teacher)
        self._ramp = 1.0 if params.alpha_warmup_epochs == 0 else 0.0

    def start_epoch(self, epoch: int) -> None:
        warmup = self.params.alpha_warmup_epochs
        self._ramp = 1.0 if warmup == 0 else min(1.0, epoch / warmup)

    @property
    def current_alpha(self) -> float:
        return self.params.alpha * self._ramp

    def _pseudo(self, source: ModelOutput, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        return pseudo_labels(source.segment_probs, batch.weak, self.rule, source.clip_probs)

    def pseudo_labels(self, output: ModelOutput, batch: Batch) -> torch.Tensor | None:
        return self._pseudo(output, batch)[0]

    def _attention_term(self, output: ModelOutput, pseudo: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """L_att(A, P) on the supervised ``rows`` as ``scheme.pseudo_target`` asks."""
        if output.attention is None or output.attention_raw is None:
            raise ValueError("attention loss needs a model with an attention head (L8-b)")
        if self.params.pseudo_target == "distribution":
            return distribution_attention_loss(output.attention, pseudo, rows)
        source = output.attention if self.params.attention_target == "normalized" else output.attention_raw
        return self.over_time(binary_row_attention_loss(source, pseudo, rows), output)  # KL: a sum already

    def loss(self, output: ModelOutput, batch: Batch, teacher: ModelOutput | None = None) -> LossTerms:
        pseudo, rows = self._pseudo(teacher if teacher is not None else output, batch)
        att = self._attention_term(output, pseudo, rows)
        pred = bce(output.clip_probs, batch.weak, weight=self.class_weights)  # the attention terms stay unweighted
        total = pred + self.current_alpha * att
        parts = {"pred": pred, "att_self": att}
        if self.params.segment_weight > 0:
            parts["segment_self"] = self.over_time(
                segment_self_training_loss(output.segment_probs, pseudo, rows, batch.weak), output)
            total = total + self.current_alpha * self.params.segment_weight * parts["segment_self"]
        return LossTerms(total, parts)

    def unlabeled_loss(self, output: ModelOutput, batch: Batch, teacher: ModelOutput) -> LossTerms | None:
        """alpha * L_att(A, P) on unlabelled clips (none when ``scheme.unlabeled_pseudo_threshold`` is 0): their clip
        labels the teacher's clip probabilities at or above the threshold, P made from the teacher's X^a by the rule
        of the labelled clips (whose P, with a teacher, is the teacher's too)."""
        threshold = self.params.unlabeled_pseudo_threshold
        if threshold <= 0:
            return None
        guessed = replace(batch, weak=teacher_clip_labels(teacher, threshold).to(batch.weak.dtype))
        pseudo, rows = self._pseudo(teacher, guessed)
        att = self._attention_term(output, pseudo, rows)
        return LossTerms(self.current_alpha * att, {"att_unlabeled": att})


def teacher_clip_labels(teacher: ModelOutput, threshold: float) -> torch.Tensor:
    """(B, C) bool: the classes whose teacher clip probability reaches ``threshold`` (no gradient)."""
    return teacher.clip_probs.detach().float() >= threshold
