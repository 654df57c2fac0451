"""``weaktag export --format onnx``: the network as an ONNX graph with a dynamic time axis.

What is exported
----------------
* **With the front end (default).** Input ``waveform``: float32 (batch, samples), mono at the
  backbone's rate (16 kHz for VGGish), both axes dynamic, at least the grid's ``min_samples``
  (2800 samples = 0.175 s on VGGish's grid, one output segment). The graph drops a partial last
  segment; :class:`weaktag.inference.Tagger` zero-pads every recording to whole segments first
  (:meth:`weaktag.geometry.TimeGrid.padded_samples`), so that its end is scored. The graph computes the log-mel features itself, so a consumer only
  has to decode and resample audio. The metadata records the rate, segment length and minimum.
* **Without it (``--no-frontend``).** Input ``logmel``: float32 (batch, frames, mel bands), both
  first axes dynamic, at least one segment of frames (16 for VGGish), as
  :class:`weaktag.audio.LogMel` computes them.

Outputs, all float32 with dynamic batch and ``segments`` axes (segments = frames // time stride):
``clip_probs`` (batch, C); ``segment_probs`` X^a (batch, C, segments); for attention models
also ``attention`` A (batch, C, segments) and ``attention_raw`` X^b (batch, C, segments).
Clip probabilities pool over the whole input; for long files :class:`weaktag.inference.Tagger`
runs the graph chunk by chunk and pools the stitched X^a / X^b itself.

The front end in the graph
--------------------------
:class:`weaktag.audio.LogMel` frames the signal with ``Tensor.unfold`` and transforms it with
``torch.fft.rfft``; the TorchScript ONNX exporter rejects ``unfold`` on a dynamic length.
The exported graph therefore uses :class:`DftLogMel`: the same computation written as one
strided ``Conv1d`` whose 514 filters are the Hann-windowed cosine and sine rows of the
512-point DFT (257 bins each), then the magnitude, the same mel matrix and ``log(mel + 0.01)``.
It equals ``LogMel`` up to float32 rounding (largest log-mel difference about 3e-5 on white
noise).

The parity check
----------------
:func:`export_onnx` runs onnxruntime and PyTorch on the same audio after every export. Both are
float32 computations of the same network that round differently, so no fixed tolerance fits every
model: the narrow VGGish agrees within 1e-6, a trained aisfx backbone under a neck (thousands of
products summed per output, large logits) by a few 1e-4. Each output of each check therefore gets
its own tolerance, ``PARITY_FLOOR + PARITY_MARGIN * e``, where ``e`` is the float32 error that
output really carries on that input: the largest distance of the float32 PyTorch model (``LogMel``
front end) from its float64 run, plus that of the exported graph (the DFT front end, as onnxruntime
runs it) run by PyTorch in float32 from its float64 run. To that, onnxruntime adds its own
operators' error: its ``Sigmoid`` is accurate to about 1.5e-7 in absolute terms only (below about -18
it returns 0), measured here once against float64 (:func:`sigmoid_error`). Every probability output
(X^a, X^b, clip) gets that error; for the attention head it is propagated, element by element,
through A = X^b / (sum_t X^b + eps) and y = sum_t A X^a, so a class whose X^b are all near zero (a
trained model's confident "absent") gets the wide tolerance its attention really has. A wrong graph
misses by far more.

The checkpoint's class names, clip thresholds and event settings travel in the ONNX file's
metadata (key ``weaktag``), so ``weaktag tag --checkpoint model.onnx`` needs nothing else.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import tempfile
import warnings
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch
from torch import nn

from ..audio import compress, load_audio, pad_to_segments, spec_filterbank
from ..checkpoint import Checkpoint, load_checkpoint
from ..errors import CheckpointError, WeaktagError
from ..files import atomic_path
from ..geometry import VGGISH_FRONTEND, FrontEndSpec
from ..models import ATTENTION_EPS, HEADS, ModelConfig, WeakTagNet

OPSET = 17
METADATA_KEY = "weaktag"
ONNX_FORMAT = "weaktag-onnx/1"
PARITY_FLOOR = 1e-4  # absolute part of every output's tolerance (probabilities are in [0, 1])
PARITY_MARGIN = 4.0  # times the float32 error the two computations carry (the graph's real rounding)


class DftLogMel(nn.Module):
    """:class:`~weaktag.audio.LogMel` with the STFT as a strided convolution (exports to ONNX).

    waveform (B, N) -> log-mel (B, frames, n_mels), frames = 1 + (N - window) // hop.
    """

    def __init__(self, spec: FrontEndSpec = VGGISH_FRONTEND) -> None:
        super().__init__()
        self.spec = spec
        n = torch.arange(spec.window, dtype=torch.float64)
        bins = torch.arange(spec.n_fft // 2 + 1, dtype=torch.float64)
        window = 0.5 - 0.5 * torch.cos(2 * math.pi * n / spec.window)  # periodic Hann, as LogMel
        angle = 2 * math.pi * bins[:, None] * n[None, :] / spec.n_fft  # frames are zero-padded to n_fft
        basis = torch.cat([torch.cos(angle) * window, -torch.sin(angle) * window])  # (2 bins, window)
        self.register_buffer("basis", basis.float().unsqueeze(1), persistent=False)  # (2 bins, 1, window)
        self.register_buffer("mel", spec_filterbank(spec), persistent=False)
        self.n_bins = spec.n_fft // 2 + 1

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        spectrum = nn.functional.conv1d(waveform.unsqueeze(1), self.basis, stride=self.spec.hop)  # (B, 2 bins, F)
        real, imag = spectrum[:, : self.n_bins], spectrum[:, self.n_bins :]
        power = (real * real + imag * imag).transpose(1, 2)  # (B, F, bins)
        magnitude = torch.sqrt(power) if self.spec.power == 1.0 else power.pow(self.spec.power / 2)
        return compress(magnitude @ self.mel, self.spec)


class ExportableNet(nn.Module):
    """The network as the ONNX graph sees it: tensors in, a tuple of tensors out."""

    def __init__(self, model: WeakTagNet, frontend: bool = True) -> None:
        super().__init__()
        self.frontend = DftLogMel(model.grid.frontend) if frontend else None
        self.backbone = model.backbone
        self.neck = model.neck  # part of the network: a graph without it would not be the checkpoint's
        self.head = model.head
        self.has_attention = bool(model.config.attention)
        self.head_kind = model.config.head

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        logmel = self.frontend(x) if self.frontend is not None else x
        out = self.head(self.neck(self.backbone(logmel)))
        if out.attention is None:
            return out.clip_probs, out.segment_probs
        if out.micro_logits is not None:  # M&mnet: also what chunked tagging re-pools (weaktag.models.pool_inputs)
            return (out.clip_probs, out.segment_probs, out.attention, out.attention_raw, out.macro_logits,
                    out.micro_logits)
        return out.clip_probs, out.segment_probs, out.attention, out.attention_raw


def output_names(has_attention: bool, head: str | None = None) -> list[str]:
    """The exported graph's outputs; a head may add its pooling inputs (M&mnet's: ``Head.export_outputs``)."""
    names = ["clip_probs", "segment_probs"]
    names += ["attention", "attention_raw"] if has_attention else []
    return names + (list(HEADS[head].export_outputs) if head is not None else [])


@dataclass(frozen=True)
class ParityCheck:
    """One output on one check input: onnxruntime against PyTorch, and what float32 rounding explains."""

    diff: float  # |onnxruntime - PyTorch| where it is largest against its tolerance
    float_error: float  # max |float32 - float64| of PyTorch plus that of the exported graph
    tolerance: float  # there: PARITY_FLOOR + PARITY_MARGIN * (float_error + onnxruntime's operator error)

    @property
    def ok(self) -> bool:
        return self.diff <= self.tolerance


@dataclass
class ExportReport:
    """What :func:`export_onnx` wrote and how closely onnxruntime reproduces PyTorch."""

    path: Path
    frontend: bool
    opset: int
    parity: dict[str, dict[str, ParityCheck]] = field(default_factory=dict)  # check -> output -> result

    @property
    def max_abs_diff(self) -> dict[str, float]:
        """Per check ("random", a file name): the largest difference over all outputs."""
        return {check: max(p.diff for p in outputs.values()) for check, outputs in self.parity.items()}

    @property
    def worst(self) -> float:
        return max(self.max_abs_diff.values(), default=float("nan"))

    @property
    def failures(self) -> list[tuple[str, str, ParityCheck]]:
        """(check, output, result) for every output beyond its tolerance."""
        return [(check, name, p) for check, outputs in self.parity.items() for name, p in outputs.items() if not p.ok]

    @property
    def ok(self) -> bool:
        return bool(self.parity) and not self.failures

    def to_dict(self) -> dict:
        d = asdict(self)
        d["path"] = str(self.path)
        d["worst"] = self.worst
        d["ok"] = self.ok
        return d


class ExportVerificationError(WeaktagError, RuntimeError):
    """The exported graph disagrees with PyTorch by more than the tolerance."""


def export_onnx(checkpoint: str | Path | Checkpoint, output: str | Path, frontend: bool = True, opset: int = OPSET,
                verify: bool = True, verify_audio: Sequence[str | Path] = (), floor: float = PARITY_FLOOR,
                margin: float = PARITY_MARGIN, seed: int = 0) -> ExportReport:
    """Export ``checkpoint`` to ``output`` (ONNX) and check it against PyTorch.

    The check (:func:`verify_onnx`) runs onnxruntime and the PyTorch model (with its own ``LogMel``
    front end) on random audio of two lengths and on every file of ``verify_audio``; every output
    gets a tolerance of ``floor + margin`` times its float32 error (see the module doc). Raises
    :class:`ExportVerificationError` (the file is kept) when an output exceeds it. The file is
    written beside ``output`` and renamed into place: a failed write (a full disk) leaves nothing
    and raises an OSError naming ``output``.
    """
    ckpt = checkpoint if isinstance(checkpoint, Checkpoint) else load_checkpoint(checkpoint)
    model = ckpt.model.cpu().eval()
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    net = ExportableNet(model, frontend).eval()
    names = output_names(net.has_attention, net.head_kind)
    waveform = torch.randn(2, 3 * model.grid.sample_rate) * 0.1
    if frontend:
        example = waveform
        input_name, dynamic = "waveform", {0: "batch", 1: "samples"}
    else:
        example = model.frontend(waveform)
        input_name, dynamic = "logmel", {0: "batch", 1: "frames"}
    dynamic_axes = {input_name: dynamic, "clip_probs": {0: "batch"}}
    dynamic_axes.update({name: {0: "batch", 2: "segments"} for name in names[1:]})
    try:
        with atomic_path(output) as tmp, warnings.catch_warnings(), torch.no_grad():
            # the legacy exporter's deprecation notice, and the tracer's note on forward_features' short-input
            # branch (not part of ExportableNet) are noise here
            warnings.simplefilter("ignore")
            torch.onnx.export(net, (example,), str(tmp), input_names=[input_name], output_names=names,
                              dynamic_axes=dynamic_axes, opset_version=opset, dynamo=False)
            _write_metadata(tmp, ckpt, frontend)
    except OSError as exc:  # the temporary file's name would mislead: say which file could not be written
        raise OSError(exc.errno, f"cannot write the ONNX model ({exc.strerror or exc})", str(output)) from exc
    report = ExportReport(output, frontend, opset)
    if verify:
        report.parity = verify_onnx(output, model, verify_audio, floor=floor, margin=margin, seed=seed)
        if not report.ok:
            raise ExportVerificationError(
                f"{output}: onnxruntime differs from PyTorch beyond float32 rounding: "
                + "; ".join(f"{check} {name}: {p.diff:.3g} > tolerance {p.tolerance:.3g} "
                            f"(float32 error {p.float_error:.3g})" for check, name, p in report.failures)
                + "; the file was kept")
    return report


#: how far the int8 model's clip probabilities may stray from the float model's on the check audio: a sanity
#: bound that catches a broken graph, not a parity check (int8 rounds every weight and activation; on noise the
#: recommended model's probabilities move by up to ~0.2); the accuracy cost is measured on labelled audio
#: (``evaluate --onnx``, docs/speed.md)
INT8_TOLERANCE = 0.5


@dataclass
class QuantizationReport:
    """An int8 copy of an exported model and how far its clip probabilities are from the float model's."""

    path: Path
    source: Path
    max_abs_diff: float  # clip probabilities, on random audio
    tolerance: float = INT8_TOLERANCE

    @property
    def ok(self) -> bool:
        return bool(self.max_abs_diff <= self.tolerance)


