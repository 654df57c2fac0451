"""Scheme parameters: each scheme's own dataclass, checked from its field metadata; the old flat scheme
section (checkpoints, trial records) still read; the head registry."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest
import torch

from conftest import REPO
from weaktag.config import ExperimentConfig, config_from_dict, load_config
from weaktag.errors import ConfigError
from weaktag.models import HEADS, ModelConfig, pool_inputs, pool_recording
from weaktag.supervision import SCHEMES, make_scheme, scheme_parameters

RESULTS = REPO / "recipes" / "soundscapes" / "results"
RANGE_KEYS = ("choices", "min", "max", "min_exclusive", "max_exclusive", "finite")


def _ranged_fields() -> list[tuple[str, dataclasses.Field]]:
    return [(name, f) for name, cls in SCHEMES.items() for f in dataclasses.fields(cls.Parameters)
            if any(k in f.metadata for k in RANGE_KEYS)]


def _bad_values(f: dataclasses.Field) -> list[tuple[object, str]]:
    """Values outside ``f``'s metadata, each with what the error must say about the range."""
    meta = f.metadata
    step = 1 if f.type in (int, "int") else 0.5
    bad = []
    if "choices" in meta:
        bad.append(("no-such-choice", "allowed: " + ", ".join(meta["choices"])))
    if "min" in meta:
        bad.append((meta["min"] - step, f"minimum {float(meta['min']) if step == 0.5 else meta['min']}"))
    if "max" in meta:
        bad.append((meta["max"] + step, f"maximum {meta['max']}"))
    if "min_exclusive" in meta:
        bad.append((meta["min_exclusive"], f"must be above {meta['min_exclusive']}"))
    if "max_exclusive" in meta:
        bad.append((meta["max_exclusive"], f"must be below {meta['max_exclusive']}"))
    if meta.get("finite"):
        bad.append((math.inf, "not a finite number"))
    return bad


@pytest.mark.parametrize("scheme,field", _ranged_fields(), ids=lambda x: x if isinstance(x, str) else x.name)
def test_every_scheme_parameter_is_checked_from_its_own_field(scheme: str, field: dataclasses.Field) -> None:
    cases = _bad_values(field)
    assert cases, "a ranged field with no range"
    low, high = field.metadata.get("min", field.metadata.get("min_exclusive")), field.metadata.get(
        "max", field.metadata.get("max_exclusive"))
    for value, says in cases:
        override = "inf" if value == math.inf else value
        with pytest.raises(ConfigError) as raised:  # from a config: the file (overrides) and the key
            load_config(None, [f"scheme.name={scheme}", f"scheme.{field.name}={override}"])
        message = str(raised.value)
        assert f"scheme.{field.name}: " in message and says in message, message
        if low is not None and high is not None and "choices" not in field.metadata:
            assert f"(allowed: {low} to" in message and str(high) in message, message
        with pytest.raises(ConfigError, match=f"scheme.{field.name}: "):  # and built from Python
            make_scheme(scheme, scheme_parameters(scheme, **{field.name: value}))
    # its default is in range: the scheme builds from its defaults
    assert make_scheme(scheme).params == scheme_parameters(scheme)


@pytest.mark.parametrize("scheme", list(SCHEMES))
def test_a_key_the_scheme_does_not_take_is_an_error_naming_it(scheme: str) -> None:
    with pytest.raises(ConfigError, match=rf"overrides: scheme.no_such_key: scheme '{scheme}' does not take "
                       r"'no_such_key' \(no scheme takes it\); " + f"{scheme} takes: "):
        load_config(None, [f"scheme.name={scheme}", "scheme.no_such_key=1"])
    others = {key for other in SCHEMES.values() for key in other.parameters} - set(SCHEMES[scheme].parameters)
    for key in sorted(others):
        takers = ", ".join(n for n, cls in SCHEMES.items() if key in cls.parameters)
        with pytest.raises(ConfigError, match=rf"scheme.{key}: scheme '{scheme}' does not take '{key}' "
                           rf"\(taken by {takers}\)"):
            load_config(None, [f"scheme.name={scheme}", f"scheme.{key}=1"])
    # its own section round-trips through a checkpoint's dict
    config = load_config(None, [f"scheme.name={scheme}"])
    assert config_from_dict(config.to_dict()) == config
    assert set(config.to_dict()["scheme"]) == {"name", "class_weight_beta", *SCHEMES[scheme].parameters}


