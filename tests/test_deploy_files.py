"""The Dockerfile and compose.yaml, checked without a container engine: hadolint lints the
Dockerfile, `docker-compose config` validates and resolves the compose file, and what it
resolves to is checked against the app's own command line and settings."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from app.cli import build_parser
from app.settings import ROOT, Settings


def tool(name: str) -> str:
    found = shutil.which(
        name, path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    )
    if found is None:
        pytest.fail(f"{name} is not installed (`make test` installs it: see the Makefile)")
    return found


def test_the_dockerfile_passes_hadolint() -> None:
    done = subprocess.run(
        [tool("hadolint"), "--no-color", "Dockerfile"], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0 and done.stdout == "", done.stdout + done.stderr


@pytest.fixture(scope="module")
def compose() -> dict:
    done = subprocess.run(
        [tool("docker-compose"), "-f", "compose.yaml", "--profile", "gpu", "config"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "POSTGRES_PASSWORD"},
    )
    assert done.returncode == 0, done.stderr
    return yaml.safe_load(done.stdout)


def test_compose_runs_web_workers_redis_and_postgres_from_the_one_dockerfile(
    compose: dict,
) -> None:
    services = compose["services"]
    assert set(services) == {"web", "worker", "worker-gpu", "redis", "postgres"}
    ours = {name: services[name] for name in ("web", "worker", "worker-gpu")}
    for service in ours.values():
        assert Path(service["build"]["context"]) == ROOT
        assert service.get("build", {}).get("dockerfile", "Dockerfile") == "Dockerfile"
        assert "data:/data:rw" in service["volumes"]  # the runs' files, shared
        env = service["environment"]
        assert env["JOBS_BACKEND"] == "celery" and env["REDIS_URL"] == "redis://redis:6379/0"
        assert env["DATABASE_URL"].startswith("postgresql+psycopg://cvprep:cvprep@postgres:5432/")
        # Every variable is one of the app's settings, with a value it accepts.
        known = {field.validation_alias for field in Settings.model_fields.values()}
        assert set(env) <= known
        Settings(**env)
        # The command is one the app's command line accepts.
        assert service["command"][0] == "cvprep"
        build_parser().parse_args(service["command"][1:])
    assert ours["web"]["build"]["args"]["BASE"] == "cpu"
    assert ours["worker"]["command"][1] == "worker"
    assert ours["web"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert ours["web"]["depends_on"]["redis"]["condition"] == "service_healthy"


def test_the_gpu_worker_builds_on_cuda_and_reserves_a_gpu(compose: dict) -> None:
    gpu = compose["services"]["worker-gpu"]
    assert gpu["profiles"] == ["gpu"] and gpu["build"]["args"]["BASE"] == "cuda"
    [device] = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"]
    assert device["device_ids"] == ["0"]
    args = build_parser().parse_args(gpu["command"][1:])
    assert args.gpu == "0" and args.concurrency == 1
