"""The `filter` query parameter of the Speech to text list operations: an OData filter expression, parsed and
compiled into a predicate. Used by the Speech emulator; pure, no I/O.

What the spec (2025-10-15) documents, and this module implements: `eq` and `ne` on every supported property;
`gt`, `ge`, `lt`, `le` on the date-time ones (createdDateTime, lastActionDateTime); `and`, `or`, `not` and
parentheses. String literals are in single quotes, a quote inside doubled (`'it''s'`); date-time literals are bare
ISO 8601 (`2022-02-01T11:00:00Z`, or a date, meaning its midnight UTC). Keywords are lowercase, property names as
the API spells them. Anything else (an unknown property, an operator a property does not support, a type mismatch,
a syntax error) is a FilterError whose message says what and where.

    expr       := term ('or' term)*
    term       := factor ('and' factor)*
    factor     := 'not' factor | '(' expr ')' | property op literal
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Callable, Mapping, Union

STRING, DATETIME = "string", "datetime"
COMPARISONS = ("eq", "ne", "gt", "ge", "lt", "le")
ORDERED = frozenset({"gt", "ge", "lt", "le"})
TOKEN = re.compile(
    r"""\s*(?:
      (?P<string>'(?:[^']|'')*')
    | (?P<datetime>\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})?)?)
    | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
    | (?P<paren>[()])
    | (?P<bad>\S)
    )""",
    re.VERBOSE,
)


class FilterError(ValueError):
    """The filter cannot be parsed or uses what the collection does not support."""


@dataclass(frozen=True)
class Comparison:
    property: str
    op: str
    value: str | datetime


@dataclass(frozen=True)
class Not:
    operand: Node


@dataclass(frozen=True)
class Junction:
    op: str  # "and" | "or"
    operands: tuple[Node, ...]


Node = Union[Comparison, Not, Junction]


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    at: int


def tokenize(text: str) -> list[Token]:
    tokens, position = [], 0
    while position < len(text):
        match = TOKEN.match(text, position)
        if match is None:  # only trailing whitespace is left
            break
        kind = match.lastgroup
        if kind == "bad":
            if match["bad"] == "'":
                raise FilterError(f"unterminated string literal at character {match.start('bad') + 1}")
            raise FilterError(f"unexpected {match['bad']!r} at character {match.start('bad') + 1}")
        if kind is not None:
            tokens.append(Token(kind, match[kind], match.start(kind)))
        position = match.end()
    return tokens


def parse_datetime(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise FilterError(f"{text!r} is not an ISO 8601 date-time") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class _Parser:
    def __init__(self, text: str, properties: Mapping[str, str]) -> None:
        self.text, self.properties = text, properties
        self.tokens = tokenize(text)
        self.next = 0

    def peek(self) -> Token | None:
        return self.tokens[self.next] if self.next < len(self.tokens) else None

    def take(self) -> Token:
        token = self.peek()
        if token is None:
            raise FilterError("the filter ends too early")
        self.next += 1
        return token

    def keyword(self, word: str) -> bool:
        token = self.peek()
        if token is not None and token.kind == "word" and token.text == word:
            self.next += 1
            return True
        return False

    def parse(self) -> Node:
        if not self.tokens:
            raise FilterError("the filter is empty")
        node = self.expr()
        extra = self.peek()
        if extra is not None:
            raise FilterError(f"unexpected {extra.text!r} at character {extra.at + 1}")
        return node

    def expr(self) -> Node:
        operands = [self.term()]
        while self.keyword("or"):
            operands.append(self.term())
        return operands[0] if len(operands) == 1 else Junction("or", tuple(operands))

    def term(self) -> Node:
        operands = [self.factor()]
        while self.keyword("and"):
            operands.append(self.factor())
        return operands[0] if len(operands) == 1 else Junction("and", tuple(operands))

    def factor(self) -> Node:
        if self.keyword("not"):
            return Not(self.factor())
        token = self.take()
        if token.kind == "paren" and token.text == "(":
            node = self.expr()
            closing = self.take()
            if closing.text != ")":
                raise FilterError(f"expected ')' at character {closing.at + 1}")
            return node
        if token.kind != "word":
            raise FilterError(f"expected a property name at character {token.at + 1}, found {token.text!r}")
        return self.comparison(token)

    def comparison(self, name: Token) -> Comparison:
        kind = self.properties.get(name.text)
        if kind is None:
            supported = ", ".join(self.properties)
            raise FilterError(f"unsupported property {name.text!r} (supported: {supported})")
        op = self.take()
        if op.kind != "word" or op.text not in COMPARISONS:
            raise FilterError(f"expected one of {', '.join(COMPARISONS)} after {name.text} at character {op.at + 1}")
        if op.text in ORDERED and kind != DATETIME:
            raise FilterError(f"{op.text} is supported for date-time properties only, not {name.text}")
        literal = self.take()
        if literal.kind == "string":
            value: str | datetime = literal.text[1:-1].replace("''", "'")
            if kind == DATETIME:
                value = parse_datetime(value)
        elif literal.kind == "datetime":
            if kind != DATETIME:
                raise FilterError(f"{name.text} is compared with a string literal in quotes, not {literal.text}")
            value = parse_datetime(literal.text)
        else:
            raise FilterError(f"expected a literal after {name.text} {op.text} at character {literal.at + 1}")
        return Comparison(name.text, op.text, value)


def parse(text: str, properties: Mapping[str, str]) -> Node:
    """The syntax tree of `text`; `properties` maps each supported property to STRING or DATETIME."""
    return _Parser(text, properties).parse()


def _compare(op: str, left: Any, right: Any) -> bool:
    if left is None:
        return op == "ne"
    if isinstance(left, datetime):
        left = left.replace(microsecond=0)  # the API shows second precision
    if op == "eq":
        return left == right
    if op == "ne":
        return left != right
    if op == "gt":
        return left > right
    if op == "ge":
        return left >= right
    if op == "lt":
        return left < right
    return left <= right


def compile_predicate(node: Node, value_of: Callable[[Any, str], Any]) -> Callable[[Any], bool]:
    """A predicate over items; `value_of(item, property)` gives a property's value (a str, an aware datetime, or
    None when the item has none: then only `ne` holds)."""
    if isinstance(node, Comparison):
        prop, op, value = node.property, node.op, node.value
        return lambda item: _compare(op, value_of(item, prop), value)
    if isinstance(node, Not):
        inner = compile_predicate(node.operand, value_of)
        return lambda item: not inner(item)
    parts = [compile_predicate(operand, value_of) for operand in node.operands]
    if node.op == "and":
        return lambda item: all(part(item) for part in parts)
    return lambda item: any(part(item) for part in parts)


def equalities(node: Node) -> list[tuple[str, str]]:
    """The `property eq 'value'` terms every match must satisfy (the top-level conjuncts): what an index can
    answer; the full predicate still decides."""
    terms = node.operands if isinstance(node, Junction) and node.op == "and" else (node,)
    return [
        (term.property, term.value)
        for term in terms
        if isinstance(term, Comparison) and term.op == "eq" and isinstance(term.value, str)
    ]
