"""Strict YAML reading shared by every configuration file (prior files, alert rules).

Plain YAML only: ``yaml.SafeLoader`` refuses tags such as ``!!python/object``, and this
loader also refuses a key given twice in one mapping (YAML itself would keep the last).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


class _StrictSafeLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that also refuses duplicate keys in a mapping."""


def _construct_mapping_without_duplicates(loader: _StrictSafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            duplicate = key in seen
        except TypeError:
            continue  # unhashable key: construct_mapping reports it
        if duplicate:
            raise yaml.constructor.ConstructorError(
                "while reading a mapping", node.start_mark, f"found the key {key!r} twice", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=True)


_StrictSafeLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping_without_duplicates)


def read_yaml_file(path: str | Path, what: str, error: type[Exception]) -> object:
    """Parse ``path`` with the strict safe loader.

    Raises
    ------
    FileNotFoundError
        When the file does not exist.
    error
        When the text is not plain YAML (``what`` names the kind of file in the message).
    """
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"{what} not found: {path}")
    try:
        return yaml.load(file.read_text(encoding="utf-8"), Loader=_StrictSafeLoader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise error(
            f"{path}: not a valid {what} (plain YAML only; tags such as !!python/object are refused): {exc}"
        ) from exc
