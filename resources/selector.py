"""Calico's label-selector language: one parser, one AST, one evaluator.

Grammar (Calico `libcalico-go/lib/selector`; precedence `||` < `&&` < unary `!`):

    selector := ε | or
    or       := and ("||" and)*
    and      := unary ("&&" unary)*
    unary    := "!" unary | "(" or ")" | "all()" | "global()" | "has(" label ")"
              | label op
    op       := "==" str | "!=" str | "in" set | "not in" set | "notin" set
              | "contains" str | "starts with" str | "ends with" str
    set      := "{" [str ("," str)*] "}"
    str      := '"' [^"]* '"' | "'" [^']* "'"          (no escapes)
    label    := [A-Za-z0-9_./-]{1,512}

Semantics (Calico): `==`, `in`, `contains`, `starts with`, `ends with` need the label present;
`!=` and `not in` are also true when it is absent; `all()` and the empty selector match
everything; `global()` evaluates true here — its meaning ("only non-namespaced objects") is
applied by the policy layer, which knows where a selector sits.

Invariants: `parse_selector(str(s)) == s` for every parsed `s` (the canonical text wraps nested
`&&`/`||` groups in parentheses, so the AST shape survives); keywords are recognised only where
the grammar expects an operator, so a label may be called `in` or `has`; parsing raises
`SelectorError` and nothing else, for any input text.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

from resources.errors import SelectorError

MAX_LABEL_LENGTH = 512
MAX_SELECTOR_LENGTH = 65_536
MAX_NESTING = 128
LABEL_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./-")
WHITESPACE = " \t\r\n"

Labels = Mapping[str, str]


# --- AST -------------------------------------------------------------------------------------


def _quote(value: str) -> str:
    # No escapes exist in the language, so pick the quote the value does not contain.
    return f"'{value}'" if '"' in value else f'"{value}"'


@dataclass(frozen=True, slots=True)
class All:
    def evaluate(self, labels: Labels) -> bool:
        return True

    def render(self) -> str:
        return "all()"


@dataclass(frozen=True, slots=True)
class Global:
    def evaluate(self, labels: Labels) -> bool:
        return True

    def render(self) -> str:
        return "global()"


@dataclass(frozen=True, slots=True)
class Has:
    label: str

    def evaluate(self, labels: Labels) -> bool:
        return self.label in labels

    def render(self) -> str:
        return f"has({self.label})"


@dataclass(frozen=True, slots=True)
class Equals:
    label: str
    value: str

    def evaluate(self, labels: Labels) -> bool:
        return labels.get(self.label) == self.value

    def render(self) -> str:
        return f"{self.label} == {_quote(self.value)}"


@dataclass(frozen=True, slots=True)
class NotEquals:
    label: str
    value: str

    def evaluate(self, labels: Labels) -> bool:
        return labels.get(self.label) != self.value

    def render(self) -> str:
        return f"{self.label} != {_quote(self.value)}"


@dataclass(frozen=True, slots=True)
class In:
    label: str
    values: tuple[str, ...]

    def evaluate(self, labels: Labels) -> bool:
        value = labels.get(self.label)
        return value is not None and value in self.values

    def render(self) -> str:
        return f"{self.label} in {{{', '.join(_quote(v) for v in self.values)}}}"


@dataclass(frozen=True, slots=True)
class NotIn:
    label: str
    values: tuple[str, ...]

    def evaluate(self, labels: Labels) -> bool:
        value = labels.get(self.label)
        return value is None or value not in self.values

    def render(self) -> str:
        return f"{self.label} not in {{{', '.join(_quote(v) for v in self.values)}}}"


@dataclass(frozen=True, slots=True)
class Contains:
    label: str
    value: str

    def evaluate(self, labels: Labels) -> bool:
        value = labels.get(self.label)
        return value is not None and self.value in value

    def render(self) -> str:
        return f"{self.label} contains {_quote(self.value)}"


@dataclass(frozen=True, slots=True)
class StartsWith:
    label: str
    value: str

    def evaluate(self, labels: Labels) -> bool:
        value = labels.get(self.label)
        return value is not None and value.startswith(self.value)

    def render(self) -> str:
        return f"{self.label} starts with {_quote(self.value)}"


@dataclass(frozen=True, slots=True)
class EndsWith:
    label: str
    value: str

    def evaluate(self, labels: Labels) -> bool:
        value = labels.get(self.label)
        return value is not None and value.endswith(self.value)

    def render(self) -> str:
        return f"{self.label} ends with {_quote(self.value)}"


@dataclass(frozen=True, slots=True)
class Not:
    operand: Node

    def evaluate(self, labels: Labels) -> bool:
        return not self.operand.evaluate(labels)

    def render(self) -> str:
        return f"!{_group(self.operand)}"


@dataclass(frozen=True, slots=True)
class And:
    operands: tuple[Node, ...]

    def evaluate(self, labels: Labels) -> bool:
        return all(op.evaluate(labels) for op in self.operands)

    def render(self) -> str:
        return " && ".join(_group(op) for op in self.operands)


@dataclass(frozen=True, slots=True)
class Or:
    operands: tuple[Node, ...]

    def evaluate(self, labels: Labels) -> bool:
        return any(op.evaluate(labels) for op in self.operands)

    def render(self) -> str:
        return " || ".join(_group(op) for op in self.operands)


Node = (
    All
    | Global
    | Has
    | Equals
    | NotEquals
    | In
    | NotIn
    | Contains
    | StartsWith
    | EndsWith
    | Not
    | And
    | Or
)


def _group(node: Node) -> str:
    # Binary groups are parenthesised wherever they are an operand, so that re-parsing the text
    # yields the same tree (and `!(a == "x")` keeps its meaning).
    if isinstance(node, (And, Or)):
        return f"({node.render()})"
    return node.render()


@dataclass(frozen=True, slots=True)
class Selector:
    """A parsed selector. Equality is equality of the ASTs; `str()` is the canonical text."""

    root: Node

    def evaluate(self, labels: Labels) -> bool:
        return self.root.evaluate(labels)

    def __str__(self) -> str:
        return self.root.render()

    def uses_global(self) -> bool:
        """True when `global()` appears anywhere (IPPool.nodeSelector must not use it)."""
        return any(isinstance(node, Global) for node in walk(self.root))

    def labels(self) -> frozenset[str]:
        """Every label the selector reads (useful for indexing endpoints by label)."""
        found: set[str] = set()
        for node in walk(self.root):
            label = getattr(node, "label", None)
            if isinstance(label, str):
                found.add(label)
        return frozenset(found)


def walk(node: Node) -> list[Node]:
    """All nodes of the tree, parents before children."""
    out: list[Node] = []
    stack: list[Node] = [node]
    while stack:
        current = stack.pop()
        out.append(current)
        if isinstance(current, Not):
            stack.append(current.operand)
        elif isinstance(current, (And, Or)):
            stack.extend(reversed(current.operands))
    return out


ALL = Selector(All())


# --- parser ----------------------------------------------------------------------------------

# Operator keywords after a label, longest spelling first so `not in` wins over a bare `not`.
_WORD_OPERATORS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("not", "in"), "not in"),
    (("notin",), "not in"),
    (("in",), "in"),
    (("contains",), "contains"),
    (("starts", "with"), "starts with"),
    (("ends", "with"), "ends with"),
)

_STRING_OPERATORS: dict[str, type[Equals | NotEquals | Contains | StartsWith | EndsWith]] = {
    "==": Equals,
    "!=": NotEquals,
    "contains": Contains,
    "starts with": StartsWith,
    "ends with": EndsWith,
}

_SET_OPERATORS: dict[str, type[In | NotIn]] = {"in": In, "not in": NotIn}


class _Parser:
    """Recursive descent over the text; `pos` only moves forward."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.depth = 0

    def fail(self, reason: str, position: int | None = None) -> SelectorError:
        return SelectorError(self.text, self.pos if position is None else position, reason)

    def skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in WHITESPACE:
            self.pos += 1

    def peek(self, literal: str) -> bool:
        self.skip_space()
        return self.text.startswith(literal, self.pos)

    def expect(self, literal: str, what: str) -> None:
        if not self.peek(literal):
            raise self.fail(f"expected {what}")
        self.pos += len(literal)

    def at_end(self) -> bool:
        self.skip_space()
        return self.pos >= len(self.text)

    def parse(self) -> Node:
        if self.at_end():
            return All()
        node = self.parse_or()
        if not self.at_end():
            raise self.fail("unexpected text after selector")
        return node

    def parse_or(self) -> Node:
        operands = [self.parse_and()]
        while self.peek("||"):
            self.pos += 2
            operands.append(self.parse_and())
        return operands[0] if len(operands) == 1 else Or(tuple(operands))

    def parse_and(self) -> Node:
        operands = [self.parse_unary()]
        while self.peek("&&"):
            self.pos += 2
            operands.append(self.parse_unary())
        return operands[0] if len(operands) == 1 else And(tuple(operands))

    def parse_unary(self) -> Node:
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise self.fail(f"selector nested deeper than {MAX_NESTING}")
        try:
            return self._unary()
        finally:
            self.depth -= 1

    def _unary(self) -> Node:
        self.skip_space()
        if self.pos >= len(self.text):
            raise self.fail("expected an expression")
        if self.peek("!") and not self.peek("!="):
            self.pos += 1
            return Not(self.parse_unary())
        if self.peek("("):
            self.pos += 1
            inner = self.parse_or()
            self.expect(")", "')'")
            return inner
        start = self.pos
        word = self.read_label_chars()
        if not word:
            raise self.fail("expected a label, '(', '!', has(), all() or global()")
        if word in ("has", "all", "global") and self.peek("("):
            return self.parse_function(word, start)
        if len(word) > MAX_LABEL_LENGTH:
            raise self.fail(f"label longer than {MAX_LABEL_LENGTH} characters", start)
        return self.parse_operation(word)

    def read_label_chars(self) -> str:
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] in LABEL_CHARS:
            self.pos += 1
        return self.text[start : self.pos]

    def parse_function(self, name: str, start: int) -> Node:
        self.pos += 1  # the "("
        if name == "has":
            self.skip_space()
            label_start = self.pos
            label = self.read_label_chars()
            if not label:
                raise self.fail("expected a label inside has()")
            if len(label) > MAX_LABEL_LENGTH:
                raise self.fail(f"label longer than {MAX_LABEL_LENGTH} characters", label_start)
            self.expect(")", "')' after the label in has()")
            return Has(label)
        self.expect(")", f"')' after {name}(")
        return All() if name == "all" else Global()

    def read_operator(self) -> str | None:
        self.skip_space()
        for symbol in ("==", "!="):
            if self.text.startswith(symbol, self.pos):
                self.pos += 2
                return symbol
        for words, name in _WORD_OPERATORS:
            saved = self.pos
            if self.read_words(words):
                return name
            self.pos = saved
        return None

    def read_words(self, words: tuple[str, ...]) -> bool:
        """Match an operator spelled as words. Once its first word matched, only its second
        word can follow a label, so a mismatch there is reported at that spot."""
        for index, word in enumerate(words):
            if index:
                # Words of a two-word operator need whitespace between them.
                if self.pos >= len(self.text) or self.text[self.pos] not in WHITESPACE:
                    raise self.fail(f"expected ' {word}' after '{words[0]}'")
                self.skip_space()
            end = self.pos + len(word)
            if not self.text.startswith(word, self.pos) or (
                end < len(self.text) and self.text[end] in LABEL_CHARS  # `inside` is not `in`
            ):
                if index:
                    raise self.fail(f"expected '{word}' after '{words[0]}'")
                return False
            self.pos = end
        return True

    def parse_operation(self, label: str) -> Node:
        operator = self.read_operator()
        if operator is None:
            self.skip_space()
            raise self.fail(
                "expected an operator (==, !=, in, not in, contains, starts with, ends with)"
            )
        if operator in _SET_OPERATORS:
            return _SET_OPERATORS[operator](label, self.parse_set())
        return _STRING_OPERATORS[operator](label, self.parse_string())

    def parse_string(self) -> str:
        self.skip_space()
        if self.pos >= len(self.text) or self.text[self.pos] not in "\"'":
            raise self.fail("expected a quoted string")
        quote = self.text[self.pos]
        end = self.text.find(quote, self.pos + 1)
        if end < 0:
            raise self.fail("unterminated string")
        value = self.text[self.pos + 1 : end]
        self.pos = end + 1
        return value

    def parse_set(self) -> tuple[str, ...]:
        self.expect("{", "'{' to open a set")
        values: list[str] = []
        if self.peek("}"):
            self.pos += 1
            return ()
        while True:
            values.append(self.parse_string())
            if self.peek("}"):
                self.pos += 1
                return tuple(values)
            self.expect(",", "',' or '}' in a set")


@lru_cache(maxsize=4096)
def parse_selector(text: str) -> Selector:
    """Parse `text` once; repeated calls with the same text return the cached `Selector`."""
    if len(text) > MAX_SELECTOR_LENGTH:
        raise SelectorError(text[:80], 0, f"selector longer than {MAX_SELECTOR_LENGTH} characters")
    return Selector(_Parser(text).parse())


def matches(selector: str, labels: Labels) -> bool:
    """Convenience: parse (cached) and evaluate."""
    return parse_selector(selector).evaluate(labels)
