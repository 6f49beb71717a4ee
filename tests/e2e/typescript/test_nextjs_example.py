"""The Next.js example (``examples/nextjs``) type-checks against the built client and Next's
own types, and its pure parts (the billing view, the onboarding steps) pass their tests.

One compiler run does both: ``tsc -p`` checks the whole example (route handlers, page,
client component) and emits JavaScript into a temporary directory, from which
``node --test`` runs ``examples/nextjs/test/``.
"""

from __future__ import annotations

import os
from pathlib import Path

from tests.e2e.typescript.conftest import EXAMPLE, node_test, run, tsc


def test_nextjs_example_type_checks_and_its_views_have_no_dead_end(
    typescript_client: Path, tmp_path: Path
) -> None:
    out = tmp_path / "example"
    check = run(
        [*tsc(EXAMPLE), "-p", "tsconfig.json", "--noEmit", "false", "--outDir", str(out)], EXAMPLE
    )
    assert check.code == 0, "examples/nextjs does not type-check (tsc output above)"
    (out / "package.json").write_text('{"type": "module"}\n')

    result = node_test(
        [EXAMPLE / "test" / "example.test.mjs"], {**os.environ, "PAYSTREAM_EXAMPLE_BUILD": str(out)}
    )
    assert result.code == 0, "node --test failed on the example (output above)"
    assert (result.count("fail"), result.count("skipped")) == (0, 0)
    assert result.count("pass") == 7
