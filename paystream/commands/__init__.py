"""The commands floor: operator commands that look across the stages (``doctor``,
``crm-repair``, ``forget``).

``paystream/`` is two floors. The ground floor (settings, logging, metrics, runtime, the
vocabulary) is what every stage imports and imports no stage. The commands above it may
read a stage's public entry points, and nothing on the ground floor or in a stage imports
them. ``tests/unit/paystream/test_floors.py`` checks both arrows.
"""
