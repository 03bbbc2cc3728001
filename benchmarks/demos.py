"""Demo latency over HTTP beside the bare worker call in this process: the ratio is the web's cost.

Requests go one at a time over one keep-alive connection to `cvprep serve`, so each figure is
the latency a user sees, with nothing queued in front of it. The bare call runs the same
function with the same inputs here, without HTTP, validation models, templates or the thread
hop. Aims (from the issue): the conv API under 5 ms p50, the ResNet-50 summary under 300 ms.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from app.settings import Settings
from app.worker.augment import AugmentSpec, augment
from app.worker.images import PHOTO_NAMES, sample_photo
from app.worker.layer_spec import LayerSpec
from app.worker.layers import compute_layer
from app.worker.pooling import EXAMPLE_GRID, PoolingSpec, pooling_demo
from app.worker.runtime import configure_threads
from app.worker.summary import summarize_architecture
from benchmarks.load import running_server

CONV_BODY = {
    "in_channels": 64,
    "height": 56,
    "width": 56,
    "out_channels": 128,
    "kernel_size": 3,
    "stride": 2,
    "padding": 1,
    "bias": False,
}
GALLERY_QUERY = "photo=astronaut&seed=0&views=8&size=224&randaugment=true&mix=mixup"
HTMX = {"HX-Request": "true"}


@dataclass(frozen=True)
class Timing:
    samples_ms: tuple[float, ...]

    @property
    def p50(self) -> float:
        return statistics.median(self.samples_ms)

    @property
    def p99(self) -> float:
        ordered = sorted(self.samples_ms)
        return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


def timed(call: Callable[[], object], runs: int, warmup: int = 3) -> Timing:
    for _ in range(warmup):
        call()
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        samples.append((time.perf_counter() - start) * 1000)
    return Timing(tuple(samples))


def _checked(response: httpx.Response) -> httpx.Response:
    response.raise_for_status()
    return response


def _bare_calls() -> dict[str, Callable[[], object]]:
    photos = [(name, sample_photo(name)) for name in PHOTO_NAMES]
    gallery = AugmentSpec(seed=0, views=8, size=224, randaugment=True, mix="mixup")
    return {
        "conv API": lambda: compute_layer(LayerSpec("conv2d", **CONV_BODY)),  # type: ignore[arg-type]
        "ResNet-50 summary": lambda: summarize_architecture("resnet50", 224, 224),
        "pooling view, 256 px photo": lambda: pooling_demo(
            sample_photo("astronaut"), EXAMPLE_GRID, PoolingSpec(2)
        ),
        "gallery, 8 views": lambda: augment(photos, gallery),
    }


def _web_calls(client: httpx.Client) -> dict[str, Callable[[], object]]:
    return {
        "conv API": lambda: _checked(client.post("/api/shapes/conv", json=CONV_BODY)),
        "ResNet-50 summary": lambda: _checked(
            client.post("/api/shapes/model", json={"arch": "resnet50"})
        ),
        "pooling view, 256 px photo": lambda: _checked(
            client.get("/demos/pooling?photo=astronaut&kernel=2", headers=HTMX)
        ),
        "gallery, 8 views": lambda: _checked(
            client.get(f"/demos/augmentation?{GALLERY_QUERY}", headers=HTMX)
        ),
    }


RUNS = {
    "conv API": 400,
    "ResNet-50 summary": 30,
    "pooling view, 256 px photo": 40,
    "gallery, 8 views": 30,
}
AIMS_MS = {"conv API": 5.0, "ResNet-50 summary": 300.0}


def main(data_dir: Path) -> None:
    # The same torch thread setting as the server's worker threads, for a fair bare call.
    configure_threads(Settings().demo_threads)
    bare = {name: timed(call, RUNS[name]) for name, call in _bare_calls().items()}
    with (
        running_server(data_dir) as base_url,
        httpx.Client(base_url=base_url, timeout=60) as client,
    ):
        web = {name: timed(call, RUNS[name]) for name, call in _web_calls(client).items()}

    print("\nDemos: one request at a time over HTTP beside the bare worker call in this process")
    print(
        f"{'':<28} {'HTTP p50':>10} {'HTTP p99':>10} {'bare p50':>10} {'bare p99':>10} {'ratio':>7}"
    )
    for name in RUNS:
        ratio = web[name].p50 / bare[name].p50
        print(
            f"{name:<28} {web[name].p50:8.2f}ms {web[name].p99:8.2f}ms "
            f"{bare[name].p50:8.2f}ms {bare[name].p99:8.2f}ms {ratio:6.1f}x"
        )
    for name, aim in AIMS_MS.items():
        verdict = "meets" if web[name].p50 < aim else "MISSES"
        print(f"{name} p50 {web[name].p50:.1f} ms over HTTP: {verdict} the {aim:g} ms aim")


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory(prefix="cvprep-bench-") as tmp:
        main(Path(tmp))
