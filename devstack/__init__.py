"""The local development stack: HubSpot and Zendesk stand-ins that ``paystream up`` starts.

They follow the services' documented APIs closely enough for the sinks to be exercised end
to end on one machine (``paystream up`` with ``PAYSTREAM_SINK_WRITES=enabled`` and no real
credentials), and the tests drive them the same way. Never point a production deployment
at them.
"""
