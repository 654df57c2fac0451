"""Embeddings: a network's features per segment and per clip, for a user's own downstream model.

:class:`Embedder` is the :class:`~weaktag.inference.Tagger`'s engine with another backend: the same front end,
batching of short files, decode workers and chunked streaming of long ones (see :mod:`.engine`), but each
forward pass returns the features of one layer instead of class scores, and a recording's result is an
:class:`Embedding` instead of a tag list.

Which layer
-----------
For a trained checkpoint (``layer="head-input"``): the per-segment features that feed the head, i.e. the
neck's outputs (the backbone's where the model has no neck), (T, D) on the model's segments. They are the
last layer that is not yet about the training classes: the head maps them to class scores with one 1x1
convolution per output, so the classes the model learned are a linear read-out of them, yet a downstream
model can learn other ones. Layers after them (X^a, the attention) are C numbers per segment about the
training classes alone; layers before them miss the neck's temporal context. They exist for every head
(attention, mean pooling, M&mnet), and the neck's declared reach is what chunking already covers, so a
long file's chunked features equal a whole-file pass as the tagger's outputs do.

For the bare pretrained backbone (:meth:`Embedder.from_backbone`, ``layer="backbone"``): the backbone's
outputs, e.g. aisfx's 512 channels averaged over frequency.

The clip vector is the mean of the segment features over the recording. Attention pooling would need one
attention map, and a weaktag head has one per class (A, C x T): pooling with one class's map makes a
vector about that class, and there is none for mean-pooling heads. The mean is defined for every model,
is what the HEAR scene embeddings of frame-based models usually are, and is exact over stitched chunks.

Times: segment ``t`` spans ``[t, t + 1) * segment_seconds`` (:mod:`weaktag.geometry`); its timestamp is
the span's centre, ``(t + 0.5) * segment_seconds``, in milliseconds.

Files
-----
:func:`embed_files` (``weaktag embed``) writes, per input, ``<name>.npz`` under the output folder (its path
relative to the inputs' common folder, audio suffix replaced) with ``clip`` (D,) float32, ``segments``
(T, D) float32, ``timestamps_ms`` (T,) float64, ``segment_seconds``, ``duration_seconds`` and ``layer``;
``index.csv`` with a row per embedded file, and ``errors.tsv`` with a row per file that could not be read.
"""

from __future__ import annotations

import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Literal, Sequence

import numpy as np
import torch

from ..checkpoint import Checkpoint, load_checkpoint
from ..errors import UsageError
from ..files import atomic_path, write_table
from ..models import BackboneConfig, ModelConfig, WeakTagNet, backbone_class
from ..postprocess import EventSettings
from .backends import Outputs, TorchBackend
from .batch import discover_inputs
from .chunking import Raw
from .engine import Tagger
from .results import TagFailure
from .writers import ERROR_COLUMNS, error_row

Layer = Literal["head-input", "backbone"]
LAYERS: tuple[str, ...] = ("head-input", "backbone")
INDEX_COLUMNS = ["filename", "embedding", "duration_seconds", "segments", "dimension"]


@dataclass
class Embedding:
    """One recording's embeddings: ``segments`` (T, D) on the model's segments and their mean, ``clip`` (D,)."""

    source: str
    duration: float  # seconds of audio
    segments: np.ndarray  # (T, D) float32
    clip: np.ndarray  # (D,) float32
    segment_seconds: float
    layer: str

    @property
    def timestamps_ms(self) -> np.ndarray:
        """(T,) float64: the centre of each segment's span, in milliseconds."""
        return (np.arange(len(self.segments)) + 0.5) * self.segment_seconds * 1000.0

    def arrays(self) -> dict[str, np.ndarray]:
        """What an ``.npz`` of ``weaktag embed`` holds (see the module doc)."""
        return {"clip": self.clip, "segments": self.segments, "timestamps_ms": self.timestamps_ms,
                "segment_seconds": np.float64(self.segment_seconds), "duration_seconds": np.float64(self.duration),
                "layer": np.array(self.layer)}

    def save(self, path: str | Path) -> Path:
        """Write :meth:`arrays` to ``path`` (.npz), atomically."""
        path = Path(path)
        with atomic_path(path) as tmp, tmp.open("wb") as f:
            np.savez(f, **self.arrays())
        return path


