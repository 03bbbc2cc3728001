"""Data sets: shapes, digits, CIFAR-10 from its batch files, splits, long tails, the cache."""

from __future__ import annotations

import functools
import hashlib
import pickle
import tarfile
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import torch

from app.cli import main
from app.worker.errors import InvalidInput
from app.worker.training import RunConfig
from app.worker.training.data import channel_stats, cifar10, load_data, long_tail, shapes

CPU = torch.device("cpu")


def test_shapes_are_drawn_repeatably_from_their_seed() -> None:
    # (How fast: `make bench` times 10,000 images at 32 px.)
    images, labels = shapes.generate(10, 50, 32, seed=7)
    assert images.shape == (500, 3, 32, 32) and images.dtype == np.uint8
    assert np.bincount(labels).tolist() == [50] * 10
    again, _ = shapes.generate(10, 50, 32, seed=7)
    assert np.array_equal(images, again)
    other, _ = shapes.generate(10, 50, 32, seed=8)
    assert not np.array_equal(images, other)
    assert images.std() > 40  # varied colours, not flat images


def test_shape_classes_differ_in_their_outline_not_their_colour() -> None:
    images, labels = shapes.generate(4, 200, 32, seed=0)
    per_class_mean = [images[labels == c].mean() for c in range(4)]
    assert max(per_class_mean) - min(per_class_mean) < 12  # brightness does not give it away


@pytest.mark.parametrize(
    ("name", "inside", "outside"),
    [
        ("circle", [(0, 0), (0.8, 0)], [(0.9, 0), (0.7, 0.7)]),
        ("ring", [(0.7, 0), (0, -0.7)], [(0, 0), (0.95, 0)]),
        ("square", [(0.9, 0), (0.45, 0.45)], [(0.6, 0.6), (1.05, 0)]),  # vertices on the axes
        ("star", [(0.9, 0), (0.3, 0.2)], [(0.6 * 0.809, 0.6 * 0.588)]),  # between two points
        ("cross", [(0.8, 0), (0, -0.8)], [(0.5, 0.5)]),
        ("crescent", [(-0.6, 0)], [(0.45, 0), (0, 0)]),
        ("semicircle", [(0, -0.5)], [(0, 0.5)]),
    ],
)
def test_each_outline_is_where_its_definition_puts_it(
    name: str, inside: list[tuple[float, float]], outside: list[tuple[float, float]]
) -> None:
    points = torch.tensor(inside + outside, dtype=torch.float32)
    distance = shapes._distance(name, points[:, 0], points[:, 1])
    assert (distance[: len(inside)] < 0).all() and (distance[len(inside) :] > 0).all()


def test_split_is_stratified_and_the_long_tail_applies_to_training_only(tmp_path: Path) -> None:
    config = RunConfig.from_dict(
        {"num_classes": 4, "images_per_class": 50, "image_size": 8, "imbalance_ratio": 10}
    )
    data = load_data(config, tmp_path, CPU)
    assert data.info["val_counts"] == {c: 10 for c in data.classes}
    # n_c · 10^(−c/3) of the 40 training images of each class.
    assert list(data.info["train_counts"].values()) == [40, 19, 9, 4]
    assert data.train_images.dtype == torch.uint8 and data.train_images.shape[1:] == (3, 8, 8)
    assert len(data.train_images) == len(data.train_labels) == 72
    assert data.info["cache"] == "decoded"
    again = load_data(config, tmp_path, CPU)
    assert again.info["cache"] == "hit" and again.train_images.equal(data.train_images)


def test_long_tail_keeps_at_least_one_image_per_class() -> None:
    labels = np.repeat(np.arange(3), 5)
    kept = long_tail(labels, 3, 1000.0)
    assert np.bincount(labels[kept]).tolist() == [5, 1, 1]


def test_channel_stats_match_numpy() -> None:
    images = torch.randint(0, 256, (20, 3, 5, 5), dtype=torch.uint8)
    mean, std = channel_stats(images, chunk=7)
    pixels = images.numpy().astype(np.float64) / 255
    assert mean == pytest.approx(pixels.mean(axis=(0, 2, 3)).tolist())
    assert std == pytest.approx(pixels.std(axis=(0, 2, 3)).tolist())


