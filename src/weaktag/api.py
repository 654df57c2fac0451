"""weaktag's main entry points, as ``import weaktag`` exposes them: each mirrors its command.

- ``weaktag.train(config, *overrides)``: ``weaktag train --config CONFIG key=value ...``
- ``weaktag.evaluate(checkpoint, labels)``: ``weaktag evaluate --checkpoint CKPT --labels LABELS``
- ``weaktag.compare(config, *overrides, schemes=[A, B], trials=N)``:
  ``weaktag compare --config CONFIG --schemes A,B --trials N``
- ``weaktag.embed(inputs, out_dir, checkpoint=CKPT)``: ``weaktag embed --checkpoint CKPT FILES... --out DIR``
- ``weaktag.Tagger.from_checkpoint(CKPT).tag(path)``: ``weaktag tag --checkpoint CKPT FILES...``, a file at a time
- ``weaktag.read_labels(path)``: any label file weaktag reads, as a :class:`~weaktag.labels.Manifest`

The examples run as tests (``tests/test_api_examples.py``) with ``data``, a folder from
``weaktag synth data --splits train=12,validation=6,test=6 --seconds 4`` (generated sounds, no download),
``checkpoint``, a ``model.pt`` trained on it, ``recording``, one of its WAV files, and ``out``, an empty
folder. The functions behind them take typed objects instead of command-line strings:
:func:`weaktag.training.train`, :func:`weaktag.experiments.compare.run_compare`,
:func:`weaktag.experiments.evaluation.evaluate_checkpoint`, :func:`weaktag.inference.embedding.embed_files`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from .config import ExperimentConfig, load_config, recipe_config
from .errors import UsageError
from .experiments.compare import CompareConfig, CompareResult, Recipe, run_compare
from .experiments.evaluation import EvaluationReport, evaluate_checkpoint
from .inference import Tagger
from .inference.embedding import EmbedRunSummary, Embedder, embed_files
from .labels import read_labels
from .training import TrainResult
from .training import train as train_config

__all__ = ["Tagger", "compare", "embed", "evaluate", "read_labels", "train"]


def _config(config: str | Path | ExperimentConfig, overrides: Sequence[str]) -> ExperimentConfig:
    """A config file or packaged recipe with ``overrides``, or a config object as it is."""
    if not isinstance(config, ExperimentConfig):
        return load_config(config, list(overrides))
    if overrides:
        raise UsageError("key=value overrides apply to a config file or recipe name; change an ExperimentConfig "
                         "object in Python (its sections are dataclasses)")
    return config


def train(config: str | Path | ExperimentConfig, *overrides: str, resume: bool = False,
          overwrite: bool = False) -> TrainResult:
    """Train one model: a YAML config or packaged recipe (``"recommended"``, ``"narrow"``) and
    ``section.key=value`` overrides, as ``weaktag train --config CONFIG key=value ...``.

    Writes ``model.pt`` (and ``summary.json``) under ``output_dir``; ``resume`` and ``overwrite`` as the
    command's flags. Returns the :class:`~weaktag.training.TrainResult` (checkpoint path, best epoch,
    validation and test mAP).

    >>> import weaktag
    >>> result = weaktag.train("narrow", f"data.train={data}/train/manifest.jsonl",
    ...                        f"data.validation={data}/validation/manifest.jsonl",
    ...                        "train.max_epochs=1", "train.logger=none", f"output_dir={out}/run")
    >>> result.checkpoint.name, result.best_epoch >= 1, result.test_map is None  # no data.test given
    ('model.pt', True, True)
    """
    return train_config(_config(config, overrides), resume=resume, overwrite=overwrite)


def evaluate(checkpoint: str | Path, labels: str | Path, audio_dir: str | Path | None = None,
             event_output: str | None = None) -> EvaluationReport:
    """Tagging metrics (and event metrics, for strong labels) of a checkpoint on a labelled set, as
    ``weaktag evaluate``; ``report.to_markdown()`` is what the command prints.

    >>> import weaktag
    >>> report = weaktag.evaluate(checkpoint, f"{data}/test/manifest.jsonl")
    >>> report.num_clips, 0.0 <= report.tagging.mAP <= 1.0, report.events is not None
    (6, True, True)
    """
    return evaluate_checkpoint(checkpoint, labels, audio_dir, event_output=event_output)


def compare(config: str | Path | ExperimentConfig, *overrides: str, schemes: Sequence[str], trials: int = 5,
            out_dir: str | Path | None = None, seeds: Sequence[int] | None = None,
            recipes: Mapping[str, str | Path] | None = None,
            log: Callable[[str], None] | None = None) -> CompareResult:
    """Paired trials of training schemes (or ``recipe:scheme`` arms, with ``recipes`` naming each recipe's
    YAML file or packaged name), resumable, as ``weaktag compare``; writes ``results.json``, tables and
    ``report.md`` to ``out_dir`` (default: the config's ``output_dir``). ``log``: a function that gets a
    line per trial (``print``), None for silence.

    >>> import weaktag
    >>> result = weaktag.compare("narrow", f"data.train={data}/train/manifest.jsonl",
    ...                          f"data.validation={data}/validation/manifest.jsonl",
    ...                          f"data.test={data}/test/manifest.jsonl", "train.max_epochs=1",
    ...                          "train.logger=none", schemes=["attention", "pool-weak"], trials=1,
    ...                          out_dir=f"{out}/compare")
    >>> result.schemes, result.summary["attention"]["mAP"]["n"], result.report.name
    (['attention', 'pool-weak'], 1, 'report.md')
    """
    base = _config(config, overrides)
    arms = {name: Recipe(recipe_config(base, path, list(overrides)), str(path))
            for name, path in (recipes or {}).items()}
    options = CompareConfig(list(schemes), trials, None if seeds is None else list(seeds))
    return run_compare(base, options, out_dir or base.output_dir, recipes=arms, log=log)


def embed(inputs: str | Path | Sequence[str | Path], out_dir: str | Path, *, checkpoint: str | Path | None = None,
          backbone: str | None = None, **options: Any) -> EmbedRunSummary:
    """Clip and per-segment embeddings of files, folders or globs into ``out_dir``, as ``weaktag embed``: per
    file ``<name>.npz`` with ``clip`` (D,), ``segments`` (T, D) and ``timestamps_ms`` (T,), and ``index.csv``
    (:mod:`weaktag.inference.embedding`). ``checkpoint``: the features that feed its head; ``backbone="aisfx"``
    instead: the bare pretrained backbone. ``options``: the tagger's (``chunk_seconds``, ``device``, ...).
    In memory, one recording at a time: ``weaktag.inference.Embedder.from_checkpoint(path).embed(audio)``.

    >>> import numpy as np, weaktag
    >>> summary = weaktag.embed([recording], f"{out}/embeddings", checkpoint=checkpoint)
    >>> arrays = np.load(f"{out}/embeddings/" + recording.with_suffix(".npz").name)
    >>> summary.ok, arrays["segments"].shape[0] == arrays["timestamps_ms"].shape[0], arrays["clip"].dtype
    (1, True, dtype('float32'))
    """
    if (checkpoint is None) == (backbone is None):
        raise UsageError("give one of checkpoint= (a trained model) or backbone='aisfx' (the bare backbone)")
    embedder = (Embedder.from_checkpoint(checkpoint, **options) if checkpoint is not None
                else Embedder.from_backbone(str(backbone), **options))
    sources = [inputs] if isinstance(inputs, (str, Path)) else list(inputs)
    with embedder:
        return embed_files(embedder, sources, out_dir)
