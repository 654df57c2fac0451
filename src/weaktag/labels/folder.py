"""A folder of audio sorted by class: ``<root>/<class>/<file>`` (ESC-50, UrbanSound-style exports)."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Sequence

from .manifest import Clip, LabelError, LabelSource, Manifest, _check_known, _manifest


#: ESC's file names, ``<fold>-<Freesound clip id>-<take>[-<class number>]`` (ESC-10 and ESC-50 as distributed)
ESC_FILE_NAME = re.compile(r"^(\d+)-\d+-[A-Za-z]+(?:-\d+)?$")


def _is_hidden(relative: Path) -> bool:
    return any(part.startswith(".") for part in relative.parts)


def read_folder(
    root: str | Path,
    classes: Sequence[str] | None = None,
    with_durations: bool = False,
) -> Manifest:
    """One weakly labelled clip per audio file; its label is the name of its class folder.

    Class folders are the non-hidden sub-folders of ``root``; audio files (suffixes of
    :data:`weaktag.audio.AUDIO_SUFFIXES`, any case) are found recursively inside each, hidden
    files and folders skipped, files directly in ``root`` ignored. ``clip_id`` is
    ``<class>/<path inside the class folder without suffix>``; clips are sorted by it.
    ``with_durations`` reads each file's header for ``duration`` (slow on large trees).
    A class folder outside ``classes`` is an error; a root without audio is an error. When every file is
    named as ESC names its clips (``<fold>-<clip id>-<take>``, as ESC-10 is distributed), each clip gets the
    fold its name starts with.
    """
    from weaktag.audio import AUDIO_SUFFIXES, audio_duration  # lazy: pulls in torch

    root = Path(root)
    if not root.exists():
        raise LabelError(root, None, "folder not found")
    if not root.is_dir():
        raise LabelError(root, None, "not a folder: expected <root>/<class>/<audio file>")
    known = set(classes) if classes is not None else None
    suffixes = {s.lower() for s in AUDIO_SUFFIXES}

    clips: list[Clip] = []
    for class_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = sorted(
            f
            for f in class_dir.rglob("*")
            if f.suffix.lower() in suffixes and f.is_file() and not _is_hidden(f.relative_to(class_dir))
        )
        if files:
            _check_known(class_dir.name, known, class_dir, None)
        for file in files:
            inside = file.relative_to(class_dir).with_suffix("").as_posix()
            clips.append(
                Clip(
                    clip_id=f"{class_dir.name}/{inside}",
                    audio_path=file,
                    labels=frozenset({class_dir.name}),
                    events=None,
                    duration=audio_duration(file) if with_durations else None,
                    source=LabelSource(class_dir),
                )
            )
    if not clips:
        raise LabelError(
            root,
            None,
            f"no audio files ({', '.join(sorted(suffixes))}) in class sub-folders: expected <root>/<class>/<file>",
        )
    clips.sort(key=lambda c: c.clip_id)
    named = [ESC_FILE_NAME.match(c.audio_path.stem) for c in clips if c.audio_path is not None]
    if all(named):
        clips = [replace(c, fold=str(int(m.group(1)))) for c, m in zip(clips, named)]
    return _manifest(clips, classes)
