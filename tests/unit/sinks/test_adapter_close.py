"""Each sink adapter closes the HTTP client it was given once its runner stops."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from pydantic import SecretStr

from sinks.app_webhook import AppWebhookAdapter, AppWebhookClient
from sinks.crm import CrmAdapter
from sinks.helpdesk import HelpdeskAdapter
from sinks.hubspot import HubSpotClient
from sinks.zendesk import ZendeskClient

TOKEN = SecretStr("t" * 20)


def _crm() -> tuple[Any, Any]:
    client = HubSpotClient("https://api.hubapi.test", TOKEN, 5.0)
    return CrmAdapter(client), client


def _helpdesk() -> tuple[Any, Any]:
    client = ZendeskClient("https://acme.zendesk.test", "ops@acme.test", TOKEN, 5.0)
    return HelpdeskAdapter(client), client


def _app_webhook() -> tuple[Any, Any]:
    client = AppWebhookClient("https://app.acme.test/hooks/paystream", ["whsec_x" * 4], 5.0)
    return AppWebhookAdapter(client), client


@pytest.mark.parametrize("build", [_crm, _helpdesk, _app_webhook])
def test_close_closes_the_adapters_http_client(build: Callable[[], tuple[Any, Any]]) -> None:
    adapter, client = build()
    assert not client.http._client.is_closed
    adapter.close()
    assert client.http._client.is_closed


@pytest.mark.parametrize(
    "adapter", [CrmAdapter(None), HelpdeskAdapter(None), AppWebhookAdapter(None)]
)
def test_close_without_a_client_is_a_no_op(adapter: Any) -> None:
    adapter.close()  # dry-run adapters hold no client: closing must not raise
    assert adapter.client is None
