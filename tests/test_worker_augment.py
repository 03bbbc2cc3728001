"""Augmentation gallery (app.worker.augment): seeded, reproducible, and the code shown reproduces it."""

from __future__ import annotations

import threading

import pytest
import torch
from torchvision.transforms import v2

from app.worker.augment import AugmentSpec, augment, augment_batch
from app.worker.errors import InvalidInput
from app.worker.images import PHOTO_NAMES, sample_photo

PHOTOS = [(name, sample_photo(name)) for name in PHOTO_NAMES]
FULL = AugmentSpec(seed=7, views=6, size=96, randaugment=True, num_ops=3, magnitude=12)


def _same(first, second) -> bool:  # type: ignore[no-untyped-def]
    return all(torch.equal(a, b) for a, b in zip(first.views, second.views, strict=True))


def test_the_same_seed_gives_the_same_views() -> None:
    assert _same(augment_batch(PHOTOS, FULL), augment_batch(PHOTOS, FULL))
    first, second = augment(PHOTOS, FULL), augment(PHOTOS, FULL)
    assert [view.uri for view in first.views] == [view.uri for view in second.views]


def test_another_seed_gives_other_views() -> None:
    other = AugmentSpec(**{**FULL.__dict__, "seed": 8})
    assert not _same(augment_batch(PHOTOS, FULL), augment_batch(PHOTOS, other))


def test_views_are_reproducible_while_other_threads_draw_random_numbers() -> None:
    expected = augment_batch(PHOTOS, FULL)
    stop = threading.Event()

    def noise() -> None:
        while not stop.is_set():
            torch.rand(64)

    thread = threading.Thread(target=noise)
    thread.start()
    try:
        for _ in range(3):
            assert _same(augment_batch(PHOTOS, FULL), expected)
    finally:
        stop.set()
        thread.join()


def test_the_global_generator_is_left_as_it_was() -> None:
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    augment_batch(PHOTOS, FULL)
    assert torch.equal(torch.random.get_rng_state(), before)


@pytest.mark.parametrize("mix", ["none", "mixup", "cutmix"])
def test_the_code_shown_reproduces_the_gallery(mix: str) -> None:
    spec = AugmentSpec(**{**FULL.__dict__, "mix": mix, "views": 4})
    batch = augment_batch(PHOTOS, spec)
    namespace = {"photos": dict(PHOTOS)}
    exec(augment(PHOTOS, spec).code, namespace)
    assert all(torch.equal(a, b) for a, b in zip(namespace["views"], batch.views, strict=True))
    if mix != "none":
        assert torch.equal(namespace["images"], batch.mixed)
        assert torch.equal(namespace["soft_labels"], batch.soft_labels)


def test_mixup_labels_are_the_blend_weights_of_neighbouring_images() -> None:
    batch = augment_batch(PHOTOS, AugmentSpec(seed=3, views=4, size=64, mix="mixup"))
    assert batch.soft_labels is not None and batch.mixed is not None
    weight = float(batch.soft_labels[0, 0])  # view 0 is astronaut (class 0), mixed with view 3
    assert batch.soft_labels[0, 3] == pytest.approx(1 - weight)
    floats = torch.stack([view.float() / 255 for view in batch.views])
    blended = floats[0] * weight + floats[3] * (1 - weight)
    assert torch.allclose(batch.mixed[0], blended, atol=1e-5)


def test_cutmix_labels_are_the_pasted_area() -> None:
    batch = augment_batch(PHOTOS, AugmentSpec(seed=5, views=4, size=64, mix="cutmix"))
    assert batch.soft_labels is not None and batch.mixed is not None
    floats = v2.ToDtype(torch.float32, scale=True)(torch.stack(batch.views))
    pasted = (batch.mixed[1] != floats[1]).any(dim=0)  # view 1 got a box from view 0
    assert batch.soft_labels[1, 0] == pytest.approx(float(pasted.float().mean()), abs=0.02)
    assert torch.allclose(batch.soft_labels.sum(dim=1), torch.ones(4))


def test_gallery_labels_show_the_mixed_proportions() -> None:
    gallery = augment(PHOTOS, AugmentSpec(seed=1, views=3, size=64, mix="mixup"))
    for view in gallery.views:
        assert len(view.labels) == 2
        assert sum(weight for _, weight in view.labels) == pytest.approx(1, abs=1e-3)
        assert view.labels[0][1] >= view.labels[1][1]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"seed": -1}, "seed"),
        ({"views": 0}, "views"),
        ({"views": 13}, "views"),
        ({"size": 8}, "size"),
        ({"scale_min": 0.9, "scale_max": 0.5}, "scale_min"),
        ({"flip": 1.5}, "flip"),
        ({"brightness": -0.1}, "brightness"),
        ({"hue": 0.6}, "hue"),
        ({"num_ops": 11}, "num_ops"),
        ({"magnitude": 31}, "magnitude"),
        ({"mix": "blend"}, "mix"),
        ({"alpha": 0}, "alpha"),
        ({"alpha": float("nan")}, "alpha"),
    ],
)
def test_bad_settings_name_the_field(changes: dict, field: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        augment(PHOTOS, AugmentSpec(**changes))
    assert raised.value.field == field
