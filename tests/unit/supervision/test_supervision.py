import pytest
import torch

from weaktag.models import BackboneConfig, ModelConfig, ModelOutput, WeakTagNet
from weaktag.errors import ConfigError
from weaktag.supervision import SCHEMES, Batch, make_scheme, pseudo_strong_labels, scheme_parameters


def test_pseudo_labels_follow_eq_1_on_a_hand_built_xa():
    # one clip, 3 classes, 4 segments; classes 0 and 2 present, class 1 absent
    xa = torch.tensor([[[0.9, 0.2, 0.6, 0.1],
                        [0.3, 0.5, 0.1, 0.3],   # absent: theta = mean(0.3, 0.5, 0.1, 0.3) = 0.3
                        [0.3, 0.29, 0.8, 0.0]]])
    weak = torch.tensor([[1.0, 0.0, 1.0]])
    p = pseudo_strong_labels(xa, weak)
    expected = torch.tensor([[[1, 0, 1, 0],
                              [0, 0, 0, 0],      # absent class: always 0
                              [1, 0, 1, 0]]], dtype=torch.float32)  # 0.3 >= theta, 0.29 < theta
    assert torch.equal(p, expected)


def test_pseudo_labels_carry_no_gradient_and_fall_back_when_all_present():
    xa = torch.tensor([[[0.7, 0.4], [0.2, 0.6]]], requires_grad=True)
    p = pseudo_strong_labels(xa, torch.ones(1, 2))
    assert not p.requires_grad
    assert p.tolist() == [[[1.0, 0.0], [0.0, 1.0]]]  # theta = 0.5


def test_theta_is_per_clip():
    xa = torch.tensor([[[0.5, 0.5], [0.1, 0.1]],
                       [[0.5, 0.5], [0.9, 0.9]]])
    weak = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    p = pseudo_strong_labels(xa, weak)
    assert p[0, 0].tolist() == [1.0, 1.0] and p[1, 0].tolist() == [0.0, 0.0]


def _tiny_batch(c: int = 3, t: int = 62) -> Batch:
    g = torch.Generator().manual_seed(0)
    feats = torch.randn(4, 998, 64, generator=g)
    weak = torch.tensor([[1, 0, 0], [0, 1, 0], [1, 0, 1], [0, 0, 1]], dtype=torch.float32)
    strong = torch.zeros(4, c, t)
    strong[0, 0, 10:20] = 1
    strong[1, 1, 30:50] = 1
    strong[2, 0, 0:5] = 1
    strong[2, 2, 40:45] = 1
    strong[3, 2, 20:60] = 1
    # class-specific structure in the features so the loss can fall
    for i in range(4):
        for cls in range(c):
            active = torch.nn.functional.pad(strong[i, cls].repeat_interleave(16), (0, 6)).bool()
            feats[i, active, cls * 20 : cls * 20 + 10] += 3.0
    return Batch(feats, weak, strong, torch.tensor([True, True, True, False]))


#: the loss parts of the peer schemes (M&mnet and the baselines of its Fig. 3), which Table I's columns do not describe
PEER_PARTS = {"mmnet": {"macro", "micro"}, "mmnet-classwise": {"macro", "micro"},
              "mmnet-ms": {"macro", "micro"} | {f"micro_{level}" for level in range(5)},
              "slat": {"segment"}, "plat": {"pred", "segment"}}


