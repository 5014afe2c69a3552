"""The JSON Schema of ``indicators.json`` (draft 2020-12), shipped with the package, and its check."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import jsonschema

from forecast.errors import ForecastError

#: Version of the ``indicators.json`` layout; bumped on any incompatible change.
SCHEMA_VERSION = "1.0"
#: The schema file, shipped as package data.
SCHEMA_PATH = Path(__file__).with_name("indicators.schema.json")


@cache
def _validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def validate_indicators(document: dict) -> None:
    """Check an indicators document against :data:`SCHEMA_PATH`.

    Raises
    ------
    ForecastError
        Naming the JSON path of the first problem (``$.fronts[0].p_exceed[1].probability``)
        and what is wrong there.
    """
    errors = sorted(_validator().iter_errors(document), key=lambda e: (list(map(str, e.absolute_path)), e.message))
    if errors:
        first = errors[0]
        more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
        raise ForecastError(f"indicators document is invalid at {first.json_path}: {first.message}{more}")