def quantize_onnx(source: str | Path, output: str | Path | None = None, seed: int = 0,
                  tolerance: float = INT8_TOLERANCE) -> QuantizationReport:
    """onnxruntime's dynamic int8 quantisation of an exported model (weights int8, activations quantised per
    batch at run time), with its weaktag metadata, written to ``output`` (default ``<source>.int8.onnx``).
    Raises :class:`ExportVerificationError` (the file is kept) when its clip probabilities on random audio
    differ from the float model's by more than ``tolerance``."""
    import onnx
    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quantize_dynamic

    source = Path(source)
    meta = read_metadata(source)
    output = Path(output) if output else source.with_suffix(".int8.onnx")
    root = logging.getLogger()
    level = root.level
    with atomic_path(output) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        root.setLevel(logging.ERROR)  # its advice (on the root logger) to pre-process the graph first
        try:
            quantize_dynamic(str(source), str(tmp), weight_type=QuantType.QInt8)
        finally:
            root.setLevel(level)
        proto = onnx.load(str(tmp))
        if METADATA_KEY not in {p.key for p in proto.metadata_props}:
            entry = proto.metadata_props.add()
            entry.key, entry.value = METADATA_KEY, json.dumps(meta)
            onnx.save(proto, str(tmp))
    rng = np.random.default_rng(seed)
    rate = int(meta["sample_rate"])
    audio = (0.1 * rng.standard_normal((2, 4 * rate))).astype(np.float32)
    if not meta["frontend"]:
        from ..audio import LogMel

        audio = LogMel(ModelConfig.from_dict(meta["model_config"]).grid.frontend)(torch.from_numpy(audio)).numpy()
    probs = []
    for path in (source, output):
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        probs.append(session.run(["clip_probs"], {session.get_inputs()[0].name: audio})[0])
    report = QuantizationReport(output, source, float(np.abs(probs[0] - probs[1]).max()), tolerance)
    if not report.ok:
        raise ExportVerificationError(f"{output}: the int8 model's clip probabilities differ from {source}'s by "
                                      f"{report.max_abs_diff:.3g} > {tolerance:g} on random audio; the file was kept")
    return report


