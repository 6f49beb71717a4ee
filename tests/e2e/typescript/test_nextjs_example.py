"""The Next.js example (``examples/nextjs``) type-checks against the built client and Next's
own types, and its pure parts (the billing view, the onboarding steps) pass their tests.

One compiler run does both (the ``example_build`` fixture): ``tsc -p`` checks the whole
example (route handlers, page, client component) and emits JavaScript into a temporary
directory, from which ``node --test`` runs ``examples/nextjs/test/example.test.mjs``. The
route handlers run against the real services in ``test_client.py``.
"""

from __future__ import annotations

import os

from tests.e2e.typescript.conftest import EXAMPLE, ExampleBuild, node_test


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
    assert result.count("pass") == 7
