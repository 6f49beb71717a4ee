"""The sample sink commands are exactly the records the worker writes: an Avro round trip."""

from __future__ import annotations

from typing import Any

import pytest

from devstack.commands import crm_command, helpdesk_command
from schemas.codec import default_codec

SAMPLES = [
    ("crm_command", crm_command()),
    ("crm_command", crm_command("cus_B", "past_due", email="b@example.com")),
    ("helpdesk_command", helpdesk_command("failed_renewal")),
    ("helpdesk_command", helpdesk_command("chargeback", "dp_1")),
    ("helpdesk_command", helpdesk_command("onboarding_stuck", "cus_A")),
    ("helpdesk_command", helpdesk_command(facts={"amount": "100"})),  # v1-style: facts only
]


@pytest.mark.parametrize(("schema", "command"), SAMPLES)
def test_a_sample_command_survives_the_codec_unchanged(
    schema: str, command: dict[str, Any]
) -> None:
    codec = default_codec()
    # no field missing (decoding would add it), none extra (decoding would drop it)
    assert codec.decode_as(schema, codec.encode(schema, command)) == command
