"""The engine's parts on their own: augmentation, losses, models, optimiser groups, schedule."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from app.worker.training import RunConfig
from app.worker.training.augment import (
    Augmenter,
    colour_jitter,
    mix,
    random_resized_crop_flip,
    random_translate,
)
from app.worker.training.loop import epoch_order, parameter_groups, train_batches, warmup_cosine
from app.worker.training.losses import CrossEntropy, FocalLoss, balanced_weights, build_loss
from app.worker.training.models import Block, SmallCNN, build

# ---------------------------------------------------------------- augmentation


def test_translate_crops_each_image_of_the_padded_batch_at_its_own_offset() -> None:
    x = torch.arange(2 * 3 * 6 * 6, dtype=torch.float32).reshape(2, 3, 6, 6)
    generator = torch.Generator().manual_seed(3)
    out = random_translate(x, 2, generator)
    offsets = torch.randint(0, 5, (2, 2), generator=torch.Generator().manual_seed(3))
    padded = F.pad(x, (2, 2, 2, 2), mode="reflect")
    for i in range(2):
        dy, dx = int(offsets[0, i]), int(offsets[1, i])
        assert torch.equal(out[i], padded[i, :, dy : dy + 6, dx : dx + 6])


def test_resized_crop_keeps_shape_and_an_identity_crop_is_exact(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    x = torch.rand(4, 3, 8, 8) * 255
    out = random_resized_crop_flip(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    from app.worker.training import augment

    monkeypatch.setattr(augment, "CROP_SCALE", (1.0, 1.0))
    monkeypatch.setattr(augment, "CROP_RATIO", (1.0, 1.0))
    same = augment.random_resized_crop_flip(x, torch.Generator().manual_seed(0), flip=False)
    assert torch.allclose(same, x, atol=1e-3)


def test_colour_jitter_stays_in_range_and_changes_images() -> None:
    x = torch.rand(16, 3, 4, 4) * 255
    out = colour_jitter(x.clone(), torch.Generator().manual_seed(0))
    assert out.min() >= 0 and out.max() <= 255
    assert not torch.allclose(out, x)


@pytest.mark.parametrize(("mixup", "cutmix"), [(0.4, 0.0), (0.0, 1.0), (0.4, 1.0)])
def test_mixing_gives_targets_that_match_the_pixels(mixup: float, cutmix: float) -> None:
    x = torch.stack([torch.full((3, 8, 8), float(i)) for i in range(4)])
    labels = torch.tensor([0, 1, 2, 3])
    mixed, soft = mix(x, labels, 4, mixup, cutmix, torch.Generator().manual_seed(5))
    assert torch.allclose(soft.sum(1), torch.ones(4))
    for i in range(4):
        partner = (i - 1) % 4
        # Each image is a blend of itself and its neighbour, in the targets' proportions.
        expected = soft[i, i] * i + soft[i, partner] * partner
        assert mixed[i].mean() == pytest.approx(float(expected), abs=1e-4)


def test_augmenter_is_repeatable_from_its_generators_and_normalises() -> None:
    images = torch.randint(0, 256, (8, 3, 8, 8), dtype=torch.uint8)
    labels = torch.arange(8) % 2

    def batch(seed: int) -> torch.Tensor:
        augmenter = Augmenter(
            "strong",
            hflip=True,
            mean=(0.5,) * 3,
            std=(0.25,) * 3,
            device=torch.device("cpu"),
            generator=torch.Generator().manual_seed(seed),
            mix_generator=torch.Generator().manual_seed(seed),
            num_classes=2,
        )
        return augmenter.train_batch(images, labels)[0]

    assert torch.equal(batch(1), batch(1))
    assert not torch.equal(batch(1), batch(2))
    plain = Augmenter(
        "none",
        hflip=False,
        mean=(0.5,) * 3,
        std=(0.25,) * 3,
        device=torch.device("cpu"),
        generator=torch.Generator(),
        mix_generator=torch.Generator(),
        num_classes=2,
    )
    expected = (images.float() / 255 - 0.5) / 0.25
    assert torch.allclose(plain.normalize(images), expected, atol=1e-5)


# ---------------------------------------------------------------- losses


def test_weighted_cross_entropy_is_torch_with_balanced_weights() -> None:
    counts = [30, 10, 5]
    weights = balanced_weights(counts)
    assert weights.tolist() == pytest.approx([45 / 90, 45 / 30, 45 / 15])
    logits, targets = torch.randn(12, 3), torch.randint(0, 3, (12,))
    loss = build_loss("weighted_ce", counts, label_smoothing=0.1)
    assert loss(logits, targets) == pytest.approx(
        float(F.cross_entropy(logits, targets, weight=weights, label_smoothing=0.1))
    )


def test_focal_loss_with_gamma_zero_is_cross_entropy_and_focuses_otherwise() -> None:
    logits, targets = torch.randn(20, 4), torch.randint(0, 4, (20,))
    plain = FocalLoss(0.0, torch.ones(4), smoothing=0.1)(logits, targets)
    assert plain == pytest.approx(
        float(F.cross_entropy(logits, targets, label_smoothing=0.1)), rel=1e-5
    )
    # γ = 2 by hand: −(1 − p_t)² log p_t, averaged.
    log_p = F.log_softmax(logits, 1)[torch.arange(20), targets]
    by_hand = -((1 - log_p.exp()) ** 2 * log_p).mean()
    assert FocalLoss(2.0, torch.ones(4))(logits, targets) == pytest.approx(float(by_hand), rel=1e-5)
    # α = 1 uses the class weights; soft targets (MixUp) are accepted.
    alpha = build_loss("focal", [4, 1, 1, 2], focal_alpha=1.0, focal_gamma=0.0)
    expected = F.cross_entropy(
        logits, F.one_hot(targets, 4).float() * balanced_weights([4, 1, 1, 2]), reduction="mean"
    )
    assert alpha(logits, targets) == pytest.approx(float(expected), rel=1e-5)
    soft = torch.softmax(torch.randn(20, 4), 1)
    assert torch.isfinite(alpha(logits, soft))


def test_cross_entropy_accepts_soft_targets() -> None:
    logits, soft = torch.randn(5, 3), torch.softmax(torch.randn(5, 3), 1)
    assert CrossEntropy()(logits, soft) == pytest.approx(float(F.cross_entropy(logits, soft)))


# ---------------------------------------------------------------- models


@pytest.mark.parametrize("downsample", ["maxpool", "avgpool", "strided"])
def test_smallcnn_switches(downsample: str) -> None:
    plain = SmallCNN(5, width=8, depth=2, batch_norm=False, residual=False, downsample=downsample)
    assert plain(torch.randn(2, 3, 16, 16)).shape == (2, 5)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in plain.modules())
    assert sum(isinstance(m, Block) for m in plain.modules()) == 6
    pools = {"maxpool": nn.MaxPool2d, "avgpool": nn.AvgPool2d, "strided": nn.Identity}
    if downsample == "strided":
        assert plain.stage2[0].body[0].stride == (2, 2)
    else:
        assert isinstance(plain.stage2[0], pools[downsample])
    residual = SmallCNN(5, width=8, residual=True, downsample=downsample)
    blocks = [m for m in residual.modules() if isinstance(m, Block)]
    assert all(b.residual for b in blocks)
    assert isinstance(blocks[1].shortcut, nn.Sequential)  # 8 → 16 channels: a 1×1 projection


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["resnet18", "mobilenet_v3_small", "efficientnet_b0"])
def test_torchvision_models_get_a_head_for_the_data_classes(arch: str) -> None:
    net = build(RunConfig.from_dict({"model": arch}), 7)
    net.model.eval()
    assert net.model(torch.randn(1, 3, 32, 32)).shape == (1, 7)
    head_params = {id(p) for p in net.head.parameters()}
    stage_params = {id(p) for _, stage in net.stages for p in stage.parameters()}
    assert not head_params & stage_params
    assert head_params | stage_params == {id(p) for p in net.model.parameters()}


# ---------------------------------------------------------------- optimisation


def test_no_weight_decay_on_norms_and_biases_and_a_backbone_multiplier() -> None:
    config = RunConfig.from_dict({"weight_decay": 0.1, "lr": 0.01, "backbone_lr_mult": 0.1})
    net = build(config, 3)
    groups = parameter_groups(net, config)
    for group in groups:
        if group["weight_decay"] > 0:
            assert all(p.ndim > 1 for p in group["params"])
        else:
            assert all(p.ndim == 1 for p in group["params"])
    head = {id(p) for p in net.head.parameters()}
    for group in groups:
        in_head = {id(p) in head for p in group["params"]}
        assert len(in_head) == 1
        assert group["lr"] == pytest.approx(0.01 if in_head.pop() else 0.001)
    norm_biases = [m.bias for m in net.model.modules() if isinstance(m, nn.BatchNorm2d)]
    undecayed = {id(p) for g in groups if g["weight_decay"] == 0 for p in g["params"]}
    assert {id(p) for p in norm_biases} <= undecayed


def test_warmup_then_cosine_matches_the_formula() -> None:
    factor = warmup_cosine(1000, 10_000)
    assert factor(0) == pytest.approx(1 / 1000)
    assert factor(999) == pytest.approx(1.0)
    assert factor(5500) == pytest.approx(0.5)  # question 11's worked example: 5e-4 of 1e-3
    assert factor(10_000) == pytest.approx(0.0)
    assert warmup_cosine(0, 10)(0) == pytest.approx(1.0)
    assert warmup_cosine(0, 10)(5) == pytest.approx(0.5 * (1 + math.cos(math.pi / 2)))


def test_balanced_sampling_draws_each_class_about_equally() -> None:
    labels = torch.tensor([0] * 900 + [1] * 90 + [2] * 10)
    order = epoch_order(labels, "balanced", torch.Generator().manual_seed(0), [900, 90, 10])
    drawn = torch.bincount(labels[order], minlength=3).float() / len(order)
    assert torch.allclose(drawn, torch.full((3,), 1 / 3), atol=0.05)
    shuffled = epoch_order(labels, "shuffle", torch.Generator().manual_seed(0), [900, 90, 10])
    assert sorted(shuffled.tolist()) == list(range(1000))


def test_batches_drop_the_last_partial_batch_and_resume_mid_epoch() -> None:
    images = torch.randint(0, 256, (10, 3, 4, 4), dtype=torch.uint8)
    labels = torch.arange(10)
    augmenter = Augmenter(
        "none",
        hflip=False,
        mean=(0.0,) * 3,
        std=(1.0,) * 3,
        device=torch.device("cpu"),
        generator=torch.Generator(),
        mix_generator=torch.Generator(),
        num_classes=10,
    )
    order = torch.randperm(10, generator=torch.Generator().manual_seed(0))
    batches = list(train_batches(images, labels, order, 3, augmenter))
    assert [b[2].tolist() for b in batches] == [order[i : i + 3].tolist() for i in (0, 3, 6)]
    later = list(train_batches(images, labels, order, 3, augmenter, start_step=2))
    assert [b[2].tolist() for b in later] == [order[6:9].tolist()]
    small = list(train_batches(images[:2], labels[:2], torch.arange(2), 8, augmenter))
    assert len(small) == 1 and len(small[0][2]) == 2  # fewer images than a batch: one batch
