"""Unlabelled clips (``data.unlabeled``, the mean teacher's extra data): a folder of audio, a list of audio
paths, or any label source :func:`weaktag.labels.read_labels` reads (a manifest .jsonl, a pack, ...).

Whatever labels the source holds are dropped (the clips train only through the mean teacher), and a
log line says so, so that a labelled list given here by mistake is noticed.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

from .folder import _is_hidden
from .manifest import Clip, LabelError, LabelSource, Manifest, _label_file_lines
from .pack import PACK_JSON

log = logging.getLogger(__name__)


def _audio_suffixes() -> set[str]:
    from weaktag.audio import AUDIO_SUFFIXES  # lazy: pulls in torch

    return {s.lower() for s in AUDIO_SUFFIXES}


def _folder_clips(root: Path) -> list[Clip]:
    """Every non-hidden audio file under ``root`` (any depth; a class folder's too), clip id its relative path
    without suffix, sorted by it."""
    suffixes = _audio_suffixes()
    files = sorted(f for f in root.rglob("*")
                   if f.suffix.lower() in suffixes and f.is_file() and not _is_hidden(f.relative_to(root)))
    if not files:
        raise LabelError(root, None, f"no audio files ({', '.join(sorted(suffixes))}) in this folder of "
                                     "unlabelled clips (data.unlabeled)")
    return [Clip(f.relative_to(root).with_suffix("").as_posix(), f, frozenset(), source=LabelSource(root))
            for f in files]


def _is_path_list(lines: list[tuple[int, str]]) -> bool:
    suffixes = _audio_suffixes()
    return bool(lines) and all(Path(text.strip()).suffix.lower() in suffixes for _, text in lines)


def _list_clips(path: Path, lines: list[tuple[int, str]], audio_dir: Path) -> list[Clip]:
    """One clip per line of a list of audio paths (relative ones under ``audio_dir``), clip id the path as
    written without suffix."""
    clips = []
    for number, text in lines:
        written = Path(text.strip())
        audio = written if written.is_absolute() else audio_dir / written
        clips.append(Clip(written.with_suffix("").as_posix(), audio, frozenset(), source=LabelSource(path, number)))
    return clips


def read_unlabeled(path: str | Path, audio_dir: str | Path | None = None) -> Manifest:
    """The clips of ``path`` without labels (see the module doc); LabelError naming ``path`` when it does
    not exist, holds no clip, or is neither a list of audio paths nor a label source weaktag reads.

    ``audio_dir`` is where the relative paths of a list (or of a label file) are, by default the file's
    own folder; a folder or a pack holds its audio."""
    from . import read_labels

    path = Path(path)
    if not path.exists():
        raise LabelError(path, None, "file or folder of unlabelled clips not found (data.unlabeled)")
    is_pack = (path / PACK_JSON).is_file() or path.name == PACK_JSON
    if path.is_dir() and not is_pack:
        clips = _folder_clips(path)
    else:
        lines = [] if is_pack else [(n, text) for n, text in _label_file_lines(path)
                                    if text.strip() and not text.lstrip().startswith("#")]
        if not is_pack and _is_path_list(lines):
            clips = _list_clips(path, lines, Path(audio_dir) if audio_dir is not None else path.parent)
        else:
            labelled = read_labels(path, audio_dir=audio_dir).clips
            if any(c.labels or c.events is not None for c in labelled):
                log.info("data.unlabeled: %s: its labels are ignored (unlabelled clips train only through the "
                         "mean teacher's outputs)", path)
            clips = [replace(c, labels=frozenset(), events=None) for c in labelled]
    if not clips:
        raise LabelError(path, None, "no clip in this source of unlabelled clips (data.unlabeled)")
    return Manifest(clips, [])