@pytest.mark.parametrize("name", list(SCHEMES))
def test_every_scheme_loss_falls_on_a_tiny_batch(name):
    torch.manual_seed(0)
    scheme = make_scheme(name)
    model = WeakTagNet(ModelConfig(3, attention=scheme.uses_attention, backbone=BackboneConfig(width=0.125),
                                   head=scheme.head_kind(), **scheme.model_options()))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    batch = _tiny_batch()
    if scheme.needs_teacher:  # PSL: chunk targets from a teacher, here a softened copy of the clip labels
        batch.teacher = batch.weak * 0.8 + 0.1
    if scheme.needs_teacher_segments:  # distillation: segment targets too, the strong labels softened
        batch.teacher_segments = batch.strong * 0.8 + 0.1
    losses = []
    for _ in range(20):
        terms = scheme.loss(model.forward_features(batch.features), batch)
        opt.zero_grad()
        terms.total.backward()
        opt.step()
        losses.append(terms.total.item())
        expected_parts = {"pred"} if scheme.labels != "strong" else set()
        expected_parts |= {"segment"} if not scheme.uses_attention and "strong" in scheme.labels else set()
        expected_parts |= {"att_strong"} if "strong" in scheme.attention_supervision else set()
        expected_parts |= {"att_self"} if "self" in scheme.attention_supervision else set()
        expected_parts |= {"teacher"} if scheme.needs_teacher else set()
        expected_parts |= {"segments"} if scheme.needs_teacher_segments else set()
        expected_parts = PEER_PARTS.get(name, expected_parts)  # peers name their own terms
        assert set(terms.parts) == expected_parts, name  # the parts follow what the scheme declares
    # the attention terms have a floor well above 0 (A sums to 1 over time), so ask for a clear drop
    assert min(losses[-5:]) < losses[0] - 0.1, losses


def test_strong_terms_ignore_clips_without_strong_labels():
    scheme = make_scheme("attention-strong")
    c, t = 2, 4
    att = torch.full((2, c, t), 0.25)
    out = ModelOutput(segment_probs=torch.full((2, c, t), 0.5), clip_probs=torch.full((2, c), 0.5),
                      attention=att, attention_raw=att)
    strong = torch.zeros(2, c, t)
    strong[1] = 1.0  # garbage on a clip marked as weak-only: must not count
    batch = Batch(torch.zeros(2, 16, 64), torch.zeros(2, c), strong, torch.tensor([True, False]))
    terms = scheme.loss(out, batch)
    expected_att = -torch.log(torch.tensor(0.75))  # BCE(0.25, 0) on every cell of clip 0
    assert torch.allclose(terms.parts["att_strong"], expected_att, atol=1e-5)


def test_strong_self_weak_only_clips_get_only_the_self_term():
    scheme = make_scheme("attention-strong-self")
    out_a = ModelOutput(torch.rand(1, 2, 4), torch.rand(1, 2), torch.full((1, 2, 4), 0.25), torch.rand(1, 2, 4))
    batch = Batch(torch.zeros(1, 16, 64), torch.tensor([[1.0, 0.0]]), torch.ones(1, 2, 4), torch.tensor([False]))
    terms = scheme.loss(out_a, batch)
    p = pseudo_strong_labels(out_a.segment_probs, batch.weak)
    expected_self = -(p * torch.log(torch.tensor(0.25)) + (1 - p) * torch.log(torch.tensor(0.75))).mean()
    assert float(terms.parts["att_strong"]) == 0.0
    assert torch.allclose(terms.parts["att_self"], expected_self, atol=1e-6)


def test_unknown_scheme_lists_the_known_ones():
    with pytest.raises(ValueError, match="attention-self"):
        make_scheme("mode3")


def test_bad_scheme_parameters_fail_when_the_scheme_is_built():
    with pytest.raises(ConfigError, match=r"scheme.attention_target: 'softmax' is not allowed; allowed: normalized, raw"):
        make_scheme("attention-self", scheme_parameters("attention-self", attention_target="softmax"))
    with pytest.raises(ConfigError, match="scheme.alpha: -1.0 is below its minimum 0.0"):
        make_scheme("attention-strong", scheme_parameters("attention-strong", alpha=-1.0))
    with pytest.raises(ConfigError, match="scheme.alpha: inf is not a finite number"):
        make_scheme("attention-strong", scheme_parameters("attention-strong", alpha=float("inf")))
    # a scheme takes only the parameters it declares: plain attention has no attention term to weigh
    assert SCHEMES["attention"].parameters == ()
    with pytest.raises(ConfigError, match=r"scheme.alpha: scheme 'attention' does not take 'alpha' \(taken by "
                       r"attention-strong, attention-self, attention-strong-self, attention-self-ext\)"):
        scheme_parameters("attention", alpha=0.5)
    with pytest.raises(TypeError, match="is built from its AttentionParameters"):
        make_scheme("attention-strong", scheme_parameters("psl"))


