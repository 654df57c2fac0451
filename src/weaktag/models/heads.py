"""Heads that turn backbone features into segment and clip predictions (the paper's L8).

``AttentionHead``: L8-a, a 1x1 convolution with C filters and a sigmoid, gives the segment
class probabilities X^a; L8-b, a parallel 1x1 convolution with a sigmoid, gives X^b > 0.
A = X^b / sum_t X^b and the clip prediction is y = sum_t A_t * X^a_t.

We use a sigmoid for X^b (the paper only requires X^b > 0): it keeps X^b in (0, 1), so
the alternative attention loss on X^b itself (``attention_target="raw"``) is a proper
binary cross-entropy.

``MeanPoolHead``: L8-a only, clip prediction = mean of X^a over time (Table I rows 1-3).

Each head class registers under its name (``ModelConfig.head``) with :func:`register_head` and says
what the rest of weaktag needs to know of it (:class:`Head`): whether it has attention, how it is
built from a ``ModelConfig``, what chunked tagging re-pools, and what its ONNX graph adds.
"""

from __future__ import annotations

from typing import Any, Callable, ClassVar, TypeVar

import torch
from torch import nn

from ..errors import ConfigError
from .output import ModelOutput

# Keeps A finite when every X^b of a class underflows to 0 (possible only in float16).
ATTENTION_EPS = 1e-7


def attention_pool(segment_probs: torch.Tensor, attention_raw: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(A, y): A = X^b / sum_t X^b over the last axis, y = sum_t A * X^a.

    The one definition of the pooling: the head uses it in training, and chunked inference
    re-pools stitched X^a / X^b of a whole recording with it (in float64 there).
    """
    attention = attention_raw / (attention_raw.sum(dim=-1, keepdim=True) + ATTENTION_EPS)
    return attention, (attention * segment_probs).sum(dim=-1)


class Head(nn.Module):
    """A head: features (B, K, T) -> :class:`ModelOutput`; its class describes how it pools over time."""

    name: ClassVar[str] = ""  # set by register_head
    has_attention: ClassVar[bool] = True  # gives A and X^b (``ModelConfig.attention``) or pools by the mean
    #: ONNX outputs after clip_probs, segment_probs (and attention, attention_raw): what chunked tagging
    #: re-pools besides those (weaktag.inference.export)
    export_outputs: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def from_config(cls, in_channels: int, config: Any) -> "Head":
        """The head a :class:`~weaktag.models.ModelConfig` describes (``config``; not imported: it imports the heads)."""
        return cls(in_channels, config.num_classes)

    @staticmethod
    def pool_inputs(output: ModelOutput) -> torch.Tensor | None:
        """The per-segment outputs besides X^a that the head pools over time, (B, rows, T); None: X^a's mean."""
        return None

    @staticmethod
    def pool_recording(config: Any, segment_probs: torch.Tensor, inputs: torch.Tensor
                       ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """(clip probabilities, attention, attention_raw) from X^a and :meth:`pool_inputs` stitched over a
        recording: the same pooling as the head's forward."""
        return segment_probs.mean(dim=-1), None, None


#: heads by name (``ModelConfig.head``; schemes declare theirs, ``TrainingScheme.head``), in registration order
HEADS: dict[str, type[Head]] = {}

H = TypeVar("H", bound=type[Head])


def register_head(name: str) -> Callable[[H], H]:
    """Class decorator: the head class of ``name`` in :data:`HEADS`."""
    def add(cls: H) -> H:
        if not name or name in HEADS:
            raise TypeError(f"head class {cls.__name__}: name {name!r} is empty or taken")
        cls.name = name
        HEADS[name] = cls
        return cls
    return add


def head_class(name: str) -> type[Head]:
    try:
        return HEADS[name]
    except KeyError:
        raise ConfigError(f"unknown head {name!r}; choose one of: {', '.join(HEADS)}") from None


@register_head("attention")
class AttentionHead(Head):
    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.segment = nn.Conv1d(in_channels, num_classes, kernel_size=1)  # L8-a
        self.attention = nn.Conv1d(in_channels, num_classes, kernel_size=1)  # L8-b

    def forward(self, features: torch.Tensor) -> ModelOutput:
        # float32 from the logits on: under bf16/fp16 autocast the convolutions run in half precision,
        # but A's normalisation over T and the losses on probabilities need float32's range
        logits = self.segment(features).float()
        xa = torch.sigmoid(logits)
        xb = torch.sigmoid(self.attention(features).float())
        att, clip = attention_pool(xa, xb)
        return ModelOutput(segment_probs=xa, clip_probs=clip, attention=att, attention_raw=xb, segment_logits=logits)

    @staticmethod
    def pool_inputs(output: ModelOutput) -> torch.Tensor | None:
        return output.attention_raw  # X^b

    @staticmethod
    def pool_recording(config: Any, segment_probs: torch.Tensor, inputs: torch.Tensor
                       ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        attention, clip = attention_pool(segment_probs, inputs)
        return clip, attention, inputs


@register_head("mean")
class MeanPoolHead(Head):
    has_attention = False

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.segment = nn.Conv1d(in_channels, num_classes, kernel_size=1)  # L8-a

    def forward(self, features: torch.Tensor) -> ModelOutput:
        logits = self.segment(features).float()  # float32, as in AttentionHead
        xa = torch.sigmoid(logits)
        return ModelOutput(segment_probs=xa, clip_probs=xa.mean(dim=-1), segment_logits=logits)
