"""Calico selector language (calico.md §5.1): parser, canonical text and evaluator.

The oracle is independent of `resources.selector`: selectors are generated here as plain
tuples, rendered to text by this file's own renderer (random whitespace, quote style and
`notin`/`not in` spelling) and evaluated by this file's own recursive evaluator; the library
must agree on every label set.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from resources.errors import SelectorError
from resources.selector import (
    ALL,
    All,
    And,
    Contains,
    EndsWith,
    Equals,
    Global,
    Has,
    In,
    Node,
    Not,
    NotEquals,
    NotIn,
    Or,
    Selector,
    StartsWith,
    matches,
    parse_selector,
)

LABELS = ["a", "b", "app", "in", "has", "all", "not", "x/y", "k8s.io/name", "role-1", "A_b"]
VALUES = ["", "1", "web", "we", "eb", 'q"uote', "it's", "a b", "{x}", "&&"]

# --- the oracle's own AST: nested tuples -------------------------------------------------------

Tree = tuple[object, ...]


def _leaf() -> st.SearchStrategy[Tree]:
    label = st.sampled_from(LABELS)
    value = st.sampled_from(VALUES)
    values = st.lists(value, max_size=3).map(tuple)
    return st.one_of(
        st.just(("all",)),
        st.just(("global",)),
        st.tuples(st.just("has"), label),
        st.tuples(st.sampled_from(["==", "!=", "contains", "starts", "ends"]), label, value),
        st.tuples(st.sampled_from(["in", "notin"]), label, values),
    )


trees: st.SearchStrategy[Tree] = st.recursive(
    _leaf(),
    lambda inner: st.one_of(
        st.tuples(st.just("!"), inner),
        st.tuples(
            st.sampled_from(["&&", "||"]), st.lists(inner, min_size=2, max_size=3).map(tuple)
        ),
    ),
    max_leaves=12,
)


def oracle(tree: Tree, labels: Mapping[str, str]) -> bool:
    kind = tree[0]
    if kind in ("all", "global"):
        return True
    if kind == "!":
        return not oracle(tree[1], labels)  # type: ignore[arg-type]
    if kind == "&&":
        return all(oracle(t, labels) for t in tree[1])  # type: ignore[attr-defined]
    if kind == "||":
        return any(oracle(t, labels) for t in tree[1])  # type: ignore[attr-defined]
    label = str(tree[1])
    present = label in labels
    got = labels.get(label, "")
    if kind == "has":
        return present
    if kind == "==":
        return present and got == tree[2]
    if kind == "!=":
        return not present or got != tree[2]
    if kind == "contains":
        return present and str(tree[2]) in got
    if kind == "starts":
        return present and got.startswith(str(tree[2]))
    if kind == "ends":
        return present and got.endswith(str(tree[2]))
    if kind == "in":
        return present and got in tree[2]  # type: ignore[operator]
    assert kind == "notin"
    return not present or got not in tree[2]  # type: ignore[operator]


def render(tree: Tree, draw_ws: Callable[[st.SearchStrategy[str]], str]) -> str:
    def ws() -> str:
        return draw_ws(st.sampled_from(["", " ", "  ", "\t", "\n"]))

    def lit(value: object) -> str:
        text = str(value)
        if '"' in text:
            return f"'{text}'"
        if "'" in text:
            return f'"{text}"'
        return draw_ws(st.sampled_from([f'"{text}"', f"'{text}'"]))

    kind = tree[0]
    if kind in ("all", "global"):
        return f"{kind}(){ws()}"
    if kind == "has":
        return f"has({ws()}{tree[1]}{ws()})"
    if kind == "!":
        return f"!{ws()}({ws()}{render(tree[1], draw_ws)}{ws()})"  # type: ignore[arg-type]
    if kind in ("&&", "||"):
        parts = [f"({ws()}{render(t, draw_ws)}{ws()})" for t in tree[1]]  # type: ignore[attr-defined]
        return f"{ws()}{kind}{ws()}".join(parts)
    label = tree[1]
    if kind in ("==", "!=", "contains"):
        return f"{label}{ws()} {kind} {ws()}{lit(tree[2])}"
    if kind in ("starts", "ends"):
        return f"{label} {kind}{draw_ws(st.sampled_from([' ', '  ', chr(9)]))}with {lit(tree[2])}"
    items = f"{ws()},{ws()}".join(lit(v) for v in tree[2])  # type: ignore[attr-defined]
    spelled = "in" if kind == "in" else draw_ws(st.sampled_from(["not in", "notin", "not  in"]))
    return f"{label} {spelled} {ws()}{{{ws()}{items}{ws()}}}"


label_sets = st.dictionaries(st.sampled_from(LABELS), st.sampled_from([*VALUES, "web1", "xweb"]))


@given(tree=trees, labels=st.lists(label_sets, min_size=1, max_size=4), data=st.data())
def test_calico_selector_semantics_agree_with_independent_oracle(
    tree: Tree, labels: list[dict[str, str]], data: st.DataObject
) -> None:
    """calico.md §5.1: ==, !=, in, not in, has, contains, starts/ends with, !, &&, ||, all()."""
    text = render(tree, data.draw)
    selector = parse_selector(text)
    for label_set in labels:
        assert selector.evaluate(label_set) == oracle(tree, label_set), (text, label_set)
    # The canonical text means the same thing.
    again = parse_selector(str(selector))
    for label_set in labels:
        assert again.evaluate(label_set) == oracle(tree, label_set)


# --- library ASTs: parse(render(ast)) == ast ----------------------------------------------------

_label = st.sampled_from(LABELS)
_value = st.sampled_from(VALUES)
_values = st.lists(_value, max_size=3).map(tuple)
_nodes: st.SearchStrategy[Node] = st.recursive(
    st.one_of(
        st.just(All()),
        st.just(Global()),
        st.builds(Has, _label),
        st.builds(Equals, _label, _value),
        st.builds(NotEquals, _label, _value),
        st.builds(Contains, _label, _value),
        st.builds(StartsWith, _label, _value),
        st.builds(EndsWith, _label, _value),
        st.builds(In, _label, _values),
        st.builds(NotIn, _label, _values),
    ),
    lambda inner: st.one_of(
        st.builds(Not, inner),
        st.builds(And, st.lists(inner, min_size=2, max_size=3).map(tuple)),
        st.builds(Or, st.lists(inner, min_size=2, max_size=3).map(tuple)),
    ),
    max_leaves=12,
)


@given(_nodes)
@example(And((And((Has("a"), Has("b"))), Has("c"))))
@example(Not(Not(Has("a"))))
@example(Or((And((Has("a"), Has("b"))), Not(Or((Has("c"), All()))))))
def test_canonical_text_reparses_to_the_same_ast(node: Node) -> None:
    """Canonical `str()` is a fixed point of the parser: parse(render(ast)) == ast."""
    selector = Selector(node)
    text = str(selector)
    assert parse_selector(text) == selector
    assert str(parse_selector(text)) == text


@given(st.text(alphabet="ab =!&|()'\"{},has()inotcluewrt", max_size=40))
def test_any_text_parses_or_raises_selector_error_with_position_in_range(text: str) -> None:
    """Totality: arbitrary text yields a Selector or a SelectorError pointing into the text."""
    try:
        parse_selector(text)
    except SelectorError as err:
        assert 0 <= err.position <= len(text)
        assert "^" in str(err)


# --- fixed examples -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "labels", "expected"),
    [
        ("", {}, True),
        ("all()", {"a": "1"}, True),
        ("a == 'x'", {}, False),
        ("a != 'x'", {}, True),  # != is true when the label is absent (Calico)
        ("a not in {'x'}", {}, True),
        ("a notin {'x'}", {"a": "x"}, False),
        ("a in {}", {"a": ""}, False),
        ("has(routeReflector)", {"routeReflector": ""}, True),
        ("!has(routeReflector)", {"routeReflector": "true"}, False),
        ("a == 'x' || b == 'y' && c == 'z'", {"a": "x"}, True),  # && binds tighter
        ("(a == 'x' || b == 'y') && c == 'z'", {"a": "x"}, False),
        ("!a == 'x' && has(b)", {"b": "1"}, True),  # ! binds tighter than &&
        ("name contains 'eb'", {"name": "web"}, True),
        ("name starts with 'we'", {"name": "web"}, True),
        ("name ends with 'we'", {"name": "web"}, False),
        ("name contains 'eb'", {}, False),
        ("in == 'x'", {"in": "x"}, True),  # keywords are not reserved as labels
        (
            "projectcalico.org/namespace == 'default'",
            {"projectcalico.org/namespace": "default"},
            True,
        ),
        ("global()", {}, True),
    ],
)
def test_calico_selector_examples(text: str, labels: dict[str, str], expected: bool) -> None:
    """calico.md §5.1 examples, including absent-label rules and precedence."""
    assert matches(text, labels) is expected


@pytest.mark.parametrize(
    ("text", "position", "reason"),
    [
        ("a = 'x'", 2, "expected an operator"),
        ("a == x", 5, "expected a quoted string"),
        ("a == 'x", 5, "unterminated string"),
        ("has(a) &&", 9, "expected an expression"),
        ("has(a) && @b", 10, "expected a label"),
        ("has(a", 5, "expected ')'"),
        ("(has(a)", 7, "expected ')'"),
        ("has(a))", 6, "unexpected text after selector"),
        ("a in {'x' 'y'}", 10, "expected ',' or '}'"),
        ("a in 'x'", 5, "expected '{'"),
        ("has()", 4, "expected a label inside has()"),
        ("all(x)", 4, "expected ')' after all("),
        ("a starts 'x'", 9, "expected 'with' after 'starts'"),
        ("a not {'x'}", 6, "expected 'in' after 'not'"),
        ("a ends(", 6, "expected ' with' after 'ends'"),
        ("a == 'x' b", 9, "unexpected text"),
        ("a inside {'x'}", 2, "expected an operator"),
    ],
)
def test_syntax_error_points_at_offending_character(text: str, position: int, reason: str) -> None:
    """Errors name the character (0-based `.position`) and draw a caret under it."""
    with pytest.raises(SelectorError) as info:
        parse_selector(text)
    err = info.value
    assert err.position == position
    assert reason in err.reason
    lines = str(err).splitlines()
    assert lines[1].strip() == text.strip()
    assert lines[2].index("^") - lines[1].index(text[0]) == position


def test_label_longer_than_512_is_refused() -> None:
    """Calico labels are at most 512 characters."""
    parse_selector("a" * 512 + " == 'x'")
    with pytest.raises(SelectorError) as info:
        parse_selector("has(" + "a" * 513 + ")")
    assert info.value.position == 4


def test_deep_nesting_is_a_selector_error_not_a_crash() -> None:
    with pytest.raises(SelectorError):
        parse_selector("(" * 1000 + "all()" + ")" * 1000)
    with pytest.raises(SelectorError):
        parse_selector("!" * 1000 + "all()")


def test_parsed_selectors_are_cached() -> None:
    assert parse_selector("has(cache-me)") is parse_selector("has(cache-me)")


def test_selector_helpers() -> None:
    selector = parse_selector("has(a) && !(b == 'x' || global())")
    assert selector.uses_global()
    assert selector.labels() == {"a", "b"}
    assert not ALL.uses_global()
    assert str(ALL) == "all()"


def _outside_quotes_after_space(text: str) -> list[int]:
    spots: list[int] = []
    quote: str | None = None
    for index, char in enumerate(text):
        if quote is not None:
            if char == quote:
                quote = None
        elif char in "'\"":
            quote = char
        elif char == " ":
            spots.append(index + 1)
    return spots


@given(_nodes, st.data())
def test_error_position_is_the_inserted_bad_character(node: Node, data: st.DataObject) -> None:
    """A stray character between tokens is reported exactly where it was inserted."""
    text = str(Selector(node))
    spots = _outside_quotes_after_space(text)
    if not spots:
        return
    spot = data.draw(st.sampled_from(spots))
    broken = text[:spot] + "@" + text[spot:]
    with pytest.raises(SelectorError) as info:
        parse_selector(broken)
    assert info.value.position == spot, (broken, info.value)
