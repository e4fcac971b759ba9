"""The code location's image (Dockerfile): built with the machine's container builder, it serves mlcicd.definitions over
gRPC (`dagster api grpc-health-check` answers inside it), `dg check defs` passes in it, and it runs as a non-root user.

Needs a container builder that can run a container (podman, or docker) and a base image: the Dockerfile's default,
python:3.11-slim from Docker Hub, or where Docker Hub is out of reach, the same kind of base made from Debian's packages
by deploy/image/debian-python-base.sh (needs root and debootstrap; made once, then reused). Where neither works, the
test skips and says what failed. `.ci/run` installs podman and debootstrap and, on a machine whose cgroup v2 hierarchy
holds controllers beside v1 (which crun refuses), mounts those controllers on v1, and sets MLCICD_REQUIRE_CONTAINERS=1,
which turns the skip into a failure, so in CI the image is built and checked."""

import json
import os
import resource
import shutil
import subprocess
import sys
import time

import pytest

from .conftest import REPO

pytestmark = pytest.mark.slow
OFFICIAL_BASE = "docker.io/library/python:3.11-slim"
DEBIAN_BASE = "localhost/mlcicd-python:3.11-slim"
TAG = "localhost/mlcicd-test:latest"  # one tag, kept: the next build reuses its requirements layer


def limits() -> list[str]:
    """--ulimit flags for builds and containers: 16384 open files and 32768 processes, or this process's own hard limit
    if lower. An engine's defaults (for root: 1048576 open files) can be more than a sandboxed machine lets a process
    set, and the runtime then refuses to start the container (crun: setrlimit: Operation not permitted)."""
    flags = []
    for name, which, wanted in (("nofile", resource.RLIMIT_NOFILE, 16384), ("nproc", resource.RLIMIT_NPROC, 32768)):
        hard = resource.getrlimit(which)[1]
        value = wanted if hard == resource.RLIM_INFINITY else min(hard, wanted)
        flags += ["--ulimit", f"{name}={value}:{value}"]
    return flags


def last_line(result: subprocess.CompletedProcess) -> str:
    return ((result.stderr or result.stdout).strip().splitlines() or ["(no output)"])[-1][:300]


def base_image(tool: str, tried: list[str]) -> str | None:
    """The official base if it can be pulled; else the Debian-made one (made here if missing); None if neither."""
    pulled = subprocess.run([tool, "pull", "-q", OFFICIAL_BASE], capture_output=True, text=True, timeout=600)
    if pulled.returncode == 0:
        return OFFICIAL_BASE
    tried.append(f"{tool} cannot pull {OFFICIAL_BASE}: {last_line(pulled)}")
    if subprocess.run([tool, "image", "inspect", DEBIAN_BASE], capture_output=True).returncode == 0:
        return DEBIAN_BASE
    if shutil.which("debootstrap") is None or os.geteuid() != 0:
        tried.append("no base made from Debian's packages either (needs root and debootstrap)")
        return None
    made = subprocess.run([str(REPO / "deploy" / "image" / "debian-python-base.sh"), DEBIAN_BASE], env={**os.environ, "BUILDER": tool},
                          capture_output=True, text=True, timeout=1200)
    if made.returncode != 0:
        tried.append(f"deploy/image/debian-python-base.sh failed: {last_line(made)}")
        return None
    return DEBIAN_BASE


def builder() -> tuple[str, str]:
    """The first (builder, base image) that can run a container here; skips with the reasons otherwise."""
    tried: list[str] = []
    for tool in ("podman", "docker"):
        if shutil.which(tool) is None:
            tried.append(f"{tool}: not installed")
            continue
        base = base_image(tool, tried)
        if base is None:
            continue
        ran = subprocess.run([tool, "run", "--rm", *limits(), base, "python", "-c", "print('ok')"], capture_output=True, text=True, timeout=300)
        if ran.stdout.strip() != "ok":
            tried.append(f"{tool} cannot run a container here: {last_line(ran)}")
            continue
        return tool, base
    reason = "no container builder works on this machine (" + "; ".join(tried) + ")"
    if os.environ.get("MLCICD_REQUIRE_CONTAINERS") == "1":
        pytest.fail(f"MLCICD_REQUIRE_CONTAINERS=1 but {reason}")
    pytest.skip(reason)


@pytest.mark.starts_first  # building the image takes minutes the first time (its requirements layer is then reused)
def test_the_image_serves_the_code_location_as_a_non_root_user():
    tool, base = builder()
    name = f"mlcicd-grpc-{os.getpid()}"
    keep_healthcheck = ["--format", "docker"] if tool == "podman" else []  # the OCI format has no HEALTHCHECK
    built = subprocess.run([tool, "build", *keep_healthcheck, *limits(), "-t", TAG, "--build-arg", f"BASE={base}", str(REPO)],
                           capture_output=True, text=True, timeout=2400)
    assert built.returncode == 0, f"building on {base}: " + built.stderr[-3000:]
    run = [tool, "run", "--rm", *limits()]
    try:
        image = json.loads(subprocess.run([tool, "image", "inspect", TAG], capture_output=True, text=True, check=True).stdout)[0]
        healthcheck = image.get("Healthcheck") or image.get("Config", {}).get("Healthcheck") or {}  # podman's place, docker's
        assert "grpc-health-check" in healthcheck.get("Test", []), f"the image has no gRPC health check: {healthcheck}"
        assert subprocess.run([*run, "--entrypoint", "id", TAG, "-u"], capture_output=True, text=True).stdout.strip() == "10001"
        checked = subprocess.run([*run, "--entrypoint", "dg", TAG, "check", "defs"], capture_output=True, text=True, timeout=600)
        assert checked.returncode == 0, checked.stdout[-2000:] + checked.stderr[-2000:]
        assert "All definitions loaded successfully" in checked.stdout + checked.stderr
        subprocess.run([tool, "run", "-d", *limits(), "--name", name, TAG], check=True, capture_output=True, timeout=120)
        deadline, health = time.monotonic() + 180, None
        while time.monotonic() < deadline:
            health = subprocess.run([tool, "exec", name, "dagster", "api", "grpc-health-check", "--port", "3030"], capture_output=True, text=True)
            if health.returncode == 0:
                break
            time.sleep(3)
        shown = subprocess.run([tool, "logs", name], capture_output=True, text=True)
        logs = (shown.stdout + shown.stderr)[-2000:]
        assert health is not None and health.returncode == 0, f"the code server never answered: {health and health.stderr}\n{logs}"
        assert "mlcicd.definitions" in logs, logs
    finally:
        subprocess.run([tool, "rm", "-f", name], capture_output=True)


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
