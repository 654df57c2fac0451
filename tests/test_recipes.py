"""The packaged recipes: they load and validate, configs/ links to them, and --recipe finds them by name."""

from __future__ import annotations

from pathlib import Path

import pytest

from weaktag.config import load_config, recipe_config
from weaktag.recipes import recipe_names, recipe_path

REPO = Path(__file__).resolve().parents[1]


def test_packaged_recipes_load_and_configs_link_to_them():
    assert {"recommended", "recommended-gpu"} <= set(recipe_names())
    for name in recipe_names():
        config = load_config(recipe_path(name))
        assert config.data.train is None  # a recipe brings no data
        assert (REPO / "configs" / f"{name}.yaml").resolve() == recipe_path(name)
    cpu = load_config(recipe_path("recommended"))
    assert (cpu.model.backbone, cpu.model.freeze, cpu.scheme.name) == ("aisfx", 4, "attention")
    assert cpu.train.event_output == "auto" and cpu.train.accelerator == "cpu"
    gpu = load_config(recipe_path("recommended-gpu"))
    assert gpu.train.accelerator == "gpu" and gpu.train.precision == "bf16-mixed" and gpu.model.freeze < 4


def test_a_recipe_takes_the_data_of_another_config(tmp_path: Path):
    base = load_config(None, ["data.train=t.tsv", "data.validation=v.tsv", "output_dir=runs/x"])
    recipe = recipe_config(base, recipe_path("recommended"), ["train.max_epochs=3"])
    assert recipe.data.train == "t.tsv" and recipe.output_dir == "runs/x" and recipe.train.max_epochs == 3
    assert recipe.model.backbone == "aisfx"
    with pytest.raises(ValueError, match="no packaged recipe 'nope'"):
        recipe_path("nope")