def test_a_yaml_scheme_section_is_read_into_the_schemes_class(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("scheme:\n  name: psl\n  teacher: t.pt\n  chunk_seconds: 5\n  teacher_weight:\n")
    config = load_config(path, ["scheme.chunk_seconds=3"])
    assert type(config.scheme).__name__ == "PSLParameters"
    assert (config.scheme.teacher, config.scheme.chunk_seconds, config.scheme.teacher_weight) == (
        str(tmp_path / "t.pt"), 3.0, 1.0)  # relative to the YAML; an empty value is "not set" (the default)
    path.write_text("scheme:\n  name: attention\n  alpha: 0.5\n")
    with pytest.raises(ConfigError, match=rf"{path}: scheme.alpha: scheme 'attention' does not take 'alpha'"):
        load_config(path)


def test_an_override_that_switches_scheme_keeps_what_the_new_one_takes(tmp_path: Path, caplog) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("scheme:\n  name: attention-self\n  alpha: 0.5\n  class_weight_beta: 0.3\n")
    with caplog.at_level("INFO", logger="weaktag.config"):
        mmnet = load_config(path, ["scheme.name=mmnet", "scheme.micro_weight=2"])
    assert mmnet.scheme == scheme_parameters("mmnet", micro_weight=2.0, class_weight_beta=0.3)
    assert f"scheme mmnet does not take scheme.alpha ({path}): left out" in caplog.text
    strong = load_config(path, ["scheme.name=attention-strong"])
    assert strong.scheme == scheme_parameters("attention-strong", alpha=0.5, class_weight_beta=0.3)
    with pytest.raises(ConfigError, match="overrides: scheme.alpha: scheme 'mmnet' does not take 'alpha'"):
        load_config(path, ["scheme.name=mmnet", "scheme.alpha=0.7"])  # a layer's own keys: its scheme's


#: the scheme section every checkpoint and trial record held before each scheme declared its parameters
FLAT = {"name": "attention-self", "alpha": 1.0, "attention_target": "normalized", "pseudo_threshold": None,
        "pseudo_quantile": None, "peak_ratio": None, "confidence_gate": None, "pseudo_target": None,
        "alpha_warmup_epochs": None, "teacher_decay": None, "segment_weight": None, "teacher": None,
        "chunk_seconds": None, "teacher_weight": None, "micro_weight": None, "ensemble_weight": None,
        "class_weight_beta": 0.0}


def test_old_flat_scheme_sections_still_load() -> None:
    old = config_from_dict({"scheme": {**FLAT, "name": "attention"}})  # alpha: 1.0 for an attention run
    assert old.scheme == scheme_parameters("attention")
    psl = config_from_dict({"scheme": {**FLAT, "name": "psl", "teacher": "t.pt", "chunk_seconds": 5.0}})
    assert psl.scheme == scheme_parameters("psl", teacher="t.pt", chunk_seconds=5.0)  # None: the default (0.5)
    ext = config_from_dict({"scheme": {**FLAT, "name": "attention-self-ext", "alpha": 0.5, "peak_ratio": 0.3}})
    assert ext.scheme == scheme_parameters("attention-self-ext", alpha=0.5, peak_ratio=0.3)
    # a value no run of that scheme can have been made with is not dropped silently
    with pytest.raises(ConfigError, match="scheme.alpha: scheme 'attention' does not take 'alpha'"):
        config_from_dict({"scheme": {**FLAT, "name": "attention", "alpha": 0.5}})
    with pytest.raises(ConfigError, match="scheme 'mmnet' does not take 'chunk_seconds'"):
        config_from_dict({"scheme": {**FLAT, "name": "mmnet", "chunk_seconds": 5.0}})
    # a committed comparison's config, as it was written
    committed = json.loads((RESULTS / "peers" / "results.json").read_text())["config"]
    assert committed["scheme"] == FLAT
    assert config_from_dict(committed).scheme == scheme_parameters("attention-self")


#: the trial fingerprints' scheme part that weaktag wrote for the committed peers comparison
#: (recipes/soundscapes/results/peers/results.json: its config, flat scheme section, and its arms)
OLD_FINGERPRINTS = {
    "attention": {},
    "attention-self": {"alpha": 1.0, "attention_target": "normalized"},
    "attention-self-ext": {"alpha": 1.0, "attention_target": "normalized", "pseudo_threshold": None,
                           "pseudo_quantile": None, "peak_ratio": None, "confidence_gate": None,
                           "pseudo_target": None, "alpha_warmup_epochs": None, "teacher_decay": None,
                           "segment_weight": None},
    "mmnet": {"micro_weight": None, "ensemble_weight": None},
    "mmnet-ms": {"micro_weight": None, "ensemble_weight": None},
    "psl": {"teacher": None, "chunk_seconds": None, "teacher_weight": None},
}


#: schemes whose trials of the committed benchmark are not reused now, and why (the message's part)
CHANGED_SINCE = {
    "mmnet": r"scheme.micro_heads \(4 then, 0 now\)",  # follows the paper and the released code (issue 23)
    "mmnet-ms": r"scheme.micro_heads \(4 then, 0 now\)",
    "psl": r"scheme.teacher_weight \(None then, 1.0 now\)",  # PSL proper: the teacher's labels alone
}


def test_committed_trials_stay_reusable(tmp_path: Path) -> None:
    from weaktag.experiments.trials import TRIAL_FILE, TrialRecord, fingerprint, read_trial

    committed = json.loads((RESULTS / "peers" / "results.json").read_text())
    assert committed["schemes"] == list(OLD_FINGERPRINTS)
    config = config_from_dict(committed["config"])
    for arm, old in OLD_FINGERPRINTS.items():
        now = fingerprint(config, arm)
        if None not in old.values():  # nothing was left to "the scheme's default": the same values, and a key
            # added since (e.g. loss_reduction) holds the scheme's default, which an old trial is taken to have
            assert {k: v for k, v in now["scheme"].items() if k in old} == old, arm
            added = {k: v for k, v in now["scheme"].items() if k not in old}
            assert added == {k: v for k, v in fingerprint(ExperimentConfig(), arm)["scheme"].items()
                             if k in added}, arm
        folder = tmp_path / arm / "seed0"
        folder.mkdir(parents=True)
        record = TrialRecord(scheme=arm, seed=0, trial=0, checkpoint="model.pt", classes=["a"], n_test=1,
                             metrics={"mAP": 0.5}, per_class_ap=[0.5], per_class_auc=[0.5], test_support=[1],
                             fingerprint={**now, "scheme": old}, skipped={}, diagnostics=[],
                             finished="2026-01-01T00:00:00+00:00")
        (folder / TRIAL_FILE).write_text(json.dumps(record.to_json()))
        if arm in CHANGED_SINCE:  # the scheme itself changed: its old trials are not today's
            with pytest.raises(ValueError, match=CHANGED_SINCE[arm]):
                read_trial(folder, arm, 0, now)
            continue
        assert read_trial(folder, arm, 0, now).scheme == arm  # no "made with a different config"
        changed = {**now, "scheme": {**now["scheme"], "class_weight_beta": 0.3}}
        with pytest.raises(ValueError, match="different config"):  # and a real change still counts
            read_trial(folder, arm, 0, changed)
    # an ext trial made with a value other than the default is not taken for one made with the default
    record = json.loads((tmp_path / "attention-self-ext" / "seed0" / TRIAL_FILE).read_text())
    record["fingerprint"]["scheme"]["peak_ratio"] = 0.3
    (tmp_path / "attention-self-ext" / "seed0" / TRIAL_FILE).write_text(json.dumps(record))
    with pytest.raises(ValueError, match=r"scheme.peak_ratio \(0.3 then, 0.5 now\)"):
        read_trial(tmp_path / "attention-self-ext" / "seed0", "attention-self-ext", 0,
                   fingerprint(config, "attention-self-ext"))


def test_default_config_and_dict_round_trip() -> None:
    assert config_from_dict(ExperimentConfig().to_dict()) == ExperimentConfig()
    assert ExperimentConfig().to_dict()["scheme"] == {"name": "attention-self", "class_weight_beta": 0.0,
                                                      "alpha": 1.0, "attention_target": "normalized",
                                                      "loss_reduction": "mean"}


@pytest.mark.parametrize("head", list(HEADS))
def test_every_registered_head_builds_and_repools_its_own_outputs(head: str) -> None:
    config = ModelConfig(3, head=head)
    assert config.attention == HEADS[head].has_attention
    net = HEADS[head].from_config(8, config).eval()
    out = net(torch.randn(2, 8, 7, generator=torch.Generator().manual_seed(0)))
    clip, attention, _ = pool_recording(config, out.segment_probs, pool_inputs(config, out))
    assert torch.allclose(clip, out.clip_probs, atol=1e-6)
    assert (attention is None) == (not HEADS[head].has_attention)
    with pytest.raises(ValueError, match="unknown head 'nope'; choose one of: attention, mean, mmnet, mmnet-ms"):
        ModelConfig(3, head="nope")


def test_a_run_started_before_scheme_dataclasses_can_be_resumed(tmp_path: Path) -> None:
    from weaktag.training.run import resumable_checkpoint, resumable_settings

    config = load_config(None, ["scheme.name=psl", f"output_dir={tmp_path}", "train.max_epochs=3"])
    old = resumable_settings(config)
    old["scheme"] = {**FLAT, "name": "psl"}  # as last.ckpt held it: every scheme's key, None for "default"
    (tmp_path / "checkpoints").mkdir()
    path = tmp_path / "checkpoints" / "last.ckpt"
    torch.save({"state_dict": {}, "epoch": 0, "weaktag": {"experiment": old}}, path)
    assert resumable_checkpoint(config) == path
    changed = load_config(None, ["scheme.name=psl", "scheme.teacher_weight=0.25", f"output_dir={tmp_path}",
                                 "train.max_epochs=3"])
    with pytest.raises(ValueError, match=r"other settings \(scheme.teacher_weight\)"):
        resumable_checkpoint(changed)
