"""Root errors shared by every stage's command-line shell."""


class PaystreamError(Exception):
    """Root of the errors raised by the shared runtime (settings, broker, store)."""


class SettingsError(PaystreamError):
    """Raised when a setting is missing or invalid; the message names the variable."""


class BrokerStartError(PaystreamError):
    """Raised when the embedded broker cannot be started or does not become ready."""


class TopicMismatchError(PaystreamError):
    """Raised when an existing topic's partition count differs from the expected one."""
