"""Strict YAML reading shared by every configuration file (prior files, alert rules).

Plain YAML only: ``yaml.SafeLoader`` refuses tags such as ``!!python/object``, and this
loader also refuses a key given twice in one mapping (YAML itself would keep the last), a
document that aliases (``*name``) expand beyond 100,000 values (nested aliases make a tiny file
into gigabytes), and files over 1 MB.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

#: Configuration files are small: a larger file is refused before it is parsed.
MAX_YAML_BYTES = 1_000_000


#: Nodes a configuration file may expand to once its aliases are followed.
MAX_EXPANDED_NODES = 100_000


class _StrictSafeLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that also refuses duplicate keys in a mapping and alias bombs.

    An alias (``*name``) repeats a node anchored elsewhere; nested aliases make a file of a few
    hundred bytes expand into billions of values (an "alias bomb").  A document whose nodes,
    counted with every alias followed, exceed :data:`MAX_EXPANDED_NODES` is refused before
    anything is built from it.
    """

    def compose_document(self) -> Any:
        node = super().compose_document()
        if node is not None and _expanded_size(node, {}) > MAX_EXPANDED_NODES:
            raise yaml.composer.ComposerError(
                None,
                None,
                f"the document expands to over {MAX_EXPANDED_NODES:,} values once its aliases (*name) are "
                "followed; write the values out",
                node.start_mark,
            )
        return node


def _expanded_size(node: yaml.Node, memo: dict[int, int]) -> int:
    """Nodes under ``node`` with every alias followed (shared nodes are counted once per use)."""
    key = id(node)
    if key in memo:
        return memo[key]
    memo[key] = MAX_EXPANDED_NODES + 1  # a recursive alias counts as too large
    if isinstance(node, yaml.SequenceNode):
        size = 1 + sum(_expanded_size(child, memo) for child in node.value)
    elif isinstance(node, yaml.MappingNode):
        size = 1 + sum(_expanded_size(k, memo) + _expanded_size(v, memo) for k, v in node.value)
    else:
        size = 1
    memo[key] = min(size, MAX_EXPANDED_NODES + 1)
    return memo[key]


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
                "while reading a mapping",
                node.start_mark,
                f"found the key {str(key)[:60]!r} twice",
                key_node.start_mark,
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
    size = file.stat().st_size
    if size > MAX_YAML_BYTES:
        raise error(f"{path}: {size} bytes is too large for a {what} (at most {MAX_YAML_BYTES})")
    try:
        return yaml.load(file.read_text(encoding="utf-8"), Loader=_StrictSafeLoader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        detail = str(exc)
        detail = detail if len(detail) <= 600 else detail[:600] + "..."
        raise error(
            f"{path}: not a valid {what} (plain YAML only; tags such as !!python/object are refused, aliases "
            f"limited): {detail}"
        ) from exc
