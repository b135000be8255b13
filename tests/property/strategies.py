"""Strategies shared by the property tests: any JSON, awkward text, deep nesting, and mutations of a sample.

``mutated(sample, values)`` takes a real sample (tests/events) and changes a few places in it: a value
replaced (by any JSON, awkward text, a near-miss identifier, a deep nest), a key deleted or added, a list
item dropped or inserted. ``Encoded`` marks a JSON document carried as a string inside another (a button's
``value``, a modal's ``private_metadata``): mutations reach inside it, and ``render`` encodes it last.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st


def examples(share: float) -> settings:
    """Settings giving a test ``share`` of the loaded profile's examples (for tests dearer than most)."""
    return settings(max_examples=max(10, int(settings().max_examples * share)))


# -- text ------------------------------------------------------------------------------------------

TRICKY_TEXT = (
    "",
    " ",
    "\n",
    "\t\r\n",
    "\x00",
    "null",
    "true",
    "0",
    "-1",
    "NaN",
    "[]",
    "{}",
    '"',
    "\\",
    "%",
    "%zz",
    "%ff%fe",
    "a=b&c=d",
    "+",
    "\u202e",
    "\ufeff",
    "e\u0301",
    "\U0001f600",
    "\u0661\u0662\u0663",
    "\ud800",
    "\udfff",
)

# Any code point, lone surrogates included (hypothesis leaves them out of text() by default).
ANY_CHARACTER = st.characters() | st.characters(categories=["Cs"])


def long_text(min_size: int = 200, max_size: int = 5000) -> st.SearchStrategy[str]:
    """Long strings, built cheaply (a unit repeated): past every length limit Slack or S3 sets."""
    units = st.sampled_from(["a", " ", "\u00e9", "\U0001f600", "%41", "&", "\n"])
    return st.builds(lambda unit, n: unit * n, units, st.integers(min_size, max_size))


awkward_text: st.SearchStrategy[str] = st.one_of(
    st.sampled_from(TRICKY_TEXT),
    st.text(max_size=30),
    st.text(ANY_CHARACTER, max_size=12),
    long_text(),
)


# -- JSON ------------------------------------------------------------------------------------------

json_scalars: st.SearchStrategy[Any] = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),
    st.text(max_size=16),
    st.sampled_from(TRICKY_TEXT),
)


def json_values(max_leaves: int = 12, scalars: st.SearchStrategy[Any] = json_scalars) -> st.SearchStrategy[Any]:
    """Any JSON value (NaN and infinities included: Python's json reads and writes them)."""
    return st.recursive(
        scalars,
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(st.text(max_size=8) | st.sampled_from(TRICKY_TEXT), children, max_size=4)
        ),
        max_leaves=max_leaves,
    )


def nested(depth: int, leaf: Any = None, *, as_dict: bool = False) -> Any:
    """A value ``depth`` containers deep, built without recursion."""
    value = leaf
    for _ in range(depth):
        value = {"a": value} if as_dict else [value]
    return value


def deep_values(max_depth: int = 400) -> st.SearchStrategy[Any]:
    """Deeply nested lists or objects (kept below the depth Python's json can read back)."""
    return st.builds(nested, st.integers(1, max_depth), st.none() | st.integers(), as_dict=st.booleans())


def deep_json_text() -> st.SearchStrategy[str]:
    """JSON text nested deeper than any parser's recursion limit (or just below it)."""
    opener = st.sampled_from([("[", "]", ""), ('{"a":', "}", "1")])
    return st.builds(
        lambda pair, n: pair[0] * n + pair[2] + pair[1] * n,
        opener,
        st.integers(150, 250) | st.integers(5_000, 100_000),
    )


