"""The docstring examples of ``import weaktag``'s entry points run, as written, on a tiny generated data set.

Their names (``data``, ``checkpoint``, ``recording``, ``out``) are those :mod:`weaktag.api`'s module doc
describes; each example gets a fresh ``out`` folder.
"""

from __future__ import annotations

import doctest
from pathlib import Path

import pytest

import weaktag
from weaktag.synth import SynthConfig, synthesize_splits

SPLITS = {"train": 12, "validation": 6, "test": 6}
SECONDS = 4.0  # short clips: every example runs in seconds


@pytest.fixture(scope="module")
def examples_data(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("api")
    data = root / "data"
    synthesize_splits(data, SPLITS, SynthConfig(clip_seconds=SECONDS, seed=0))
    from weaktag.config import load_config
    from weaktag.training import train

    config = load_config("narrow", [f"data.train={data}/train/manifest.jsonl",
                                    f"data.validation={data}/validation/manifest.jsonl", "train.max_epochs=1",
                                    "train.logger=none", f"output_dir={root}/model"])
    checkpoint = train(config).checkpoint
    recording = sorted((data / "test").rglob("*.wav"))[0]
    return {"data": data, "checkpoint": checkpoint, "recording": recording}


def _documented() -> dict[str, object]:
    from weaktag.inference.embedding import Embedder

    return {**{name: getattr(weaktag, name) for name in weaktag.API}, "Embedder": Embedder}


@pytest.mark.parametrize("name", sorted(_documented()))
def test_docstring_example_runs(name: str, examples_data: dict, tmp_path: Path) -> None:
    obj = _documented()[name]
    tests = [t for t in doctest.DocTestFinder(recurse=False).find(obj, name, globs={**examples_data, "out": tmp_path})
             if t.examples]
    assert tests, f"{name} has no docstring example"
    report: list[str] = []
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in tests:
        runner.run(test, out=report.append)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, "".join(report)
    assert result.attempted >= 2


def test_the_package_loads_its_entry_points_on_first_use() -> None:
    import subprocess
    import sys

    code = "import sys, weaktag; print(*[m for m in sys.modules if m.startswith('weaktag.')])"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert loaded == [], f"import weaktag loads {loaded}: the entry points must wait for their first use"
    assert weaktag.Tagger is __import__("weaktag.inference", fromlist=["Tagger"]).Tagger
    assert set(weaktag.API) <= set(dir(weaktag))
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        weaktag.nothing  # noqa: B018