class FeatureBackend(TorchBackend):
    """The network up to ``layer`` in PyTorch: (B, N) audio -> ((B, D, T) features, None)."""

    def __init__(self, checkpoint: Checkpoint, device: torch.device, layer: Layer) -> None:
        super().__init__(checkpoint, device)
        self.layer = layer

    def launch(self, waveforms: np.ndarray) -> Callable[[], Outputs]:
        # the device of the weights, not the one asked for at the start: HEAR's harness moves models itself
        device = next(self.model.parameters()).device
        with torch.inference_mode():
            features = self.model.embed(self.model.frontend(torch.from_numpy(waveforms).to(device)))
            if self.layer == "head-input":
                features = self.model.neck(features)
            out = features.float().cpu().numpy()
        return lambda: (out, None)


class Embedder(Tagger):
    """``Embedder.from_checkpoint(path).embed(path_or_array)`` -> :class:`Embedding`.

    Every :class:`~weaktag.inference.settings.TaggingConfig` option that is not about classes applies
    (``chunk_seconds``, ``context_seconds``, ``batch_size``, ``skip_silent``, ``device``, ``decode_workers``,
    ...), as keywords or ``settings=``. ``layer``: "head-input" (a checkpoint's default) or "backbone".
    Failures are :class:`~weaktag.inference.TagFailure` as the tagger's.

    >>> import numpy as np
    >>> from weaktag.inference import Embedder
    >>> embedder = Embedder.from_checkpoint(checkpoint)
    >>> e = embedder.embed(np.random.default_rng(0).normal(0, 0.1, 16_000).astype(np.float32))
    >>> e.segments.shape == (len(e.timestamps_ms), embedder.dimension), e.clip.shape == (embedder.dimension,)
    (True, True)
    """

    def __init__(self, checkpoint: Checkpoint, device: str | torch.device | None = None, *,
                 layer: Layer = "head-input", **options: Any) -> None:
        if layer not in LAYERS:
            raise UsageError(f"layer must be one of {', '.join(LAYERS)}, not {layer!r}")
        if options.get("backend", "torch") != "torch":
            raise UsageError("embeddings run on the torch backend (an ONNX graph ends at the class scores)")
        self.layer: Layer = layer  # before the engine starts its backend, which reads it
        super().__init__(checkpoint, device, **{**options, "backend": "torch", "detect_events": False})

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str | torch.device | None = None, *,
                        checkpoint: Checkpoint | None = None, **options: Any) -> "Embedder":
        """An embedder of a weaktag checkpoint (``.pt``): the features that feed its head."""
        path = Path(path)
        if path.suffix.lower() == ".onnx":
            raise UsageError(f"{path}: embeddings need the PyTorch checkpoint (.pt) the ONNX file was exported from")
        return cls(checkpoint or load_checkpoint(path), device, **options)

    @classmethod
    def from_backbone(cls, name: str = "aisfx", device: str | torch.device | None = None,
                      **options: Any) -> "Embedder":
        """An embedder of a backbone's packaged pretrained weights alone (``aisfx``), no checkpoint: its outputs.

        Raises FileNotFoundError, with the install line, when the backbone's package is missing."""
        if not getattr(backbone_class(name), "packaged_weights", False):
            raise UsageError(f"backbone {name!r} has no pretrained weights of its own (aisfx has); give a checkpoint")
        model = WeakTagNet(ModelConfig(1, backbone=BackboneConfig(backbone=name))).eval()
        bare = Checkpoint(model=model, classes=["-"], scheme="", experiment={}, tag_thresholds=np.full(1, 0.5),
                          events=EventSettings())
        return cls(bare, device, layer="backbone", **options)

    def _start_backend(self, checkpoint: Checkpoint, backend: str, onnx_path: Path | None,
                       num_threads: int | None, feature_cache: str | Path | None = None) -> FeatureBackend:
        return FeatureBackend(checkpoint, self.device, self.layer)

    @property
    def dimension(self) -> int:
        """D: the number of features per segment (and of the clip vector)."""
        model = self.checkpoint.model
        return int(model.neck.out_channels if self.layer == "head-input" else model.backbone.out_channels)

    @property
    def segment_seconds(self) -> float:
        return self.grid.segment_seconds

    # ---------------------------------------------------------------- public embedding

    def embed(self, audio: str | Path | np.ndarray, name: str | None = None,
              sample_rate: int | None = None) -> Embedding:
        """One file, or a float array at ``sample_rate`` (default: the model's); raises
        :class:`~weaktag.audio.AudioError` as :meth:`Tagger.tag` does."""
        return self.tag(audio, name, sample_rate)  # type: ignore[return-value]

    def iter_embed(self, sources: Sequence[str | Path], names: Sequence[str] | None = None
                   ) -> Iterator[tuple[int, Embedding | TagFailure]]:
        """Many files, batched as :meth:`Tagger.iter_tag` batches them: ``(index, embedding or failure)``."""
        return self.iter_tag(sources, names)  # type: ignore[return-value]

    def embed_arrays(self, waves: Sequence[np.ndarray], names: Sequence[str] | None = None
                     ) -> list[Embedding | TagFailure]:
        """Recordings in memory (mono float32 at the model's rate), batched; in their order."""
        names = [f"<array {i}>" for i in range(len(waves))] if names is None else list(names)
        out: list[Embedding | TagFailure | None] = [None] * len(waves)
        loaders = [lambda w=w: w for w in waves]
        for i, result in self.iter_tag_arrays(loaders, names):
            out[i] = result  # type: ignore[assignment]
        return out  # type: ignore[return-value]

    def _finish(self, source: str, raw: Raw) -> Embedding:  # type: ignore[override]
        segments = np.ascontiguousarray(raw.xa.T, dtype=np.float32)  # (D, T) -> (T, D)
        clip = segments.astype(np.float64).mean(axis=0).astype(np.float32)
        return Embedding(source, raw.samples / self.grid.sample_rate, segments, clip, self.grid.segment_seconds,
                         self.layer)


