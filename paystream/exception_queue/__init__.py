"""The exception queue as every reader sees it: the pure fold of ``sink.dlq``,
``sink.results`` and ``admin.exceptions`` (``fold``) and the feed that keeps it loaded
from Kafka (``feed``). The admin view and ``paystream status`` both read it from here; only
the admin writes decisions back."""