@contextmanager
def temporary_export(checkpoint: Checkpoint) -> Iterator[Path]:
    """Export ``checkpoint`` into a fresh temporary folder, removed when the block ends, however it ends."""
    with tempfile.TemporaryDirectory(prefix="weaktag-onnx-") as folder:
        yield export_onnx(checkpoint, Path(folder) / "model.onnx").path


def _write_metadata(path: Path, ckpt: Checkpoint, frontend: bool) -> None:
    import onnx

    proto = onnx.load(str(path))
    meta = {
        "format": ONNX_FORMAT,
        "frontend": frontend,
        "classes": list(ckpt.classes),
        "tag_thresholds": [float(t) for t in ckpt.tag_thresholds],
        "events": ckpt.events.to_dict(),
        "scheme": ckpt.scheme,
        "model_config": ckpt.model.config.to_dict(),
        "sample_rate": ckpt.model.grid.sample_rate,
        "segment_seconds": ckpt.model.grid.segment_seconds,
        "min_samples": ckpt.model.grid.min_samples,
        "checkpoint": str(ckpt.path) if ckpt.path else None,
    }
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(meta)
    proto.producer_name = "weaktag"
    onnx.save(proto, str(path))


def read_metadata(path: str | Path) -> dict:
    """The ``weaktag`` metadata of an exported file (raises ValueError when absent)."""
    import onnxruntime as ort

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: ONNX model not found")
    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise CheckpointError(f"{path}: not a readable ONNX model ({type(exc).__name__}: {exc})") from None
    return metadata_of(session, path)


