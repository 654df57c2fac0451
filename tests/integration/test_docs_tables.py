"""The results tables of README.md, docs/ and recipes/soundscapes/README.md are generated from the committed
results.json files (recipes/soundscapes/tables.py): a hand edit or a stale table fails here. The README's
test command is the one CI runs."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest

from conftest import REPO


def _tables():
    spec = importlib.util.spec_from_file_location("soundscape_tables", REPO / "recipes" / "soundscapes" / "tables.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up
    spec.loader.exec_module(module)
    return module


tables = _tables()


@pytest.mark.parametrize("path", tables.documents(), ids=lambda p: str(p.relative_to(REPO)))
def test_committed_tables_are_as_generated(path: Path):
    text = path.read_text()
    assert tables.fill(text, str(path)) == text, (
        f"{path.relative_to(REPO)}: a results table differs from the committed results.json; "
        "run python recipes/soundscapes/tables.py")


def test_every_table_is_shown_and_every_marker_is_known():
    shown = {m["name"] for path in tables.documents() for m in tables.MARKER.finditer(path.read_text())}
    assert shown == set(tables.TABLES)
    assert "<!-- table:quality -->" in (REPO / "README.md").read_text()
    with pytest.raises(ValueError, match=r"notes.md: unknown table 'nope'"):
        tables.fill("<!-- table:nope -->\n<!-- /table -->", "notes.md")


def test_a_hand_edited_cell_is_put_back():
    readme = (REPO / "README.md").read_text()
    cell = "| `recommended:attention` | weak | 78.8 ± 0.76 |"
    assert cell in readme  # the cell as results.json and the committed table.md have it
    edited = readme.replace(cell, "| `recommended:attention` | weak | 78.8 ± 0.8 |")
    assert tables.fill(edited) == readme
    # the same cell in the report compare wrote from that results.json
    table_md = (REPO / "recipes" / "soundscapes" / "results" / "quality" / "table.md").read_text()
    assert re.search(r"`recommended:attention` \|[^\n]*78\.8 ± 0\.76", table_md)


def test_readme_test_command_is_what_ci_runs():
    readme = (REPO / "README.md").read_text()
    tests = readme[readme.index("## Tests"):]
    command = re.search(r"```bash\n(.+)\n```", tests)[1]
    ci = (REPO / ".ci" / "run").read_text()
    assert f"# the test command from README.md (\"Tests\")\n{command}\n" in ci


def test_readme_stays_short_and_links_only_to_pages_that_exist():
    readme = (REPO / "README.md").read_text()
    assert len(readme.splitlines()) <= 200  # the rest belongs in docs/ (issue 20)
    for target in re.findall(r"\]\((docs/[^)#]+)", readme):
        assert (REPO / target).is_file(), target
