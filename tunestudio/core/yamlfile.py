"""YAML a user wrote (a run config, a sweep file), read so that aliases cannot blow it up.

`yaml.safe_load` shares an aliased value instead of copying it, so a "billion laughs" file (nine
nested lists, each nine aliases of the one before) loads in a millisecond; but the first thing that
walks it (a str(), a JSON dump, a check of every value) walks 9^9 values and never finishes while
its memory grows. `compose` and `safe_load` count the values the document holds once its aliases
are expanded and refuse it past MAX_VALUES.
"""

from __future__ import annotations

import yaml

from tunestudio.core.errors import UserError

MAX_VALUES = 100_000   # a run config holds ~100, a sweep file a few dozen


def _expanded(node, memo: dict) -> int:
    """How many values `node` stands for with every alias written out (a shared node counts each time)."""
    key = id(node)
    if key in memo:
        return memo[key]
    memo[key] = 1   # a node that holds itself (a recursive alias) counts once, not forever
    if isinstance(node, yaml.SequenceNode):
        n = 1 + sum(_expanded(child, memo) for child in node.value)
    elif isinstance(node, yaml.MappingNode):
        n = 1 + sum(_expanded(k, memo) + _expanded(v, memo) for k, v in node.value)
    else:
        n = 1
    memo[key] = n
    return n


def _check(node, source: str) -> None:
    n = _expanded(node, {})
    if n > MAX_VALUES:
        raise UserError(f"{source}: its aliases (*name) expand to {n:,} values, over the limit of {MAX_VALUES:,} "
                        "(an alias bomb?): write the values out", "yaml_alias_bomb", source=source, values=f"{n:,}",
                        limit=f"{MAX_VALUES:,}")


def compose(text: str, source: str):
    """The document's node tree (yaml.compose with the safe loader), its expanded size checked."""
    node = yaml.compose(text, Loader=yaml.SafeLoader)
    if node is not None:
        _check(node, source)
    return node


def safe_load(text: str, source: str):
    """yaml.safe_load(text), refused with a UserError when its aliases expand past MAX_VALUES."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check(node, source)
        return loader.construct_document(node)
    finally:
        loader.dispose()
