import pytest
import torch

from weaktag.geometry import VGGISH_GRID
from weaktag.models import BackboneConfig, ModelConfig, WeakTagNet, num_segments
from weaktag.models.transfer import initialise_from, vggish_to_backbone


@pytest.fixture(scope="module")
def narrow():
    torch.manual_seed(0)
    return WeakTagNet(ModelConfig(num_classes=5, attention=True, backbone=BackboneConfig(width=0.125))).eval()


def test_ten_second_input_gives_62_segments_and_attention_sums_to_one(narrow):
    out = narrow.forward_features(torch.randn(3, 998, 64))
    assert out.segment_probs.shape == (3, 5, 62) == out.attention.shape
    assert torch.allclose(out.attention.sum(-1), torch.ones(3, 5), atol=1e-5)
    assert (out.attention_raw > 0).all()
    # y-hat is the attention-weighted sum of X^a
    assert torch.allclose(out.clip_probs, (out.attention * out.segment_probs).sum(-1), atol=1e-6)


@pytest.mark.parametrize("frames", [1, 15, 16, 100, 998, 3001])
def test_any_length_runs(narrow, frames):
    out = narrow.forward_features(torch.randn(1, frames, 64))
    assert out.num_segments == max(1, num_segments(frames))
    assert torch.allclose(out.attention.sum(-1), torch.ones(1, 5), atol=1e-5)


def test_pooling_head_is_mean_of_segments():
    model = WeakTagNet(ModelConfig(num_classes=4, attention=False, backbone=BackboneConfig(width=0.125))).eval()
    out = model.forward_features(torch.randn(2, 998, 64))
    assert out.attention is None
    assert torch.allclose(out.clip_probs, out.segment_probs.mean(-1))


def test_full_size_parameter_count_matches_paper_scale():
    # Table II: 6.7M (no attention) / 7.3M (attention) for 527 classes
    n_pool = sum(p.numel() for p in WeakTagNet(ModelConfig(527, attention=False)).parameters())
    n_att = sum(p.numel() for p in WeakTagNet(ModelConfig(527, attention=True)).parameters())
    assert 6.3e6 < n_pool < 7.0e6 and 6.9e6 < n_att < 7.6e6


def test_waveform_forward_matches_feature_forward(narrow):
    wave = torch.randn(1, 32000) * 0.1
    a = narrow(wave)
    b = narrow.forward_features(narrow.frontend(wave))
    assert torch.allclose(a.clip_probs, b.clip_probs)
    assert VGGISH_GRID.segment_seconds == pytest.approx(0.16)


def _vggish_port_state_dict() -> dict:
    """A state dict with the names and shapes of the VGGish PyTorch port (features + embeddings)."""
    sd, in_ch = {}, 1
    for index, out_ch in [(0, 64), (3, 128), (6, 256), (8, 256), (11, 512), (13, 512)]:
        sd[f"features.{index}.weight"] = torch.randn(out_ch, in_ch, 3, 3)
        sd[f"features.{index}.bias"] = torch.randn(out_ch)
        in_ch = out_ch
    sd["embeddings.0.weight"] = torch.randn(4096, 512 * 4 * 6)
    sd["embeddings.0.bias"] = torch.randn(4096)
    return sd


def test_vggish_transfer_loads_l1_to_l6(tmp_path):
    sd = _vggish_port_state_dict()
    path = tmp_path / "vggish.pth"
    torch.save(sd, path)
    model = WeakTagNet(ModelConfig(17))
    loaded = initialise_from(model, path)
    assert len(loaded) == 12 and not any("embeddings" in n for n in loaded)
    assert torch.equal(model.backbone.features[11].weight, sd["features.11.weight"])
    assert set(vggish_to_backbone(sd)) == {f"backbone.{k}" for k in sd if k.startswith("features.")}


def test_vggish_transfer_refuses_wrong_width(tmp_path):
    path = tmp_path / "vggish.pth"
    torch.save(_vggish_port_state_dict(), path)
    with pytest.raises(ValueError, match="vggish.pth: backbone.features.0.weight has shape"):
        initialise_from(WeakTagNet(ModelConfig(17, backbone=BackboneConfig(width=0.5))), path)


def test_batch_norm_option_adds_norms_and_keeps_shapes():
    model = WeakTagNet(ModelConfig(3, backbone=BackboneConfig(width=0.125, batch_norm=True))).eval()
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(norms) == 7  # after L1-L6 and L7
    out = model.forward_features(torch.randn(2, 998, 64))
    assert out.segment_probs.shape == (2, 3, 62)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in WeakTagNet(ModelConfig(3)).modules())
