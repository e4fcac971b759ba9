"""The code location's image (Dockerfile): built with the machine's container builder, it serves mlcicd.definitions over
gRPC (`dagster api grpc-health-check` answers inside it), `dg check defs` passes in it, and it runs as a non-root user.

Needs a container builder that can pull the base image and run a container (podman, buildah's podman, or docker). Where
there is none, or it cannot run a container here, the test skips and says what failed: a sandbox may forbid what
containers need (setrlimit, cgroups) and a machine may have no route to the base image's registry."""

import os
import shutil
import subprocess
import sys
import time
import uuid

import pytest

from .conftest import REPO

pytestmark = pytest.mark.slow
BASE = "docker.io/library/python:3.11-slim"


def builder() -> str:
    """The first builder that can pull the base image and run a container here; skips with the reason otherwise."""
    tried = []
    for name in ("podman", "docker"):
        if shutil.which(name) is None:
            tried.append(f"{name}: not installed")
            continue
        pulled = subprocess.run([name, "pull", "-q", BASE], capture_output=True, text=True, timeout=600)
        if pulled.returncode != 0:
            tried.append(f"{name} cannot pull {BASE}: {pulled.stderr.strip().splitlines()[-1][:300]}")
            continue
        ran = subprocess.run([name, "run", "--rm", BASE, "python", "-c", "print('ok')"], capture_output=True, text=True, timeout=300)
        if ran.stdout.strip() != "ok":
            tried.append(f"{name} cannot run a container here: {ran.stderr.strip().splitlines()[-1][:300]}")
            continue
        return name
    pytest.skip("no container builder works on this machine (" + "; ".join(tried) + ")")


def test_the_image_serves_the_code_location_as_a_non_root_user():
    tool = builder()
    tag = f"localhost/mlcicd-test:{uuid.uuid4().hex[:8]}"
    name = f"mlcicd-grpc-{uuid.uuid4().hex[:8]}"
    built = subprocess.run([tool, "build", "-t", tag, "--build-arg", f"BASE={BASE}", str(REPO)], capture_output=True, text=True, timeout=2400)
    assert built.returncode == 0, built.stderr[-3000:]
    try:
        assert subprocess.run([tool, "run", "--rm", "--entrypoint", "id", tag, "-u"], capture_output=True, text=True).stdout.strip() == "10001"
        checked = subprocess.run([tool, "run", "--rm", "--entrypoint", "dg", tag, "check", "defs"], capture_output=True, text=True, timeout=600)
        assert checked.returncode == 0, checked.stdout[-2000:] + checked.stderr[-2000:]
        subprocess.run([tool, "run", "-d", "--name", name, tag], check=True, capture_output=True, timeout=120)
        deadline, health = time.monotonic() + 180, None
        while time.monotonic() < deadline:
            health = subprocess.run([tool, "exec", name, "dagster", "api", "grpc-health-check", "--port", "3030"], capture_output=True, text=True)
            if health.returncode == 0:
                break
            time.sleep(3)
        logs = subprocess.run([tool, "logs", name], capture_output=True, text=True).stderr[-2000:]
        assert health is not None and health.returncode == 0, f"the code server never answered: {health and health.stderr}\n{logs}"
    finally:
        subprocess.run([tool, "rm", "-f", name], capture_output=True)
        subprocess.run([tool, "rmi", "-f", tag], capture_output=True)


def test_the_files_the_image_copies_are_all_the_code_location_needs(tmp_path):
    """Runs everywhere, builder or not: the files the Dockerfile's COPY lines take, alone in a folder, make a code
    location that loads (the check that a file the code needs at run time was not left out of the image)."""
    copied = tmp_path / "opt-mlcicd"
    copied.mkdir()
    for line in (REPO / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY "):
            *sources, _ = line.split()[1:]
            for source in sources:
                target = copied / source
                (shutil.copytree if (REPO / source).is_dir() else shutil.copy)(REPO / source, target)
    assert (copied / "mlcicd" / "definitions.py").exists() and (copied / "requirements.lock").exists()
    env = {**os.environ, "PYTHONPATH": str(copied), "DAGSTER_HOME": str(copied)}
    env.pop("MLCICD_CONFIG", None)
    code = "import mlcicd, sys; assert mlcicd.__file__.startswith(sys.argv[1]), mlcicd.__file__; from mlcicd.definitions import defs; " \
           "d = defs(); print(len(d.resolve_all_asset_specs()))"
    loaded = subprocess.run([sys.executable, "-c", code, str(copied)], cwd=copied, env=env, capture_output=True, text=True, timeout=300)
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    assert int(loaded.stdout.strip().splitlines()[-1]) > 30, "every model's assets load from the copied files alone"
    validated = subprocess.run([sys.executable, "-m", "mlcicd.cli", "validate"], cwd=copied, env=env, capture_output=True, text=True, timeout=300)
    assert validated.returncode == 0, "every model's config and contract are in the image: " + validated.stdout[-2000:] + validated.stderr[-2000:]
