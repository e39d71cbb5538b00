"""Totality: any document parses or raises ResourceError; whatever parses round-trips.

Documents are canonical fixtures with one value replaced at a random path by random JSON, so
every field codec and every cross-field rule sees hostile input (DESIGN.md: every input from
outside has a clear error).
"""

from __future__ import annotations

import contextlib
import copy

import pytest
from hypothesis import given
from hypothesis import strategies as st

from resources.errors import ResourceError
from resources.resource import parse_resource
from tests.resources.fixtures import CANONICAL

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
    | st.sampled_from(["10.0.0.0/8", "fd00::/64", "all()", "Always", "1m", "host:n", "65000"]),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)


def _paths(value: object, prefix: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            out.extend(_paths(item, (*prefix, key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            out.extend(_paths(item, (*prefix, index)))
    return out


def _replace(doc: object, path: tuple[object, ...], new: object) -> object:
    if not path:
        return new
    root = copy.deepcopy(doc)
    target = root
    for step in path[:-1]:
        target = target[step]  # type: ignore[index]
    target[path[-1]] = new  # type: ignore[index]
    return root


def _check(doc: dict[str, object], path: tuple[object, ...], value: object) -> None:
    mutated = _replace(doc, path, value)
    try:
        resource = parse_resource(mutated)  # type: ignore[arg-type]
    except ResourceError as err:
        assert isinstance(err.path, str)
        return
    assert parse_resource(resource.to_dict()) == resource


@given(doc=st.sampled_from(CANONICAL), data=st.data(), value=json_values)
def test_mutated_documents_parse_or_raise_resource_error(
    doc: dict[str, object], data: st.DataObject, value: object
) -> None:
    path = data.draw(st.sampled_from([p for p in _paths(doc) if p]))
    _check(doc, path, value)


@pytest.mark.parametrize(
    ("kind", "path", "value"),
    [
        ("IPPool", ("spec", "nodeSelector"), ""),  # found by the hunt profile
        ("NetworkPolicy", ("spec", "order"), 10**400),
        ("IPAMBlock", ("spec", "unallocated", 0), 2**80),
        ("BGPPeer", ("spec", "peerIP"), "[::1]:99999"),
        ("Node", ("spec", "bgp", "ipv6Address"), "fe80::1%eth0/64"),
    ],
)
def test_fixed_hostile_values(kind: str, path: tuple[object, ...], value: object) -> None:
    doc = next(d for d in CANONICAL if d["kind"] == kind)
    _check(doc, path, value)


@given(doc=st.sampled_from(CANONICAL), key=st.text(min_size=1, max_size=10), value=json_values)
def test_added_keys_are_known_fields_or_refused(
    doc: dict[str, object], key: str, value: object
) -> None:
    spec = dict(doc["spec"])  # type: ignore[call-overload]
    spec[key] = value
    with contextlib.suppress(ResourceError):
        parse_resource({**doc, "spec": spec})
