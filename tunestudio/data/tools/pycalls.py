"""Tool calls written in Python call syntax, as ToolACE (Team-ACE/ToolACE) and the Berkeley
Function-Calling Leaderboard's prompt format write them: an assistant turn whose whole text is
`[get_weather(city="Paris"), convert(amount=10, to="EUR")]`.

ToolACE's function names may hold spaces (`[Market Trends API(trend_type="MARKET_INDEXES")]`),
so a name is whatever stands before its `(`; the arguments are keyword arguments whose values are
literals (strings, numbers, lists, dicts; `true`/`false`/`null` as well as Python's spellings).
Anything else (positional arguments, expressions, text around the list) is not this shape: the
turn stays text.
"""

from __future__ import annotations

import ast

_OPEN, _CLOSE = "([{", ")]}"
_NAMES = {"true": True, "false": False, "null": None, "True": True, "False": False, "None": None}


def _matching(s: str, i: int) -> int | None:
    """Index of the bracket closing the one at `s[i]`, skipping string literals; None if unclosed."""
    depth, quote, k = 0, None, i
    while k < len(s):
        ch = s[k]
        if quote:
            if ch == "\\":
                k += 1
            elif ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch in _OPEN:
            depth += 1
        elif ch in _CLOSE:
            depth -= 1
            if depth == 0:
                return k
        k += 1
    return None


def _value(node):
    """A literal argument value; ValueError for anything that is not one."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name) and node.id in _NAMES:
        return _NAMES[node.id]
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_value(e) for e in node.elts]
    if isinstance(node, ast.Dict) and None not in node.keys:
        return {_value(k): _value(v) for k, v in zip(node.keys, node.values)}
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)) \
            and isinstance(node.operand, ast.Constant) and isinstance(node.operand.value, (int, float)):
        return -node.operand.value if isinstance(node.op, ast.USub) else node.operand.value
    raise ValueError(ast.dump(node))


def _arguments(src: str) -> dict | None:
    """`a=1, b="x"` as {"a": 1, "b": "x"}, or None when it is not keyword arguments of literals."""
    try:
        call = ast.parse(f"f({src})", mode="eval").body
        if call.args or any(kw.arg is None for kw in call.keywords):
            return None
        return {kw.arg: _value(kw.value) for kw in call.keywords}
    except (SyntaxError, ValueError, TypeError, RecursionError, MemoryError):
        return None


def python_calls(text: str) -> list[dict] | None:
    """The calls in `text` when all of it is a list of calls in Python syntax, each as
    {"name": str, "arguments": dict}; None when it is not (the text is then an ordinary answer)."""
    s = text.strip()
    if not (s.startswith("[") and s.endswith(")]")):
        return None
    calls, i = [], 1
    while True:
        j = s.find("(", i)
        if j < 0:
            return None
        name = s[i:j].strip()
        if not name or any(ch in name for ch in "[]{}()\"'=,:"):
            return None
        k = _matching(s, j)
        if k is None:
            return None
        args = _arguments(s[j + 1:k])
        if args is None:
            return None
        calls.append({"name": name, "arguments": args})
        i = k + 1
        while i < len(s) and s[i].isspace():
            i += 1
        if s[i:] == "]":
            return calls
        if i >= len(s) or s[i] != ",":
            return None
        i += 1
