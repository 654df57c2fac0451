"""Batches mixing labelled and unlabelled clips: fixed proportion, every rank its share, rank-independent."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import pytest
import torch

from helpers import learnable_features
from weaktag.data import FeatureSet, WithUnlabeled
from weaktag.supervision import SCHEMES
from weaktag.training.sampling import GlobalBatchSampler

N_LABELED, N_UNLABELED = 20, 7


def _samplers(batch_size: int, world: int, **kwargs) -> list[GlobalBatchSampler]:
    has_strong = [i % 3 == 0 for i in range(N_LABELED)]
    return [GlobalBatchSampler(has_strong, batch_size, seed=4, rank=r, world_size=world, num_unlabeled=N_UNLABELED,
                               unlabeled_fraction=0.5, **kwargs) for r in range(world)]


def _epoch(samplers: list[GlobalBatchSampler], epoch: int) -> list[list[list[int]]]:
    for s in samplers:
        s.set_epoch(epoch)
    return [list(s) for s in samplers]


def test_each_global_batch_holds_labelled_and_unlabelled_clips_in_the_fixed_proportion_at_one_and_two_ranks():
    one, two = _samplers(8, 1), _samplers(4, 2)
    for epoch in (0, 1, 5):
        [single], split = _epoch(one, epoch), _epoch(two, epoch)
        assert len(single) == len(split[0]) == len(split[1]) == len(one[0]) == len(two[0]) == 5  # 20 labelled / 4
        for b, batch in enumerate(single):
            assert sorted(batch) == sorted(split[0][b] + split[1][b])  # the same global batch
            labeled = [i for i in batch if i < N_LABELED]
            assert len(labeled) == 4 and len(batch) - len(labeled) == 4  # half of 8 unlabelled
            for part in split:  # every rank its share of both
                assert sum(i < N_LABELED for i in part[b]) == 2 and sum(i >= N_LABELED for i in part[b]) == 2
        assert sorted(i for batch in single for i in batch if i < N_LABELED) == list(range(N_LABELED))


def test_unlabelled_clips_are_drawn_cyclically_across_epochs_and_depend_only_on_seed_and_epoch():
    [sampler] = _samplers(8, 1)
    drawn = [i for epoch in range(7) for batch in _epoch([sampler], epoch)[0] for i in batch if i >= N_LABELED]
    # 7 epochs x 5 batches x 4 = 140 draws of 7 clips: 20 permutations, every clip 20 times
    assert Counter(drawn) == {N_LABELED + j: 20 for j in range(N_UNLABELED)}
    assert drawn[:N_UNLABELED] != sorted(drawn[:N_UNLABELED])  # shuffled
    again = _epoch([sampler], 3)[0]
    fresh = _samplers(8, 1)
    assert _epoch(fresh, 3)[0] == again  # a resumed run draws the same


def test_without_unlabelled_clips_the_batches_are_todays():
    has_strong = [i % 3 == 0 for i in range(N_LABELED)]
    today = GlobalBatchSampler(has_strong, 8, seed=4, rank=0, world_size=1)
    zero = GlobalBatchSampler(has_strong, 8, seed=4, rank=0, world_size=1, num_unlabeled=0, unlabeled_fraction=0.5)
    assert list(today) == list(zero)


def test_a_short_last_batch_keeps_the_proportion_and_a_batch_without_room_is_refused():
    has_strong = [False] * 10
    [sampler] = [GlobalBatchSampler(has_strong, 8, seed=0, rank=0, world_size=1, num_unlabeled=3,
                                    unlabeled_fraction=0.5)]
    sizes = [(sum(i < 10 for i in b), sum(i >= 10 for i in b)) for b in sampler]
    assert sizes == [(4, 4), (4, 4), (2, 2)]
    too_small = GlobalBatchSampler(has_strong, 2, seed=0, rank=0, world_size=2, num_unlabeled=3,
                                   unlabeled_fraction=0.75)
    with pytest.raises(ValueError, match="labelled clips for 2 devices"):
        list(too_small)


def test_mixed_batches_mark_their_unlabelled_clips_whose_labels_are_zeros():
    labeled = learnable_features(4, 1, strong_every=1)
    raw = learnable_features(3, 2)
    unlabeled = FeatureSet([replace(c, labels=frozenset(), events=None) for c in raw.clips], raw.classes,
                           raw.features)
    batch = WithUnlabeled(labeled, unlabeled).collate([1, 5, 0, 6])
    assert batch.labeled.tolist() == [True, True, False, False]  # labelled first
    assert batch.clip_ids == [labeled.clips[1].clip_id, labeled.clips[0].clip_id, unlabeled.clips[1].clip_id,
                              unlabeled.clips[2].clip_id]
    assert torch.equal(batch.features[2], unlabeled.features[1])
    assert not batch.weak[2:].any() and not batch.has_strong[2:].any() and batch.has_strong[:2].all()
    assert batch.labeled_part().clip_ids == batch.clip_ids[:2]


def _mixed_batch():
    labeled = learnable_features(4, 1, strong_every=1)
    raw = learnable_features(3, 2)
    unlabeled = FeatureSet([replace(c, labels=frozenset(), events=None) for c in raw.clips], raw.classes, raw.features)
    return WithUnlabeled(labeled, unlabeled).collate([0, 1, 2, 3, 4, 5, 6])


@pytest.mark.filterwarnings("ignore:You are trying to `self.log\\(\\)`")  # a module outside a Trainer
@pytest.mark.parametrize("name", [n for n, cls in SCHEMES.items() if not cls.needs_teacher])
def test_every_schemes_loss_reads_the_labelled_clips_and_the_consistency_all(name):
    from weaktag.models import BackboneConfig, ModelConfig, WeakTagNet
    from weaktag.supervision import make_scheme
    from weaktag.supervision.mean_teacher import MeanTeacherConfig, consistency_loss, output_rows
    from weaktag.training.module import WeakTagModule

    torch.manual_seed(0)
    scheme = make_scheme(name)
    # no batch norm: a clip's outputs do not depend on the others in its batch
    model = WeakTagNet(ModelConfig(3, scheme.uses_attention, BackboneConfig(width=0.0625, batch_norm=False),
                                   head=scheme.head_kind(), **scheme.model_options()))
    module = WeakTagModule(model, scheme, 1e-3, ["a", "b", "c"], mean_teacher=MeanTeacherConfig(weight=2.0))
    module.on_train_epoch_start()  # makes the teacher: a copy of the network
    with torch.no_grad():
        for p in module.teacher.parameters():
            p.add_(0.01)  # a teacher that differs, so that the consistency term is not 0
    batch = _mixed_batch()
    total = module.training_step(batch, 0)
    out, teacher = model.forward_features(batch.features), module.teacher.forward_features(batch.features)
    labeled = batch.labeled_part()
    supervised = scheme.loss(output_rows(out, batch.labeled), labeled, teacher=output_rows(teacher, batch.labeled))
    consistency = consistency_loss(out, teacher)
    assert float(consistency.detach()) > 0
    torch.testing.assert_close(total, supervised.total + 2.0 * consistency)
    # the unlabelled clips' (zero) label rows are not read: other values there change nothing
    poisoned = replace(batch, weak=torch.where(batch.labeled[:, None], batch.weak, 1.0),
                       strong=torch.where(batch.labeled[:, None, None], batch.strong, 1.0),
                       has_strong=batch.has_strong | ~batch.labeled)
    torch.testing.assert_close(module.training_step(poisoned, 0), total)


@pytest.mark.filterwarnings("ignore:You are trying to `self.log\\(\\)`")  # a module outside a Trainer
@pytest.mark.parametrize("teacher_dropout", [False, True])
def test_the_teacher_runs_with_its_own_dropout_only_when_asked(teacher_dropout):
    from weaktag.models import BackboneConfig, ModelConfig, WeakTagNet
    from weaktag.models.neck import NeckConfig
    from weaktag.supervision import make_scheme
    from weaktag.supervision.mean_teacher import MeanTeacherConfig
    from weaktag.training.module import WeakTagModule

    torch.manual_seed(0)
    model = WeakTagNet(ModelConfig(3, True, BackboneConfig(width=0.0625, batch_norm=False),
                                   NeckConfig(channels=16, kind="gru", dropout=0.3))).train()
    config = MeanTeacherConfig(weight=1.0, teacher_dropout=teacher_dropout)
    module = WeakTagModule(model, make_scheme("attention"), 1e-3, ["a", "b", "c"], mean_teacher=config)
    module.on_train_epoch_start()
    batch = _mixed_batch()
    dropouts = [m for m in module.teacher.modules() if isinstance(m, torch.nn.Dropout)]
    seen: list[bool] = []
    for dropout in dropouts:
        dropout.register_forward_hook(lambda m, *_: seen.append(m.training))
    module.training_step(batch, 0)
    assert dropouts and seen and set(seen) == {teacher_dropout}