def depth(value: Any) -> int:
    """How many containers deep a JSON value is (a scalar is 0, ``[]`` is 1)."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict | list):
            level += 1
            deepest = max(deepest, level)
            stack.extend((child, level) for child in (node.values() if isinstance(node, dict) else node))
    return deepest


# -- identifiers -----------------------------------------------------------------------------------

TWEAKS: tuple[Callable[[str], str], ...] = (
    lambda v: v,
    str.lower,
    lambda v: v + "\n",
    lambda v: "\n" + v,
    lambda v: v + " ",
    lambda v: v[:2],
    lambda v: v[:1],
    lambda v: v + "A" * 40,
    lambda v: v[:-1] + "\u0661",
    lambda v: v.translate(str.maketrans("0123456789", "\u0660\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0669")),
    lambda v: v + "\u200b",
    lambda v: v + "\ud800",
    lambda v: v.replace("-", "_"),
    lambda v: v + "/x",
    lambda v: "",
)


def near_misses(*valid: str) -> st.SearchStrategy[str]:
    """The valid identifiers given, and small edits of them that validation must catch (or allow)."""
    return st.builds(lambda value, tweak: tweak(value), st.sampled_from(valid), st.sampled_from(TWEAKS))


# -- mutations -------------------------------------------------------------------------------------


@dataclass
class Encoded:
    """A JSON document carried as a string inside another; ``render`` encodes it."""

    doc: Any


_INSIDE = object()  # the path step into an Encoded document


def render(node: Any, replace: Mapping[str, str] | None = None) -> Any:
    """The document as JSON data: every ``Encoded`` as its JSON text, strings in ``replace`` swapped."""
    replace = replace or {}
    if isinstance(node, Encoded):
        return json.dumps(render(node.doc, replace))
    if isinstance(node, dict):
        return {k: render(v, replace) for k, v in node.items()}
    if isinstance(node, list):
        return [render(v, replace) for v in node]
    if isinstance(node, str):
        return replace.get(node, node)
    return node


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    stack = [(node, prefix)]
    while stack:
        current, path = stack.pop()
        yield path
        if isinstance(current, Encoded):
            stack.append((current.doc, (*path, _INSIDE)))
        elif isinstance(current, dict):
            stack.extend((v, (*path, k)) for k, v in reversed(current.items()))
        elif isinstance(current, list):
            stack.extend((v, (*path, i)) for i, v in reversed(list(enumerate(current))))


def _get(node: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        node = node.doc if step is _INSIDE else node[step]
    return node


def _set(root: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    parent, last = _get(root, path[:-1]), path[-1]
    if last is _INSIDE:
        parent.doc = value
    else:
        parent[last] = value
    return root


def _delete(root: Any, path: tuple[Any, ...]) -> Any:
    if not path or path[-1] is _INSIDE:
        return root
    parent = _get(root, path[:-1])
    if isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent.pop(path[-1])
    return root


@st.composite
def mutated(
    draw: st.DrawFn,
    sample: Any,
    values: st.SearchStrategy[Any],
    keys: st.SearchStrategy[str] | None = None,
    max_mutations: int = 3,
) -> Any:
    """``sample`` with up to ``max_mutations`` places changed (none at all is one of the cases)."""
    doc = copy.deepcopy(sample)
    keys = st.text(max_size=8) | st.sampled_from(TRICKY_TEXT) if keys is None else keys
    # Half the time none or one: most examples stay close to the sample, so valid ones are common too.
    count = draw(st.sampled_from([0, 0, 1, 1]) | st.integers(0, max_mutations))
    for _ in range(count):
        path = draw(st.sampled_from(list(_paths(doc))))
        operation = draw(st.sampled_from(["replace", "delete", "insert"]))
        target = _get(doc, path)
        if operation == "delete":
            doc = _delete(doc, path)
        elif operation == "insert" and isinstance(target, dict):
            target[draw(keys)] = draw(values)
        elif operation == "insert" and isinstance(target, list):
            target.insert(draw(st.integers(0, len(target))), draw(values))
        else:
            doc = _set(doc, path, draw(values))
    return doc
