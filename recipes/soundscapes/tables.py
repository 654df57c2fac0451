#!/usr/bin/env python
"""The results tables of README.md, docs/ and recipes/soundscapes/README.md, generated from the committed
reports (``results/*/results.json``, as ``weaktag compare`` wrote them) rather than copied by hand.

    python recipes/soundscapes/tables.py           # rewrite every table between its markers
    python recipes/soundscapes/tables.py --check   # exit 1, naming the files, when a table is not as generated

A table sits between marker comments that name it (one of ``TABLES``)::

    <!-- table:quality -->
    ...generated, do not edit...
    <!-- /table -->

Cells are formatted by weaktag's own report (``weaktag.experiments.report.metrics_table``), so they read
exactly as the committed ``table.md`` and ``report.md`` of the same run. tests/integration/test_docs_tables.py checks
that regenerating gives the committed text.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent  # recipes/soundscapes
REPO = HERE.parents[1]
RESULTS = HERE / "results"
#: the files whose markers are filled: the README, the documentation, the recipes' READMEs
DOCUMENT_GLOBS = ("README.md", "docs/**/*.md", "recipes/**/README.md")
#: test-set metrics of the soundscape tables (fractions; printed in %)
HEADLINE = ("mAP", "psds1", "psds2", "event_f1_macro")
MARKER = re.compile(r"(<!-- table:(?P<name>[a-z0-9-]+) -->\n)(?P<body>.*?)(<!-- /table -->)", re.S)


@dataclass(frozen=True)
class Table:
    """One generated table: the arms of one ``results.json`` (all, in its order, when ``arms`` is empty) and the
    metrics shown, or the table lines of a markdown report that a script already generated (``markdown``)."""

    source: str  # relative to results/
    metrics: tuple[str, ...] = HEADLINE
    arms: tuple[str, ...] = ()
    markdown: bool = False
    labels: bool = True  # a column of the labels each arm trained on (results.json's scheme_labels)
    in_repo: bool = False  # ``source`` is relative to the repository (a benchmark's results), not results/


TABLES: dict[str, Table] = {
    "detection": Table("detection/results.json"),
    "quality": Table("quality/results.json"),
    "ablation": Table("quality/ablation.md", markdown=True),
    "detection-unlabeled": Table("detection/unlabeled.md", markdown=True),
    "detection-gru": Table("detection/recommended-gru/results.json"),
    "detection-unlabeled-gru": Table("detection/unlabeled-gru-ema0999.md", markdown=True),
    "detection-ablation-gru": Table("detection/ablation-gru.md", markdown=True),
    "mean-teacher-probes": Table("detection/mean_teacher_probes.md", markdown=True),
    "self-supervision": Table("self_supervision/results.json"),
    "self-supervision-recommended": Table("self_supervision/recommended/results.json"),
    "self-supervision-v2": Table("self_supervision/v2/results.json"),
    "self-supervision-v2-probes": Table("self_supervision/v2/probes.md", markdown=True),
    "self-supervision-study": Table("self_supervision/v2/study.md", markdown=True),
    "self-supervision-scratch": Table("self_supervision/v2/scratch/results.json"),
    "peers": Table("peers/results.json", ("mAP", "psds1")),
    "peers-recommended": Table("peers/recommended/results.json", ("mAP", "psds1")),
    "peers-v2-ablation": Table("peers/v2/probes.md", markdown=True),
    "peers-v2": Table("peers/v2/results.json"),
    "schemes": Table("compare/results.json", ("mAP", "AUC", "d_prime", "psds1", "event_f1_macro")),
    "probe-aisfx": Table("probe_aisfx_frozen/results.json"),
    "distill": Table("distill/results.json"),
    "deployment": Table("benchmarks/results/deployment_summary.md", markdown=True, in_repo=True),
}


def render(name: str) -> str:
    """The table ``name`` as markdown: a line saying where it comes from, then the table."""
    from weaktag.experiments.report import metrics_table

    table = TABLES[name]
    path = REPO / table.source if table.in_repo else RESULTS / table.source
    where = f"`{table.source}`" if table.in_repo else f"`recipes/soundscapes/results/{table.source}`"
    if table.markdown:  # its tables, each apart
        blocks = re.findall(r"(?:^\|.*\n?)+", path.read_text(), re.M)
        return f"Generated from {where}.\n\n" + "\n".join(block.rstrip("\n") + "\n" for block in blocks)
    results = json.loads(path.read_text())
    arms = list(table.arms or results["schemes"])
    trials = results["trials"]
    caption = (f"Test set, mean ± std over {trials} paired trial{'s' if trials != 1 else ''} "
               f"(seeds {results['seeds'][0]}-{results['seeds'][-1]}); generated from {where}.")
    text = metrics_table(results["summary"], arms, table.metrics, bold_best=False)
    if table.labels and "scheme_labels" in results:
        text = with_labels(text, [results["scheme_labels"][arm] for arm in arms])
    return caption + "\n\n" + text + "\n"


def with_labels(table: str, labels: list[str]) -> str:
    """``table`` (a header, the alignment row, one row per arm) with a ``labels`` column after the first."""
    rows = table.split("\n")
    cells = [["labels", "---"][i] if i < 2 else labels[i - 2] for i in range(len(rows))]
    return "\n".join(row.replace(" | ", f" | {cell} | ", 1) if i != 1 else row.replace("|---|", "|---|---|", 1)
                     for i, (row, cell) in enumerate(zip(rows, cells)))


def fill(text: str, where: str = "text") -> str:
    """``text`` with every marked table regenerated; ValueError naming ``where`` for an unknown table name."""
    def replace(match: re.Match) -> str:
        name = match["name"]
        if name not in TABLES:
            raise ValueError(f"{where}: unknown table {name!r} (known: {', '.join(TABLES)})")
        return match.group(1) + render(name) + match.group(4)

    return MARKER.sub(replace, text)


def documents() -> list[Path]:
    """Every file whose tables this script fills."""
    return sorted({path for pattern in DOCUMENT_GLOBS for path in REPO.glob(pattern)})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a table is not as generated")
    args = parser.parse_args(argv)
    stale = []
    for path in documents():
        name = str(path.relative_to(REPO))
        text = path.read_text()
        new = fill(text, name)
        if new != text:
            stale.append(name)
            if not args.check:
                path.write_text(new)
    if args.check and stale:
        print(f"tables not as generated in {', '.join(stale)}: run python recipes/soundscapes/tables.py",
              file=sys.stderr)
        return 1
    print(f"{'stale' if args.check else 'rewritten'}: {', '.join(stale) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