def test_digits_are_upsampled_to_three_channels_without_flips(tmp_path: Path) -> None:
    from sklearn.datasets import load_digits

    config = RunConfig.from_dict({"dataset": "digits", "image_size": 16, "val_fraction": 0.25})
    data = load_data(config, tmp_path, CPU)
    total = len(data.train_labels) + len(data.val_labels)
    assert total == len(load_digits().target) == 1797
    assert data.classes == [str(d) for d in range(10)]
    assert data.hflip is False
    assert data.train_images.shape[1:] == (3, 16, 16)
    assert torch.equal(data.train_images[:, 0], data.train_images[:, 2])  # grey in RGB
    capped = load_data(config.replace(images_per_class=20, num_classes=3), tmp_path, CPU)
    assert capped.classes == ["0", "1", "2"]
    assert sum(capped.info["train_counts"].values()) + sum(capped.info["val_counts"].values()) == 60


def write_cifar(folder: Path, per_batch: int = 4, seed: int = 0) -> dict[str, np.ndarray]:
    """A tiny CIFAR-10 in the python-version format: pickled dicts of numpy arrays."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    names = [
        b"airplane",
        b"automobile",
        b"bird",
        b"cat",
        b"deer",
        b"dog",
        b"frog",
        b"horse",
        b"ship",
        b"truck",
    ]
    with (folder / "batches.meta").open("wb") as handle:
        pickle.dump({b"label_names": names, b"num_vis": 3072}, handle, protocol=2)
    arrays = {}
    for name in [*cifar10.TRAIN_FILES, cifar10.VAL_FILE]:
        data = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, per_batch)]
        with (folder / name).open("wb") as handle:
            pickle.dump(
                {b"data": data, b"labels": labels, b"batch_label": name.encode()},
                handle,
                protocol=2,
            )
        arrays[name] = data
    return arrays


def test_cifar10_is_read_from_its_python_batches(tmp_path: Path) -> None:
    arrays = write_cifar(tmp_path / "datasets" / cifar10.FOLDER)
    config = RunConfig.from_dict({"dataset": "cifar10", "num_classes": 0, "images_per_class": 0})
    data = load_data(config, tmp_path, CPU)
    assert data.classes[:3] == ["airplane", "automobile", "bird"]
    assert len(data.train_labels) == 20 and len(data.val_labels) == 4
    # Pixels arrive in the layout the format defines: 1024 red, 1024 green, 1024 blue values.
    val_sorted = sorted(data.val_images.reshape(4, -1).tolist())
    assert val_sorted == sorted(arrays["test_batch"].tolist())
    resized = load_data(config.replace(image_size=16), tmp_path, CPU)
    assert resized.train_images.shape[1:] == (3, 16, 16)


def test_a_cifar_batch_that_would_run_code_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "datasets" / cifar10.FOLDER
    write_cifar(folder)

    class Exploit:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return (print, ("pwned",))

    (folder / "data_batch_1").write_bytes(pickle.dumps({b"data": Exploit()}))
    config = RunConfig.from_dict({"dataset": "cifar10", "num_classes": 0})
    with pytest.raises(pickle.UnpicklingError, match="not allowed"):
        load_data(config, tmp_path, CPU)


def test_cifar10_missing_names_the_folder_and_the_fetch_command(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput) as error:
        cifar10.check_present(tmp_path)
    assert error.value.field == "dataset"
    assert "cvprep data fetch cifar10" in str(error.value) and str(tmp_path) in str(error.value)


@pytest.fixture
def http_folder(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A folder served over HTTP on 127.0.0.1, as a download mirror would serve it."""
    folder = tmp_path / "mirror"
    folder.mkdir()
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(folder))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_data_fetch_downloads_checks_and_unpacks_the_archive(
    tmp_path: Path,
    http_folder: tuple[Path, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    mirror, base_url = http_folder
    write_cifar(tmp_path / "made" / cifar10.FOLDER)
    archive = mirror / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "made" / cifar10.FOLDER, arcname=cifar10.FOLDER)
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    data_dir = tmp_path / "data"
    monkeypatch.setenv("DATA_DIR", str(data_dir))
    url = f"{base_url}/{archive.name}"
    assert main(["data", "fetch", "cifar10", "--url", url, "--md5", md5]) == 0
    assert "CIFAR-10 is in" in capsys.readouterr().out
    assert cifar10.check_present(data_dir).is_dir()
    assert not list((data_dir / "datasets").glob("*.tar.gz"))  # the archive is removed
    config = RunConfig.from_dict({"dataset": "cifar10", "num_classes": 0})
    assert len(load_data(config, data_dir, CPU).val_labels) == 4
    # A corrupted download (wrong checksum) is an error, exit code 1.
    assert main(["data", "fetch", "cifar10", "--url", url, "--md5", "0" * 32]) == 1
    assert "Download failed" in capsys.readouterr().err
