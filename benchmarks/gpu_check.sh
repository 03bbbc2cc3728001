#!/usr/bin/env bash
# On a GPU machine (torch, torchvision, numpy and Pillow are all it needs): the engine's CUDA
# checks, then the engine-vs-tutorial bench on the GPU. Run from the repository root.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHONPATH=. exec python3 -m benchmarks.training --device cuda --check "$@"
