"""The M&mnet and PSL benchmark's arms (recipes/soundscapes/peers_v2.py), without training: every ablation probe
is a valid config of the recommended recipe, and the PSL student's recipe is the narrow network taught by
the recommended recipe's arm."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from conftest import REPO, soundscape_script


peers = soundscape_script("peers_v2")


@pytest.mark.parametrize("name, overrides", peers.ABLATION, ids=[name for name, _ in peers.ABLATION])
def test_each_ablation_probe_is_one_change_to_a_valid_config(name: str, overrides: list[str]) -> None:
    from weaktag.config import load_config
    from weaktag.supervision import make_scheme

    config = load_config(REPO / "configs" / "recommended.yaml", overrides)
    scheme = make_scheme(config.scheme.name, config.scheme)
    if name.startswith("mmnet-") and name != "mmnet-weaktag-v1":  # one choice of the difference list put back
        faithful = make_scheme("mmnet").params
        changed = [k for k in ("micro_heads", "micro_hidden", "macro_layers", "class_weight_beta", "ensemble_weight")
                   if getattr(scheme.params, k) != getattr(faithful, k)]
        assert len(changed) == 1, changed


def test_the_psl_student_is_the_narrow_network_taught_by_the_recommended_arm(tmp_path: Path) -> None:
    from weaktag.config import load_config

    path = peers.psl_recipe(tmp_path)
    recipe = yaml.safe_load(path.read_text())
    assert recipe["scheme"] == {"name": "psl", "teacher_arm": "recommended:attention"}
    narrow = load_config("narrow", [])
    config = load_config(path, [])
    assert config.model == narrow.model and config.train.max_epochs == narrow.train.max_epochs
    assert config.scheme.teacher_weight == 1.0  # PSL proper: the teacher's labels alone
