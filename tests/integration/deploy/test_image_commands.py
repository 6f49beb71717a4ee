"""The image runs every command: the wheel is built as deploy/Dockerfile builds it (the same
COPY lines, the same ``pip wheel`` line), installed as the Dockerfile installs it
(requirements.lock with ``--require-hashes``, no dev extra, then the wheel ``--no-deps``)
into a fresh virtual environment; every ``paystream`` command answers ``--help``, and every
long-running one started from that environment with the production overlay's environment
answers 200 on its readiness path; the stand-ins (``devstack/``) are not in it.

Unlike the Dockerfile, pip keeps its cache (``--no-cache-dir`` dropped from the install
lines) so a re-run takes seconds, not minutes: the cache changes no installed file. The
sinks' metrics store is a ClickHouse server in production (chdb, the embedded one, is a dev
extra and so not in the image): ``CLICKHOUSE_URL`` points at a port nothing listens on, and
the metrics sink retries, which must not stop the process from serving its probes.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from paystream.command_help import COMMANDS
from paystream.runtime.broker import free_port
from tests.integration.deploy.test_manifests_run import (
    DEPLOY,
    LONG_RUNNING,
    PORT_SETTINGS,
    args,
    overrides,
    pod_env,
    start,
    stop,
    wait_ready,
)
from tests.unit.deploy.kustomize import build

ROOT = DEPLOY.parent
DOCKERFILE = DEPLOY / "Dockerfile"


def build_stage() -> tuple[list[tuple[str, str]], str]:
    """The build stage's COPY (source, destination) pairs and its ``pip wheel`` command."""
    stage = re.split(r"^FROM ", DOCKERFILE.read_text(), flags=re.MULTILINE)[1]
    copies = re.findall(r"^COPY (.+) (\S+)$", stage, re.MULTILINE)
    pairs = [(src, dst) for sources, dst in copies for src in sources.split()]
    (wheel,) = re.findall(r"^RUN (pip wheel .+)$", stage, re.MULTILINE)
    return pairs, wheel


def test_the_dockerfile_build_stage_is_what_this_test_reads() -> None:
    pairs, wheel = build_stage()
    assert ("admin", "./admin") in pairs and ("pyproject.toml", "./") in pairs
    assert wheel == "pip wheel --no-cache-dir --no-deps --wheel-dir /wheels ."


@pytest.fixture(scope="module")
def image_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment holding what the image holds; about 20 s with pip's cache."""
    root = tmp_path_factory.mktemp("image")
    src, wheels, venv = root / "src", root / "wheels", root / "venv"
    src.mkdir()
    pairs, wheel = build_stage()
    for source, dst in pairs:
        target = src / dst / Path(source).name if dst.endswith("/") else src / dst
        if (ROOT / source).is_dir():
            shutil.copytree(
                ROOT / source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
            )
        else:
            shutil.copy(ROOT / source, target)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "--quiet", "--disable-pip-version-check"]
    command = wheel.replace("/wheels", str(wheels)).split()[1:]
    subprocess.run([*pip, *command], cwd=src, check=True)
    lock = ["install", "--require-hashes", "-r", str(ROOT / "requirements.lock")]
    subprocess.run([*pip, *lock], check=True)
    (built,) = wheels.glob("paystream-*.whl")
    subprocess.run([*pip, "install", "--no-deps", str(built)], check=True)
    return venv


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_answers_help(image_venv: Path, command: str, tmp_path: Path) -> None:
    if importlib.util.find_spec(COMMANDS[command].module) is None:
        # named in paystream/command_help.py, its module not written yet (in this tree either)
        pytest.skip(f"{COMMANDS[command].module} is not in the work tree yet")
    done = subprocess.run(
        [str(image_venv / "bin" / "paystream"), command, "--help"],
        cwd=tmp_path,  # not the work tree: nothing imported from it
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert f"paystream {command}" in done.stdout


def test_the_image_has_no_dev_dependency(image_venv: Path) -> None:
    found = subprocess.run(
        [str(image_venv / "bin" / "python"), "-m", "pip", "list", "--format=freeze"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.lower()
    assert not {"chdb", "pytest", "hypothesis"} & {line.split("==")[0] for line in found.split()}


def test_the_image_has_no_stand_ins(image_venv: Path, tmp_path: Path) -> None:
    """``devstack/`` ships with the source checkout only: ``up`` there, when it needs a
    stand-in, says so in one line (exit 2) before starting anything."""
    python = str(image_venv / "bin" / "python")
    clean = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    found = subprocess.run(
        [python, "-c", "import importlib.util as u; print(u.find_spec('devstack'))"],
        cwd=tmp_path,  # not the work tree: nothing imported from it
        env=clean,
        capture_output=True,
        text=True,
        check=True,
    )
    assert found.stdout.strip() == "None"
    up = subprocess.run(
        [str(image_venv / "bin" / "paystream"), "up"],
        cwd=tmp_path,
        env={
            **clean,
            "PAYSTREAM_ENV": "development",
            "PAYSTREAM_SINK_WRITES": "enabled",
            # external broker and store: the dev extra (not in the image) is not what stops it
            "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}",
            "CLICKHOUSE_URL": f"http://127.0.0.1:{free_port()}/paystream",
            "PAYSTREAM_DATA_DIR": str(tmp_path / "var"),
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert up.returncode == 2, up.stderr
    [line] = up.stderr.splitlines()
    assert line.startswith("paystream up: ") and "ship with the source checkout" in line


def test_every_long_running_command_starts_from_the_image(
    image_venv: Path, kafka_bootstrap: str, tmp_path: Path
) -> None:
    docs = build(DEPLOY / "k8s" / "overlays" / "production")
    config: dict[str, str] = next(d for d in docs if d["kind"] == "ConfigMap")["data"]
    common = overrides(kafka_bootstrap, tmp_path, f"i{uuid.uuid4().hex[:8]}.")
    common["CLICKHOUSE_URL"] = f"http://paystream:{'p' * 32}@127.0.0.1:{free_port()}/paystream"
    program = (str(image_venv / "bin" / "paystream"),)
    job = next(d for d in docs if d["kind"] == "Job")
    env = {**pod_env(job, config), **common}
    env.pop("KAFKA_SASL_MECHANISM")
    topics = start(args(job), env, tmp_path / "topics.log", program)
    assert topics.wait(timeout=60) == 0, (tmp_path / "topics.log").read_text()
    procs: dict[str, tuple[subprocess.Popen[bytes], str]] = {}
    workloads: list[dict[str, Any]] = [d for d in docs if d["kind"] in LONG_RUNNING]
    try:
        for doc in workloads:
            name = doc["metadata"]["name"]
            (data := tmp_path / name).mkdir()
            port = free_port()
            env = {**pod_env(doc, config), **common, PORT_SETTINGS[name]: str(port)}
            env.update(PAYSTREAM_DATA_DIR=str(data), CLICKHOUSE_URL=common["CLICKHOUSE_URL"])
            env.pop("KAFKA_SASL_MECHANISM")
            probe = doc["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]
            url = f"http://127.0.0.1:{port}{probe['httpGet']['path']}"
            procs[name] = (start(args(doc), env, data / "out.log", program), url)
        wait_ready(procs, tmp_path)
    finally:
        stop(procs)