def metadata_of(session, path: Path) -> dict:
    props = session.get_modelmeta().custom_metadata_map
    if METADATA_KEY not in props:
        raise CheckpointError(f"{path}: ONNX model carries no weaktag metadata (export it with `weaktag export`)")
    meta = json.loads(props[METADATA_KEY])
    if meta.get("format") != ONNX_FORMAT:
        raise CheckpointError(f"{path}: unknown weaktag ONNX format {meta.get('format')!r} (expected {ONNX_FORMAT!r})")
    return meta


def verify_onnx(path: str | Path, model: WeakTagNet, audio_files: Sequence[str | Path] = (),
                floor: float = PARITY_FLOOR, margin: float = PARITY_MARGIN,
                seed: int = 0) -> dict[str, dict[str, ParityCheck]]:
    """onnxruntime against the PyTorch model, per check input and output, with the tolerance of each.

    The reference is the PyTorch model itself (``LogMel`` front end included). Random audio:
    a batch of two 4.2 s signals (white noise at 0.1 RMS, the second one with a silent
    second in the middle) and a single 10 s clip of louder noise.
    """
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    meta = metadata_of(session, Path(path))
    rng = np.random.default_rng(seed)
    pair = (rng.standard_normal((2, 67_200)) * 0.1).astype(np.float32)
    pair[1, 16_000:32_000] = 0.0
    checks: dict[str, np.ndarray] = {
        "random": pair,
        "random_10s": (rng.standard_normal((1, 160_000)) * 0.5).astype(np.float32),
    }
    grid = model.grid
    for f in audio_files:
        # padded to whole segments, as the Tagger feeds a recording to the graph
        checks[Path(f).name] = pad_to_segments(load_audio(f, grid.sample_rate, allow_silent=True), grid)[None, :]
    names = output_names(bool(model.config.attention), model.config.head)
    model = model.cpu().eval()
    exported = ExportableNet(model, meta["frontend"]).eval()  # the graph onnxruntime runs, in PyTorch
    model64 = copy.deepcopy(model).double()
    exported64 = ExportableNet(model64, meta["frontend"]).double().eval()
    sigmoid = sigmoid_error()
    results: dict[str, dict[str, ParityCheck]] = {}
    for key, wave in checks.items():
        x = torch.from_numpy(wave)
        with torch.no_grad():
            feed = x if meta["frontend"] else model.frontend(x)
            ref, ref64 = model(x), model64(x.double())
            # each computation against its own float64 run: a wrong graph cannot widen its own tolerance
            graph, graph64 = exported(feed), exported64(feed.double())
        got = session.run(names, {session.get_inputs()[0].name: feed.numpy()})
        operator_error = _operator_error(ref, model.config.head, sigmoid)
        results[key] = {}
        for name, onnx_out, graph_out, graph_exact in zip(names, got, graph, graph64):
            torch_out = getattr(ref, name).numpy()
            error = _max_diff(torch_out, getattr(ref64, name).numpy()) + _max_diff(graph_out.numpy(),
                                                                                   graph_exact.numpy())
            tolerance = floor + margin * (error + operator_error.get(name, 0.0))
            diff = np.abs(onnx_out.astype(np.float64) - torch_out)
            worst = np.unravel_index(np.argmax(diff - tolerance), diff.shape)  # nearest its tolerance, or beyond
            tolerance = np.broadcast_to(tolerance, diff.shape)
            results[key][name] = ParityCheck(float(diff[worst]), error, float(tolerance[worst]))
    return results