def embedding_files(names: Sequence[str]) -> list[str]:
    """The ``.npz`` of each input name (``sub/a.wav`` -> ``sub/a.npz``); names that would share one keep
    their suffix (``a.wav.npz``, ``a.flac.npz``)."""
    stems = [str(Path(n).with_suffix(".npz")) if Path(n).suffix else n + ".npz" for n in names]
    taken = {s for s in stems if stems.count(s) > 1}
    return [(n + ".npz" if s in taken else s).replace("\\", "/") for n, s in zip(names, stems)]


@dataclass
class EmbedRunSummary:
    """What :func:`embed_files` did; ``index`` is the path of ``index.csv``."""

    files: int
    ok: int
    failed: int
    audio_seconds: float
    wall_seconds: float
    index: Path
    failures: list[TagFailure] = field(default_factory=list)

    def text(self) -> str:
        return (f"embedded {self.ok} of {self.files} file(s), {self.failed} failed; {self.audio_seconds:.1f} s of "
                f"audio in {self.wall_seconds:.1f} s; index: {self.index}")


def embed_files(embedder: Embedder, inputs: Sequence[str | Path], out_dir: str | Path,
                on_result: Callable[[Embedding], None] | None = None) -> EmbedRunSummary:
    """Embed files, folders and globs (found as ``weaktag tag`` finds them) into ``out_dir`` (the module doc's
    layout), each file's ``.npz`` written as soon as it is done; a bad file is listed in ``errors.tsv``."""
    started = time.time()
    out = Path(out_dir)
    found, failures = discover_inputs(inputs)
    if not found and not failures:
        raise UsageError("no input files given")
    not_found = len(failures)  # arguments that matched no file
    names = [name for _, name in found]
    targets = embedding_files(names)
    rows: list[list[Any] | None] = [None] * len(found)
    seconds = 0.0
    for i, result in embedder.iter_embed([path for path, _ in found], names):
        if isinstance(result, TagFailure):
            failures.append(result)
            continue
        result.save(out / targets[i])
        rows[i] = [names[i], targets[i], round(result.duration, 6), len(result.segments), result.clip.shape[0]]
        seconds += result.duration
        if on_result is not None:
            on_result(result)
    done = [r for r in rows if r is not None]
    index = write_table(out / "index.csv", INDEX_COLUMNS, done)
    write_table(out / "errors.tsv", ERROR_COLUMNS, [error_row(f) for f in failures], delimiter="\t")
    return EmbedRunSummary(len(found) + not_found, len(done), len(failures), seconds, time.time() - started, index,
                           failures)


def load_embedding(path: str | Path) -> Embedding:
    """An ``.npz`` written by :func:`embed_files` (or :meth:`Embedding.save`) read back; ``source`` is its path."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            return Embedding(str(path), float(z["duration_seconds"]), z["segments"], z["clip"],
                             float(z["segment_seconds"]), str(z["layer"]))
    except (KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise UsageError(f"{path}: not an embedding file of weaktag embed ({type(exc).__name__}: {exc})") from None
