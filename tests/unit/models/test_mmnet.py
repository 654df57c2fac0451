"""M&mnet and M&mnet-MS (Chou et al. 2018), the Fig. 3 baselines SLAT and PLAT, and per-class loss weights:
each loss against its formula by hand, EP and pyramid shapes, chunked tagging and ONNX parity, training."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

from weaktag.audio import pad_to_segments
from weaktag.checkpoint import load_checkpoint, save_checkpoint
from weaktag.cli import main
from weaktag.batch import Batch
from weaktag.inference import Tagger
from weaktag.inference.export import export_onnx
from weaktag.models import BackboneConfig, MMNetHead, ModelConfig, ModelOutput, WeakTagNet, mmnet_pool
from weaktag.supervision import SCHEMES, bce, class_weights, extrapolated_labels, make_scheme, scheme_parameters

SR = 16_000
CLASSES = ["a", "b", "c"]
M = 4  # MICRO_HEADS, spelt out: the formulas below are written by hand


def _batch(weak: torch.Tensor, t: int) -> Batch:
    b, c = weak.shape
    return Batch(features=torch.zeros(b, 1, t), weak=weak, strong=torch.zeros(b, c, t),
                 has_strong=torch.zeros(b, dtype=torch.bool), clip_ids=[str(i) for i in range(b)])


def _bce(p: float, y: float) -> float:
    return -(y * math.log(p) + (1 - y) * math.log(1 - p))


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


# --------------------------------------------------------------------------- pooling and heads


def test_mmnet_pool_is_eq_6_and_9_by_hand() -> None:
    macro_logits = torch.tensor([[[0.0, 2.0, -1.0], [1.0, 1.0, 1.0]]])  # (1, C=2, T=3)
    d = torch.tensor([[[0.1, 0.8, 0.3], [0.5, 0.2, 0.9]]])
    v = torch.tensor([[[0.0, 1.0, 2.0], [3.0, 0.0, 0.0]]])  # M = 2 heads here
    ens, macro, a, alpha = mmnet_pool(macro_logits, d, v, 0.3)
    soft = [[math.exp(x) / sum(math.exp(y) for y in row) for x in row] for row in v[0].tolist()]
    a_hand = [soft[0][t] + soft[1][t] for t in range(3)]
    alpha_hand = [math.exp(x) / sum(math.exp(y) for y in a_hand) for x in a_hand]
    for c in range(2):
        y_hat = _sigmoid(sum(macro_logits[0, c].tolist()) / 3)
        y_att = sum(alpha_hand[t] * d[0, c, t].item() for t in range(3))
        assert macro[0, c].item() == pytest.approx(y_hat, abs=1e-6)
        assert ens[0, c].item() == pytest.approx(0.3 * y_hat + 0.7 * y_att, abs=1e-6)
    for c in range(2):  # one shared attention, the same row for every class
        assert a[0, c].tolist() == pytest.approx(a_hand, abs=1e-6)
        assert alpha[0, c].tolist() == pytest.approx(alpha_hand, abs=1e-6)
    assert mmnet_pool(macro_logits[0], d[0], v[0], 0.3)[0].tolist() == pytest.approx(ens[0].tolist())  # unbatched


@pytest.mark.parametrize("multiscale", [False, True])
@pytest.mark.parametrize("t", [1, 7, 62, 63])
def test_head_shapes_for_any_length_and_ep_is_mean_pool_then_linear(multiscale: bool, t: int) -> None:
    torch.manual_seed(t)
    head = MMNetHead(6, 3, ensemble_weight=0.5, multiscale=multiscale).train()
    x = torch.randn(2, 6, t)
    out = head(x)
    assert out.segment_probs.shape == out.attention.shape == out.attention_raw.shape == (2, 3, t)
    assert out.clip_probs.shape == out.macro_probs.shape == (2, 3)
    assert out.micro_logits.shape == (2, M, t)
    torch.testing.assert_close(out.attention.sum(dim=-1), torch.ones(2, 3))
    torch.testing.assert_close(out.attention_raw[:, 0].sum(dim=-1), torch.full((2,), float(M)))
    # macro: the paper's "pool over time, then f_cls" with f_cls one linear layer
    w, b = head.macro[0].weight[:, :, 0], head.macro[0].bias
    y_hat = torch.sigmoid(x.mean(dim=-1) @ w.T + b)
    torch.testing.assert_close(out.macro_probs, y_hat, atol=1e-6, rtol=0)
    y_att = (out.attention * out.segment_probs).sum(dim=-1)
    torch.testing.assert_close(out.clip_probs, 0.5 * y_hat + 0.5 * y_att, atol=1e-6, rtol=0)
    half, quarter = math.ceil(t / 2), math.ceil(math.ceil(t / 2) / 2)
    lengths = [t, half, quarter, half, t] if multiscale else [t]
    assert [level[0].shape[-1] for level in out.micro_levels] == lengths
    assert all(level[0].shape[:2] == (2, 3) and level[1].shape == (2, n) for level, n in zip(out.micro_levels, lengths))
    assert len(head.eval()(x).micro_levels) == 1  # the pyramid is training-only supervision


@pytest.mark.parametrize("t", [1, 7, 62])
def test_classwise_micro_attention_has_one_row_per_class_summing_to_one(t: int) -> None:
    torch.manual_seed(t)
    head = MMNetHead(6, 3, ensemble_weight=0.2, heads=2, classwise=True).eval()
    x = torch.randn(2, 6, t)
    out = head(x)
    assert out.micro_logits.shape == (2, 3 * 2, t)
    assert out.attention.shape == out.attention_raw.shape == out.segment_probs.shape == (2, 3, t)
    torch.testing.assert_close(out.attention.sum(dim=-1), torch.ones(2, 3))  # alpha_c = a_c / M
    torch.testing.assert_close(out.attention_raw.sum(dim=-1), torch.full((2, 3), 2.0))  # a_c sums to M
    soft = torch.softmax(out.micro_logits, dim=-1)  # class c's heads are rows c*M .. c*M + M - 1
    torch.testing.assert_close(out.attention_raw[:, 1], soft[:, 2] + soft[:, 3])
    y_att = (out.attention_raw / 2 * out.segment_probs).sum(dim=-1)
    torch.testing.assert_close(out.clip_probs, 0.2 * out.macro_probs + 0.8 * y_att, atol=1e-6, rtol=0)
    if t > 1:  # each class attends on its own
        assert not torch.allclose(out.attention[:, 0], out.attention[:, 1])


def test_the_faithful_head_is_m_equal_k_one_linear_f_det_and_a_deeper_f_cls() -> None:
    torch.manual_seed(0)
    head = MMNetHead(6, 3, heads=0, micro_hidden=0, macro_layers=2).eval()
    assert head.heads == 6 and head.micro.attend.out_channels == 6  # M = K
    assert [type(m).__name__ for m in head.micro.detect] == ["Conv1d"]  # f_det: one linear layer
    assert [type(m).__name__ for m in head.macro] == ["Conv1d", "BatchNorm1d", "ReLU"] * 2 + ["Conv1d"]
    assert head.macro[0].out_channels == 1024
    out = head(torch.randn(2, 6, 9))
    assert out.micro_logits.shape == (2, 6, 9)
    torch.testing.assert_close(out.attention_raw[:, 0].sum(dim=-1), torch.full((2,), 6.0))


def test_old_checkpoint_configs_still_load_and_heads_round_trip() -> None:
    old_attention = {"num_classes": 3, "attention": True, "backbone": {"width": 0.125}}
    old_pool = {"num_classes": 3, "attention": False, "width": 0.125}  # the flat, pre-backbone layout
    assert ModelConfig.from_dict(old_attention).head == "attention"
    assert ModelConfig.from_dict(old_pool).head == "mean" and not ModelConfig.from_dict(old_pool).attention
    config = ModelConfig(3, True, BackboneConfig(width=0.125), head="mmnet-ms", ensemble_weight=0.25)
    again = ModelConfig.from_dict(config.to_dict())
    assert again == config and again.attention and isinstance(WeakTagNet(again).head, MMNetHead)
    with pytest.raises(ValueError, match="unknown head"):
        ModelConfig(3, head="nope")


# --------------------------------------------------------------------------- losses against their formulas


def _hand_mmnet_output(levels: int) -> tuple[ModelOutput, torch.Tensor]:
    torch.manual_seed(1)
    b, c = 2, 3
    weak = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    macro_logits = torch.randn(b, c, 5)
    micro = []
    for t in [5, 3, 2][:levels]:
        logits = torch.randn(b, c, t)
        a = torch.softmax(torch.randn(b, M, t), dim=-1).sum(dim=1)
        micro.append((logits, a / M))  # the head gives a / M, the micro loss's weights
    out = ModelOutput(segment_probs=torch.sigmoid(micro[0][0]), clip_probs=torch.full((b, c), 0.5),
                      macro_logits=macro_logits, micro_levels=micro)
    return out, weak


def _hand_mmnet_loss(out: ModelOutput, weak: torch.Tensor, lam: float, w: list[float]) -> float:
    """Class weights on the positive targets only (negatives weigh 1), as the released code."""
    b, c = weak.shape

    def wt(i: int, k: int) -> float:
        return w[k] if weak[i, k].item() == 1 else 1.0

    macro = sum(wt(i, k) * _bce(_sigmoid(out.macro_logits[i, k].mean().item()), weak[i, k].item())
                for i in range(b) for k in range(c)) / (b * c)
    micro = 0.0
    for logits, a_over_m in out.micro_levels:
        for i in range(b):
            for t in range(logits.shape[-1]):
                xi = sum(wt(i, k) * _bce(_sigmoid(logits[i, k, t].item()), weak[i, k].item()) for k in range(c)) / c
                micro += a_over_m[i, t].item() * xi / b
    return macro + lam * micro


@pytest.mark.parametrize("name, levels", [("mmnet", 1), ("mmnet-ms", 3)])
def test_mmnet_losses_equal_their_formula(name: str, levels: int) -> None:
    out, weak = _hand_mmnet_output(levels)
    scheme = make_scheme(name, scheme_parameters(name, micro_weight=0.7))
    assert scheme.params.class_weight_beta == 0.3  # eq. 11's beta, the paper's value (training sets the weights)
    got = scheme.loss(out, _batch(weak, 5))
    assert got.total.item() == pytest.approx(_hand_mmnet_loss(out, weak, 0.7, [1.0] * 3), rel=1e-5)
    scheme.class_weights = torch.tensor([2.0, 0.5, 1.0])
    weighted = scheme.loss(out, _batch(weak, 5)).total.item()
    assert weighted == pytest.approx(_hand_mmnet_loss(out, weak, 0.7, [2.0, 0.5, 1.0]), rel=1e-5)
    assert weighted != pytest.approx(got.total.item(), rel=1e-3)


def test_classwise_micro_loss_weighs_each_class_by_its_own_attention() -> None:
    torch.manual_seed(5)
    b, c, t = 2, 3, 4
    weak = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    macro_logits, logits = torch.randn(b, c, t), torch.randn(b, c, t)
    w = torch.softmax(torch.randn(b, c, t), dim=-1)  # a_c,t / M: sums to 1 over t per class
    out = ModelOutput(segment_probs=torch.sigmoid(logits), clip_probs=torch.full((b, c), 0.5),
                      macro_logits=macro_logits, micro_levels=[(logits, w)])
    scheme = make_scheme("mmnet-classwise", scheme_parameters("mmnet-classwise", micro_weight=0.5))
    macro = sum(_bce(_sigmoid(macro_logits[i, k].mean().item()), weak[i, k].item())
                for i in range(b) for k in range(c)) / (b * c)
    micro = sum(w[i, k, s].item() * _bce(_sigmoid(logits[i, k, s].item()), weak[i, k].item())
                for i in range(b) for k in range(c) for s in range(t)) / (b * c)
    assert scheme.loss(out, _batch(weak, t)).total.item() == pytest.approx(macro + 0.5 * micro, rel=1e-5)


def test_slat_loss_broadcasts_clip_labels_to_every_segment() -> None:
    torch.manual_seed(2)
    logits = torch.randn(2, 3, 4)
    weak = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]])
    out = ModelOutput(segment_probs=torch.sigmoid(logits), clip_probs=torch.sigmoid(logits).mean(-1),
                      segment_logits=logits)
    hand = sum(_bce(_sigmoid(logits[i, k, t].item()), weak[i, k].item())
               for i in range(2) for k in range(3) for t in range(4)) / 24
    assert make_scheme("slat").loss(out, _batch(weak, 4)).total.item() == pytest.approx(hand, rel=1e-5)


def test_plat_extrapolates_segment_labels_from_the_class_activation_map() -> None:
    xa = torch.tensor([[[0.2, 0.9, 0.5, 0.3], [0.1, 0.4, 0.05, 0.3], [0.6, 0.6, 0.1, 0.29]]])
    weak = torch.tensor([[1.0, 0.0, 1.0]])
    labels = extrapolated_labels(xa, weak)
    # relative CAM > 0.5 for present classes: 0.5/0.9 > 0.5 (in), 0.29/0.6 < 0.5 (out); absent class: 0
    assert labels[0].tolist() == [[0, 1, 1, 0], [0, 0, 0, 0], [1, 1, 0, 0]]
    logits = torch.logit(xa)
    out = ModelOutput(segment_probs=xa, clip_probs=xa.mean(-1), segment_logits=logits)
    pred = sum(_bce(xa[0, k].mean().item(), weak[0, k].item()) for k in range(3)) / 3
    seg = sum(_bce(xa[0, k, t].item(), labels[0, k, t].item()) for k in range(3) for t in range(4)) / 12
    got = make_scheme("plat").loss(out, _batch(weak, 4))
    assert got.total.item() == pytest.approx(pred + seg, rel=1e-5)
    assert got.parts["segment"].item() == pytest.approx(seg, rel=1e-5)


def test_class_weights_on_a_known_label_distribution() -> None:
    # prevalence 1/2, 1/4, 1/4 and a class no clip has: p-bar = 1/3 over the first three
    labels = torch.tensor([[1, 1, 0, 0], [1, 0, 1, 0], [0, 0, 0, 0], [0, 0, 0, 0]], dtype=torch.float32)
    w = class_weights(labels.mean(dim=0), beta=0.3)
    expected = [((1 / 3) / 0.5 * 0.5 / (2 / 3)) ** 0.3, ((1 / 3) / 0.25 * 0.75 / (2 / 3)) ** 0.3,
                ((1 / 3) / 0.25 * 0.75 / (2 / 3)) ** 0.3, 1.0]
    assert w.tolist() == pytest.approx(expected, rel=1e-6)
    assert expected[0] == pytest.approx(0.5 ** 0.3) and expected[1] == pytest.approx(1.5 ** 0.3)
    assert class_weights(labels.mean(dim=0), beta=0.0).tolist() == [1.0] * 4
    # and the weighted BCE is the class-weighted mean, on any scheme
    p, y = torch.tensor([[0.9, 0.2, 0.6, 0.3]]), labels[:1]
    hand = sum(w[k].item() * _bce(p[0, k].item(), y[0, k].item()) for k in range(4)) / 4
    assert bce(p, y, weight=w).item() == pytest.approx(hand, rel=1e-6)
    pool = make_scheme("pool-weak")
    pool.class_weights = w
    out = ModelOutput(segment_probs=p.unsqueeze(-1), clip_probs=p)
    assert pool.loss(out, _batch(y, 1)).total.item() == pytest.approx(hand, rel=1e-6)


def test_peer_schemes_are_registered_with_their_heads() -> None:
    heads = {name: SCHEMES[name].head_kind() for name in ("mmnet", "mmnet-ms", "slat", "plat", "pool-weak",
                                                           "attention")}
    assert heads == {"mmnet": "mmnet", "mmnet-ms": "mmnet-ms", "slat": "mean", "plat": "mean", "pool-weak": "mean",
                     "attention": "attention"}
    assert all(SCHEMES[n].table_i_row is None for n in ("mmnet", "mmnet-ms", "slat", "plat"))
    assert make_scheme("mmnet", scheme_parameters("mmnet", ensemble_weight=1.0)).model_options() == {
        "ensemble_weight": 1.0, "micro_heads": 0, "micro_hidden": 0, "macro_layers": 2}  # M = K, the paper's f_det
    assert make_scheme("mmnet-classwise").model_options() == {
        "ensemble_weight": 0.0, "micro_heads": 4, "micro_hidden": 256, "macro_layers": 0}
    with pytest.raises(ValueError, match=r"scheme.ensemble_weight: 1.5 is above its maximum 1.0 \(allowed: 0.0 to 1.0\)"):
        make_scheme("mmnet", scheme_parameters("mmnet", ensemble_weight=1.5))


# --------------------------------------------------------------------------- tagging and export parity


#: the head options of the paper-following ``mmnet`` (M = K, one linear f_det, f_cls with two hidden layers)
FAITHFUL = {"micro_heads": 0, "micro_hidden": 0, "macro_layers": 2}


def _checkpoint(path: Path, head: str, backbone: BackboneConfig | None = None, options: dict | None = None) -> Path:
    torch.manual_seed(0)
    config = ModelConfig(len(CLASSES), True, backbone or BackboneConfig(width=0.125), head=head, ensemble_weight=0.4,
                         **(options or {}))
    net = WeakTagNet(config)
    with torch.no_grad():  # batch-norm statistics other than the initial ones, so that parity tests see them
        for m in net.head.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    return save_checkpoint(path, net.eval(), CLASSES, head, {}, tag_thresholds=np.full(3, 0.5))


HEAD_VARIANTS = [("mmnet", None), ("mmnet", FAITHFUL), ("mmnet-ms", None), ("mmnet-ms", FAITHFUL),
                 ("mmnet-classwise", None)]


@pytest.mark.parametrize("head, options", HEAD_VARIANTS)
def test_chunked_tagging_equals_a_whole_file_pass(head: str, options: dict | None, tmp_path: Path) -> None:
    ckpt = _checkpoint(tmp_path / "model.pt", head, options=options)
    assert load_checkpoint(ckpt).model.config.micro_heads == (options or {}).get("micro_heads", 4)
    wave = (np.random.default_rng(3).standard_normal(SR * 40) * 0.1).astype(np.float32)
    wave[SR * 12 : SR * 15] *= 8  # something loud for the attention to find
    chunked = Tagger.from_checkpoint(ckpt, chunk_seconds=5.12, chunk_batch=2).tag(wave)
    model = load_checkpoint(ckpt).model.eval()
    with torch.no_grad():
        ref = model(torch.from_numpy(pad_to_segments(wave, model.grid))[None])  # padded as the Tagger pads
    assert chunked.num_segments == ref.num_segments > 3 * 32  # several chunks really
    for name in ("segment_probs", "attention", "attention_raw"):
        np.testing.assert_allclose(getattr(chunked, name), getattr(ref, name)[0].numpy(), atol=1e-5, rtol=0)
    np.testing.assert_allclose(chunked.clip_probs, ref.clip_probs[0].numpy(), atol=1e-5, rtol=0)
    # the ensemble is not the macro prediction alone: the check above covers the re-pooled micro part too
    assert np.abs(ref.clip_probs - ref.macro_probs).max() > 1e-4


@pytest.mark.parametrize("head, backbone, options", [
    ("mmnet", None, None), ("mmnet", None, FAITHFUL), ("mmnet-classwise", None, None),
    ("mmnet-ms", BackboneConfig(backbone="mobilenetv2", width=0.25, l7_channels=64), None)])
def test_onnx_export_and_backend_parity(head: str, backbone: BackboneConfig | None, options: dict | None,
                                        tmp_path: Path) -> None:
    ckpt = _checkpoint(tmp_path / "model.pt", head, backbone, options)
    report = export_onnx(ckpt, tmp_path / "model.onnx")
    assert report.ok, report.max_abs_diff
    wave = (np.random.default_rng(4).standard_normal(SR * 13) * 0.1).astype(np.float32)
    torch_result = Tagger.from_checkpoint(ckpt, chunk_seconds=3.2).tag(wave)
    onnx_result = Tagger.from_checkpoint(tmp_path / "model.onnx", chunk_seconds=3.2).tag(wave)
    for name in ("clip_probs", "segment_probs", "attention", "attention_raw"):
        np.testing.assert_allclose(getattr(onnx_result, name), getattr(torch_result, name), atol=1e-4, rtol=0)


# --------------------------------------------------------------------------- training, tagging, compare


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    from weaktag.synth import SynthConfig, synthesize_splits

    root = tmp_path_factory.mktemp("mmnet-data")
    synthesize_splits(root, {"train": 24, "validation": 12, "test": 12}, SynthConfig(seed=2, clip_seconds=4.0))
    return root


def _config(tmp: Path, data: Path, scheme: dict, model: dict | None = None) -> Path:
    config = {"data": {s: str(data / s / "manifest.jsonl") for s in ("train", "validation", "test")},
              "model": model or {"width": 0.0625, "l7_channels": 64, "batch_norm": True},
              "scheme": scheme,
              "train": {"lr": 1e-3, "batch_size": 8, "max_epochs": 2, "seed": 0, "progress": False,
                        "logger": "none", "accelerator": "cpu", "event_output": "auto"},
              "output_dir": str(tmp / "run")}
    path = tmp / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.parametrize("scheme", [{"name": "mmnet", "class_weight_beta": 0.3}, {"name": "mmnet-ms"},
                                    {"name": "plat"}])
def test_train_then_tag_gives_events(scheme: dict, tiny_data: Path, tmp_path: Path) -> None:
    assert main(["train", "--config", str(_config(tmp_path, tiny_data, scheme))]) == 0
    ckpt = load_checkpoint(tmp_path / "run" / "model.pt")
    assert ckpt.model.config.head == SCHEMES[scheme["name"]].head_kind()
    audio = sorted((tiny_data / "test").rglob("*.wav"))[0]
    result = Tagger(ckpt, event_thresholds=0.0).tag(audio)  # threshold 0: every class fires somewhere
    assert result.events and {e.label for e in result.events} <= set(ckpt.classes)
    assert main(["tag", "--checkpoint", str(tmp_path / "run" / "model.pt"), str(audio), "--out",
                 str(tmp_path / "tags"), "--quiet"]) == 0


def test_mmnet_on_the_frozen_pretrained_backbone_trains_from_cached_features(tiny_data: Path, tmp_path: Path) -> None:
    pytest.importorskip("aisfx")
    model = {"backbone": "aisfx", "freeze": 4, "neck_channels": 16}
    assert main(["train", "--config", str(_config(tmp_path, tiny_data, {"name": "mmnet-ms"}, model))]) == 0
    assert load_checkpoint(tmp_path / "run" / "model.pt").model.config.head == "mmnet-ms"


def test_compare_runs_an_mmnet_arm(tiny_data: Path, tmp_path: Path) -> None:
    from weaktag.config import config_from_dict
    from weaktag.experiments.compare import CompareConfig, run_compare

    config = config_from_dict(yaml.safe_load(_config(tmp_path, tiny_data, {"name": "mmnet"}).read_text()))
    result = run_compare(config, CompareConfig(["pool-weak", "mmnet"], 1), tmp_path / "out", log=None)
    assert len(result.ran) == 2
    assert (tmp_path / "out" / "report.md").exists()


def test_class_weights_take_part_in_every_trial_fingerprint() -> None:
    from weaktag.config import load_config
    from weaktag.experiments.trials import fingerprint

    off, on = load_config(None, []), load_config(None, ["scheme.class_weight_beta=0.3"])
    assert "class_weight_beta" not in fingerprint(off, "attention")["scheme"]  # older trial records still match
    assert fingerprint(on, "attention")["scheme"] == {"class_weight_beta": 0.3}
    mmnet = {"micro_weight": 1.0, "ensemble_weight": 0.5, "micro_heads": 0, "micro_hidden": 0, "macro_layers": 2}
    assert fingerprint(on, "mmnet")["scheme"] == {"class_weight_beta": 0.3, **mmnet}
    # M&mnet's own default (eq. 11's 0.3) is not overridden by another scheme's default (0)
    assert fingerprint(off, "mmnet")["scheme"] == {"class_weight_beta": 0.3, **mmnet}
    assert fingerprint(load_config(None, ["scheme.class_weight_beta=0.5"]), "mmnet")["scheme"][
        "class_weight_beta"] == 0.5  # a value set in the shared config is carried
