"""Sinks: consume commands and results from Kafka, call the CRM, helpdesk and metrics store."""
