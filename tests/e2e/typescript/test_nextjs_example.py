"""The Next.js example (``examples/nextjs``) type-checks against the built client and Next's
own types, and its pure parts (the billing view, the onboarding steps) pass their tests.

``npm run build`` (``next build``, Turbopack) builds it as a fresh clone would, after ``npm
ci``; the browser test (``test_billing_journey.py``) serves that build with ``next start``.
One compiler run does the type check and the views' tests (the ``example_build`` fixture):
``tsc -p`` checks the whole example (route handlers, pages, client component) and emits
JavaScript into a temporary directory, from which ``node --test`` runs
``examples/nextjs/test/example.test.mjs``. The route handlers run against the real services
in ``test_client.py``.
"""

from __future__ import annotations

import json
import os

from tests.e2e.typescript.conftest import EXAMPLE, ExampleBuild, NodeRun, node_test

#: Every page and route handler of the example, as ``next build`` lists them.
ROUTES = (
    "/",
    "/billing",
    "/billing/portal",
    "/onboarding",
    "/api/paystream/billing-state",
    "/api/paystream/notifications",
    "/api/paystream/onboarding",
)


def test_nextjs_example_type_checks_and_its_views_have_no_dead_end(
    example_build: ExampleBuild,
) -> None:
    assert example_build.check.code == 0, (
        f"examples/nextjs does not type-check:\n{example_build.check.output}"
    )
    result = node_test(
        [EXAMPLE / "test" / "example.test.mjs"],
        {**os.environ, "PAYSTREAM_EXAMPLE_BUILD": str(example_build.out)},
        EXAMPLE / "test" / "register.mjs",
    )
    assert result.code == 0, "node --test failed on the example (output above)"
    assert (result.count("fail"), result.count("skipped")) == (0, 0)
    assert result.count("pass") == 11


def test_nextjs_example_builds_with_next_as_shipped(next_build: NodeRun) -> None:
    assert next_build.code == 0, f"`npm run build` failed in examples/nextjs:\n{next_build.output}"
    assert "Module not found" not in next_build.output
    manifest = json.loads((EXAMPLE / ".next" / "app-path-routes-manifest.json").read_text())
    assert set(manifest.values()) >= set(ROUTES), manifest


def test_the_lock_file_carries_next_native_compiler_for_linux() -> None:
    """SWC is an optional dependency of Next: a lock file written on another platform
    without it would make ``npm ci`` here install no compiler, and ``next build`` fail."""
    lock = json.loads((EXAMPLE / "package-lock.json").read_text())["packages"]
    next_version = lock["node_modules/next"]["version"]
    swc = lock["node_modules/@next/swc-linux-x64-gnu"]
    assert (swc["version"], swc["os"], swc["cpu"]) == (next_version, ["linux"], ["x64"])
    assert swc["integrity"].startswith("sha512-")
    assert lock["node_modules/next"]["optionalDependencies"]["@next/swc-linux-x64-gnu"] == (
        next_version
    )
