"""Node for the TypeScript client and the Next.js example: where it is, and a fresh build.

``make install`` installs Node (apt-get, only when missing) and the npm packages (``npm ci``
from the committed lock files); the tests need no network. A missing piece is a failure
naming the command that installs it, never a skip.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
CLIENT = ROOT / "clients" / "typescript"
EXAMPLE = ROOT / "examples" / "nextjs"


@dataclass(frozen=True)
class NodeRun:
    code: int
    output: str

    def count(self, what: str) -> int:
        """A number from the node test runner's TAP summary (``# pass 12``)."""
        found = re.findall(rf"^# {what} (\d+)$", self.output, re.MULTILINE)
        return int(found[-1]) if found else -1


def node_binary() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed: run `make install`")
    return node


def tsc(package: Path) -> list[str]:
    """The TypeScript compiler installed in ``package`` by ``npm ci``."""
    compiler = package / "node_modules" / "typescript" / "bin" / "tsc"
    if not compiler.is_file():
        pytest.fail(f"{package.relative_to(ROOT)}: npm packages missing: run `make install`")
    return [node_binary(), str(compiler)]


def run(
    args: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 300
) -> NodeRun:
    done = subprocess.run(
        args,
        cwd=cwd,
        env=env if env is not None else dict(os.environ),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        timeout=timeout,
        check=False,
    )
    output = done.stdout.decode(errors="replace")
    print(output)  # shown by pytest when the test fails
    return NodeRun(done.returncode, output)


def node_test(
    files: list[Path], env: dict[str, str] | None = None, preload: Path | None = None
) -> NodeRun:
    """``node --test`` on ``files`` (TAP output, so the summary can be read)."""
    args = [node_binary(), "--test", "--test-reporter=tap", *map(str, files)]
    if preload is not None:
        args[1:1] = ["--import", preload.as_uri()]
    return run(args, CLIENT, env)


@pytest.fixture(scope="session")
def typescript_client() -> Path:
    """The client compiled from today's sources, once per session: ``npm run build``'s
    script, the ES module build (``dist/esm``) and the CommonJS one (``dist/cjs``)."""
    tsc(CLIENT)  # fails naming `make install` when the npm packages are missing
    build = run([node_binary(), "scripts/build.mjs"], CLIENT)
    assert build.code == 0, f"the build failed on clients/typescript:\n{build.output}"
    return CLIENT


@dataclass(frozen=True)
class ExampleBuild:
    """The Next.js example type-checked and compiled to JavaScript (``check`` is tsc's run)."""

    check: NodeRun
    out: Path


@pytest.fixture(scope="session")
def example_build(
    typescript_client: Path, tmp_path_factory: pytest.TempPathFactory
) -> ExampleBuild:
    """One ``tsc -p examples/nextjs`` per session: the type check, and JavaScript to run."""
    out = tmp_path_factory.mktemp("nextjs-example")
    args = [*tsc(EXAMPLE), "-p", "tsconfig.json", "--noEmit", "false", "--outDir", str(out)]
    check = run(args, EXAMPLE)
    (out / "package.json").write_text('{"type": "module"}\n')
    return ExampleBuild(check, out)


def npm_binary() -> str:
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail("npm is not installed: run `make install`")
    return npm


#: Next asks the network for nothing during a build or a run with its telemetry off.
NEXT_ENV = {"NEXT_TELEMETRY_DISABLED": "1"}


@pytest.fixture(scope="session")
def next_build(typescript_client: Path) -> NodeRun:
    """``npm run build`` in ``examples/nextjs``, once per session, as a fresh clone runs it
    after ``npm ci``: its ``prebuild`` finds the client just built (``typescript_client``)
    and leaves it, then ``next build`` (Turbopack, Next's own type check) writes ``.next/``,
    which ``next start`` serves."""
    if not (EXAMPLE / "node_modules" / "@next" / "swc-linux-x64-gnu").is_dir():
        pytest.fail("examples/nextjs: Next's compiler missing: run `make install` (npm ci)")
    return run([npm_binary(), "run", "build"], EXAMPLE, {**os.environ, **NEXT_ENV}, timeout=600)


def billing_state(url: str, token: str) -> str | None:
    """The ``billing_state`` ingest's ``GET /v1/customers/{id}`` at ``url`` answers (None
    when it has none, or does not answer)."""
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 (loopback)
            state = json.loads(response.read())["billing_state"]
            return str(state) if state else None
    except (urllib.error.URLError, OSError):
        return None
