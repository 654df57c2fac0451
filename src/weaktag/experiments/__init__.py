"""Experiments on top of the library: ``compare`` (paired trials, statistics, report), checkpoint
evaluation, the paper's figures, and ``demo``. Import the module you need:

* :mod:`.compare` — ``run_compare``: paired trials of several schemes, Wilcoxon tests, ``report.md``;
* :mod:`.report` — the report's tables and text, built from ``results.json`` alone;
* :mod:`.plots` — Fig. 4 (gain vs. duration) and Fig. 5 (attention) drawn from arrays;
* :mod:`.figures` — the same figures from checkpoints (``weaktag plot``);
* :mod:`.evaluation` — ``evaluate_checkpoint`` (``weaktag evaluate``);
* :mod:`.demo` — ``run_demo`` (``weaktag demo``).
"""
