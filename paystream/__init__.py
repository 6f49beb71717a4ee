"""paystream: Stripe webhooks → Kafka → one billing state per customer → CRM and helpdesk."""

__version__ = "0.1.0"
