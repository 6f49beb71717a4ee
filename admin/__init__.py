"""The exception-queue web view (``paystream admin``): every dead-lettered command, with
buttons to retry or dismiss it; its state lives in Kafka."""
