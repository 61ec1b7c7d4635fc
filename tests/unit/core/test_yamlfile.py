"""A run config or sweep file that is a YAML alias bomb is refused at once; ordinary aliases still work."""

from __future__ import annotations

import pytest

from tunestudio.core import yamlfile
from tunestudio.core.errors import UserError

BOMB = "x: [&a [" + ", ".join(["lol"] * 9) + "], " + ", ".join(
    f"&{a} [{', '.join([f'*{b}'] * 9)}]" for b, a in zip("abcdefgh", "bcdefghi")) + "]\n"


@pytest.mark.parametrize("read", [yamlfile.safe_load, yamlfile.compose])
def test_an_alias_bomb_is_refused_naming_the_file(read):
    with pytest.raises(UserError) as e:
        read(BOMB, "bomb.yaml")
    assert e.value.code == "yaml_alias_bomb" and str(e.value).startswith("bomb.yaml: its aliases (*name) expand to ")


def test_ordinary_and_recursive_aliases_still_load():
    assert yamlfile.safe_load("a: &x [1, 2]\nb: *x\n", "f.yaml") == {"a": [1, 2], "b": [1, 2]}
    loop = yamlfile.safe_load("a: &x [1, *x]\n", "f.yaml")
    assert loop["a"][1] is loop["a"]
    assert yamlfile.safe_load("", "f.yaml") is None
