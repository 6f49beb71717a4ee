"""Operator commands that look across the stages (``doctor``, ``crm-repair``, ``forget``).

They live in ``paystream/``, the shared layer below the stages, so they follow its rule:
they import no stage. What they share with a stage (the CRM's contact properties, the
destinations' settings, how a Stripe event is keyed) lives in this layer too, and no
stage imports a command. ``tests/unit/paystream/test_floors.py`` checks both.
"""