#: the paper's Table I columns per row (attention with no / strong / self supervision, strong, weak labels)
TABLE_I = {
    "pool-weak": (False, False, False, False, True),
    "pool-strong": (False, False, False, True, False),
    "pool-weak-strong": (False, False, False, True, True),
    "attention": (True, False, False, False, True),
    "attention-strong": (False, True, False, True, True),
    "attention-self": (False, False, True, False, True),
    "attention-strong-self": (False, True, True, True, True),
    "attention-self-ext": (False, False, True, False, True),  # weaktag's extension of row 6
    "psl": (True, False, False, False, True),  # Dinkel et al.'s student: attention trained on teacher labels
    "teacher-student": (True, False, False, False, True),  # PSL's Table 3 baseline: teacher and clip labels
    "distill": (True, False, False, False, True),  # a teacher's clip and segment outputs on chunks, clip labels
    "mmnet-classwise": (True, False, False, False, True),  # weaktag's M&mnet extension: a micro attention per class
    "mmnet": (True, False, False, False, True),  # peers (Chou et al. 2018): a_t only weighs the micro loss
    "mmnet-ms": (True, False, False, False, True),
    "slat": (False, False, False, False, True),
    "plat": (False, False, False, False, True),
}


def test_schemes_describe_themselves_as_table_i_does():
    assert {name: cls.table_i_marks() for name, cls in SCHEMES.items()} == TABLE_I
    rows = [SCHEMES[n].table_i_row for n in TABLE_I]
    assert rows[:6] == [1, 2, 3, 4, 5, 6] and set(rows[6:]) == {None}  # the rest are not the paper's rows
    assert {n: c.labels for n, c in SCHEMES.items()} == {
        "pool-weak": "weak", "pool-strong": "strong", "pool-weak-strong": "weak+strong", "attention": "weak",
        "attention-strong": "weak+strong", "attention-self": "weak", "attention-strong-self": "weak+strong",
        "attention-self-ext": "weak", "psl": "weak", "teacher-student": "weak", "distill": "weak", "mmnet": "weak", "mmnet-ms": "weak",
        "mmnet-classwise": "weak",
        "slat": "weak", "plat": "weak"}


def test_the_registry_refuses_a_half_described_scheme():
    from weaktag.supervision import register_scheme
    from weaktag.supervision.attention import AttentionScheme

    class Confused(AttentionScheme):
        name = "confused"
        needs_strong = True  # but declares weak labels only

    class Unparametrised(AttentionScheme):
        name = "unparametrised"
        Parameters = dict  # not a SchemeParameters dataclass

    with pytest.raises(TypeError, match="needs strong labels but does not declare them"):
        register_scheme(Confused)
    with pytest.raises(TypeError, match="Parameters .* is not a dataclass deriving from SchemeParameters"):
        register_scheme(Unparametrised)
    with pytest.raises(TypeError, match="name 'attention' is empty or taken"):
        register_scheme(type("Again", (AttentionScheme,), {"name": "attention"}))
    assert "confused" not in SCHEMES and "unparametrised" not in SCHEMES


