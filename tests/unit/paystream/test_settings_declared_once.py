"""Every environment variable has one type and one set of bounds, whichever settings model
reads it: a variable read by several processes and tools (ingest's port by ingest, ``up``,
``status`` and ``demo``) is declared once, in ``paystream.settings`` or
``paystream.destinations``, and inherited, so the bounds cannot drift (``ge=0`` in one,
``ge=1`` in another). Whether a model requires it, and its default, is each model's own: a
tool may go without what a process needs (``None`` allowed, an empty list allowed).

Walks the ``model_fields`` of every settings model the product defines."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import types
from collections import defaultdict
from typing import Annotated, Any, Union, get_args, get_origin

import annotated_types
import pytest
from pydantic import Field
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings

from paystream.settings import CommonSettings

PACKAGES = ("paystream", "ingest", "processors", "sinks", "admin", "schemas")


def settings_models() -> list[type[BaseSettings]]:
    """Every settings model defined in the product's modules."""
    found: set[type[BaseSettings]] = set()
    for package in PACKAGES:
        root = importlib.import_module(package)
        names = [package] + [
            m.name
            for m in pkgutil.walk_packages(root.__path__, package + ".")
            if not m.name.endswith("__main__")
        ]
        for name in names:
            for _, cls in inspect.getmembers(importlib.import_module(name), inspect.isclass):
                if issubclass(cls, BaseSettings) and cls.__module__.startswith(PACKAGES):
                    found.add(cls)
    return sorted(found, key=lambda c: f"{c.__module__}.{c.__qualname__}")


def shape(field: FieldInfo) -> tuple[str, tuple[str, ...]]:
    """A field's type without ``None`` and its constraints without "at least one"."""
    annotation: Any = field.annotation
    if get_origin(annotation) in (Union, types.UnionType):
        rest = [a for a in get_args(annotation) if a is not type(None)]
        annotation = rest[0] if len(rest) == 1 else Union[tuple(rest)]  # noqa: UP007
    kept = [m for m in field.metadata if m != annotated_types.MinLen(1)]
    return repr(annotation), tuple(sorted(repr(m) for m in kept))


def declarations(
    models: list[type[BaseSettings]],
) -> dict[str, dict[tuple[str, tuple[str, ...]], list[str]]]:
    """Each environment variable → each shape it is declared with → the models that do."""
    found: dict[str, dict[tuple[str, tuple[str, ...]], list[str]]] = defaultdict(dict)
    for model in models:
        for name, field in model.model_fields.items():
            found[name.upper()].setdefault(shape(field), []).append(model.__qualname__)
    return found


MODELS = settings_models()


def test_the_walk_finds_the_processes_and_the_tools() -> None:
    names = {model.__qualname__ for model in MODELS}
    assert {"IngestSettings", "WorkerSettings", "SinkSettings", "AdminSettings"} <= names
    assert {"UpSettings", "StatusSettings", "DemoSettings", "DoctorSettings"} <= names


def test_no_variable_is_declared_with_two_types_or_bounds() -> None:
    drifted = {
        variable: shapes for variable, shapes in declarations(MODELS).items() if len(shapes) > 1
    }
    assert drifted == {}


def test_the_shared_ones_are_inherited_not_declared_again() -> None:
    for variable in ("PAYSTREAM_INGEST_PORT", "PAYSTREAM_WORKER_URL", "PAYSTREAM_API_TOKEN"):
        readers = [m for m in MODELS if variable.lower() in m.model_fields]
        assert len(readers) >= 3, variable
        owners = {
            next(k for k in m.__mro__ if variable.lower() in inspect.get_annotations(k))
            for m in readers
        }
        assert len(owners) == 1, (variable, owners)


class _Wide(CommonSettings):
    paystream_ingest_port: int = Field(default=8080, ge=0, le=65_535)


class _Narrow(CommonSettings):
    paystream_ingest_port: int = Field(default=8080, ge=1, le=65_535)


class _Optional(CommonSettings):
    paystream_ingest_port: int | None = Field(default=None, ge=1, le=65_535)


@pytest.mark.parametrize(
    ("models", "drifts"),
    [
        ([_Wide, _Narrow], True),  # the drift this test is for: ge=0 against ge=1
        ([_Narrow, _Optional], False),  # optional in one model, required-ish in another
        ([_Narrow], False),
    ],
    ids=["bounds differ", "only None differs", "one model"],
)
def test_the_check_sees_a_drift(models: list[type[BaseSettings]], drifts: bool) -> None:
    shapes = declarations(models)["PAYSTREAM_INGEST_PORT"]
    assert (len(shapes) > 1) is drifts


def test_at_least_one_is_requiredness_not_a_type() -> None:
    required = FieldInfo.from_annotated_attribute(Annotated[tuple[str, ...], Field()], ())
    assert shape(required) == shape(
        FieldInfo.from_annotated_attribute(tuple[str, ...], Field(min_length=1))
    )
    assert shape(required) != shape(
        FieldInfo.from_annotated_attribute(tuple[str, ...], Field(min_length=2))
    )