def _max_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))


def sigmoid_error() -> float:
    """The largest absolute error of onnxruntime's (CPU) ``Sigmoid`` against float64, over [-30, 30]."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    io = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [None]) for n in ("x", "y")]
    graph = helper.make_graph([helper.make_node("Sigmoid", ["x"], ["y"])], "sigmoid", io[:1], io[1:])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.linspace(-30, 30, 60_001, dtype=np.float32)
    return _max_diff(session.run(None, {"x": x})[0], 1 / (1 + np.exp(-x.astype(np.float64))))


def _operator_error(ref, head: str, sigmoid: float) -> dict[str, float | np.ndarray]:
    """Per output, what an error of ``sigmoid`` in each sigmoid output becomes (first order; elementwise)."""
    errors: dict[str, float | np.ndarray] = {"clip_probs": sigmoid, "segment_probs": sigmoid, "attention_raw": sigmoid}
    if head != "attention" or ref.attention is None:
        return errors
    xa, xb, att = (t.double().numpy() for t in (ref.segment_probs, ref.attention_raw, ref.attention))
    total = xb.sum(axis=-1, keepdims=True) + ATTENTION_EPS
    # A_t = X^b_t / S: |dA_t| <= d / S + A_t * T d / S, and A stays in [0, 1]
    d_att = np.minimum(sigmoid * (1 + xb.shape[-1] * att) / total, 1.0)
    errors["attention"] = d_att
    errors["clip_probs"] = (d_att * xa).sum(axis=-1) + sigmoid * att.sum(axis=-1)  # y = sum_t A_t X^a_t
    return errors