def test_losses_equal_their_formulas_on_a_hand_built_batch():
    g = torch.Generator().manual_seed(1)
    xa, xb = torch.rand(2, 3, 5, generator=g), torch.rand(2, 3, 5, generator=g)
    att = xb / xb.sum(-1, keepdim=True)
    out = ModelOutput(xa, (att * xa).sum(-1), att, xb)
    weak = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    strong = (torch.rand(2, 3, 5, generator=g) > 0.5).float() * weak.unsqueeze(-1)
    batch = Batch(torch.zeros(2, 16, 64), weak, strong, torch.tensor([True, True]))

    def bce(p, y):
        p = p.clamp(1e-7, 1 - 1e-7)
        return -(y * p.log() + (1 - y) * (1 - p).log()).mean()

    pred = bce(out.clip_probs, weak)
    p = pseudo_strong_labels(xa, weak)
    att_strong, att_self = bce(att, strong), bce(att, p)
    alpha = 0.7
    expected = {"attention": pred, "attention-strong": pred + alpha * att_strong,
                "attention-self": pred + alpha * att_self,
                "attention-strong-self": pred + alpha * (att_strong + att_self),
                }
    for name in ("attention", "attention-strong", "attention-self", "attention-strong-self"):
        params = scheme_parameters(name, **({"alpha": alpha} if "alpha" in SCHEMES[name].parameters else {}))
        total = make_scheme(name, params).loss(out, batch).total
        assert torch.allclose(total, expected[name], atol=1e-6), name
    pooled = ModelOutput(xa, xa.mean(-1))
    assert torch.allclose(make_scheme("pool-weak").loss(pooled, batch).total, bce(xa.mean(-1), weak), atol=1e-6)
    assert torch.allclose(make_scheme("pool-strong").loss(pooled, batch).total, bce(xa, strong), atol=1e-6)
    assert torch.allclose(make_scheme("pool-weak-strong").loss(pooled, batch).total,
                          bce(xa.mean(-1), weak) + bce(xa, strong), atol=1e-6)


def test_loss_reduction_sum_gives_the_attention_terms_the_papers_sum_over_time():
    """scheme.loss_reduction=sum: each attention term is summed over the T segments (the paper's eq.), i.e.
    T times weaktag's mean, while L_pred is unchanged; classes and clips are averaged either way."""
    g = torch.Generator().manual_seed(2)
    segments = 7
    xa, xb = torch.rand(2, 3, segments, generator=g), torch.rand(2, 3, segments, generator=g)
    att = xb / xb.sum(-1, keepdim=True)
    out = ModelOutput(xa, (att * xa).sum(-1), att, xb)
    weak = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    strong = (torch.rand(2, 3, segments, generator=g) > 0.5).float() * weak.unsqueeze(-1)
    batch = Batch(torch.zeros(2, 16, 64), weak, strong, torch.tensor([True, True]))

    def bce_sum_over_time(p, y):  # sum over t, mean over (clip, class)
        p = p.clamp(1e-7, 1 - 1e-7)
        return -(y * p.log() + (1 - y) * (1 - p).log()).sum(-1).mean()

    for name, target in (("attention-strong", strong), ("attention-self", pseudo_strong_labels(xa, weak)),
                         ("attention-self-ext", None)):
        mean = make_scheme(name, scheme_parameters(name, alpha=0.5)).loss(out, batch)
        summed = make_scheme(name, scheme_parameters(name, alpha=0.5, loss_reduction="sum")).loss(out, batch)
        term = "att_strong" if name == "attention-strong" else "att_self"
        assert torch.allclose(summed.parts[term], segments * mean.parts[term], atol=1e-6), name
        assert torch.allclose(summed.parts["pred"], mean.parts["pred"]), name
        assert torch.allclose(summed.total, summed.parts["pred"] + 0.5 * summed.parts[term], atol=1e-6), name
        if target is not None:  # against the formula itself
            assert torch.allclose(summed.parts[term], bce_sum_over_time(att, target), atol=1e-5), name
    with pytest.raises(ConfigError, match="loss_reduction"):
        make_scheme("attention-self", scheme_parameters("attention-self", loss_reduction="total"))
