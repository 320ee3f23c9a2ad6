"""Refuse, at load, a regex whose backtracking could hang ``span.end()``.

Match rules and normalisations run with Python's `re`, a backtracking engine, on the span
path, where ``(a+)+$`` takes minutes on one id. The core dependencies stay OpenTelemetry,
DuckDB and pyarrow, so rather than a linear-time engine every pattern is checked once, when
its file loads, by a small parser for the regex subset pricing rules need (``re``'s private
parser is off limits). It refuses:

- what can backtrack without bound or what it does not model: backreferences, lookbehind,
  atomic groups, possessive quantifiers, conditionals, comments and inline flags (ids are
  lower-cased: no flag is ever needed);
- a group repeated more than once whose body holds a quantifier, an alternation or a
  lookahead (``(a+)+``, ``(a|ab)*``): exponential;
- two unbounded quantifiers over overlapping characters with nothing required between them
  (``\\d+\\d*``): one quantifier says the same without the backtracking;
- a chain of quantifiers and alternations that can trade characters with one another, when
  its number of ways to split one id exceeds quadratic. Each link multiplies the choices
  (an unbounded quantifier: the longest id resolved, 256; ``?``: 2; ``{1,3}``: 3; an
  alternation: its branches) and the product must stay within 256**2: ``.*bedrock.*``
  passes; ``.*a.*a.*a`` (cubic: 20 ms on a 256-character id, one more ``.*a``: a second)
  does not.

Two quantifiers can trade characters only if one string fits both and every character the
pattern requires between them fits it too (the condition for polynomial backtracking). The
check tests that on character sets, so it may refuse a safe pattern but never passes one
that backtracks worse than quadratically; the 256-character cap on ids bounds the rest.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

_ASCII = (1 << 128) - 1
_MAX_NODES = 64
_OPTIONAL, _BRANCH, _LOOKAHEAD = 1, 2, 3  # context kinds
_BRACES = re.compile(r"\{(\d*)(?:(,)(\d*))?\}")
_OCTAL = re.compile(r"0[0-7]{0,2}|[0-7]{3}")
_OCTAL_IN_CLASS = re.compile(r"[0-7]{1,3}")
_REFUSED_GROUPS = (
    ("P=", "a backreference"), ("<=", "lookbehind"), ("<!", "lookbehind"), (">", "an atomic group"),
    ("(", "a conditional"), ("#", "a comment"),
)  # fmt: skip


@dataclass
class _Chars:
    """A set of characters: an exact ASCII bitmask, plus whether it may hold others."""

    mask: int = 0
    other: bool = False

    def add(self, chars: _Chars) -> None:
        self.mask |= chars.mask
        self.other = self.other or chars.other

    def meet(self, chars: _Chars) -> _Chars:
        return _Chars(self.mask & chars.mask, self.other and chars.other)

    def __bool__(self) -> bool:
        return bool(self.mask) or self.other


def _char(c: str) -> _Chars:
    return _Chars(1 << ord(c)) if ord(c) < 128 else _Chars(0, True)


def _escape_set(escape: str) -> _Chars:
    # `re` itself says which ASCII characters a class escape covers; all reach beyond ASCII.
    compiled = re.compile(escape)
    return _Chars(sum(1 << c for c in range(128) if compiled.fullmatch(chr(c))), True)


_CLASS_ESCAPES = {e: _escape_set("\\" + e) for e in "dDwWsS"}
_CONTROL = {"a": "\a", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}
_ANY = _Chars(_ASCII, True)
_DOT = _Chars(_ASCII & ~(1 << ord("\n")), True)


@dataclass
class _Token:
    """One character the pattern consumes, and the contexts (optional parts, branches,
    lookaheads) it sits in."""

    chars: _Chars
    ctx: list[int] = field(default_factory=list)


@dataclass
class _Node:
    """A choice point: a quantifier with a variable count, or an alternation."""

    text: str
    start: int  # its body is tokens[start:end]
    end: int
    ways: int  # how many ways it can match at one position, at most
    unbounded: bool
    chars: _Chars
    order: int = 0
    ctx: list[int] = field(default_factory=list)
    own: int | None = None  # the context of its body when it may match nothing
    implicit: bool = False


class UnsafeRegex(ValueError):
    """A pattern refused; the message says why, for the caller to prefix with where."""


def check_backtracking(pattern: str, *, search: bool, longest: int) -> None:
    """Raise `UnsafeRegex` unless ``pattern`` (which `re` compiles) backtracks at most
    quadratically on ids of up to ``longest`` characters. ``search``: the pattern is searched
    for in the id (``re.sub``), not matched against all of it (``fullmatch``)."""
    parser = _Parser(pattern, longest)
    parser.alternation(top=True)
    if parser.i != len(pattern):
        raise parser.refuse("an unbalanced parenthesis", parser.i)
    nodes = parser.nodes
    if search and not parser.anchored:
        # Searching tries every start position: a leading `.*` in all but name.
        nodes = [_Node("(search)", 0, 0, longest, True, _ANY, order=-1, implicit=True), *nodes]
    _check_chains(parser, sorted(nodes, key=lambda n: (not n.implicit, n.start, -n.end, -n.order)))


class _Parser:
    def __init__(self, pattern: str, longest: int) -> None:
        self.p = pattern
        self.i = 0
        self.longest = longest
        self.tokens: list[_Token] = []
        self.nodes: list[_Node] = []
        self.contexts: list[tuple[int, ...]] = []  # (kind,) or (_BRANCH, alternation, branch)
        self.lookaheads = 0
        self.anchored = False

    def refuse(self, what: str, at: int) -> UnsafeRegex:
        return UnsafeRegex(f"{what} at position {at} is not supported in pricing rules")

    def enclose(self, kind: tuple[int, ...], tokens: int, nodes: int) -> int:
        """Put everything parsed since (tokens, nodes) in a new context; return its id."""
        cid = len(self.contexts)
        self.contexts.append(kind)
        for item in (*self.tokens[tokens:], *self.nodes[nodes:]):
            item.ctx.append(cid)
        return cid

    def add_node(self, text: str, start: int, ways: int, unbounded: bool, own: int | None) -> None:
        chars = _Chars()
        for token in self.tokens[start:]:
            chars.add(token.chars)
        order = len(self.nodes)
        self.nodes.append(_Node(text, start, len(self.tokens), ways, unbounded, chars, order, own=own))
        if len(self.nodes) > _MAX_NODES:
            raise UnsafeRegex(
                f"more than {_MAX_NODES} quantifiers and alternations: split it into several rules"
            )

    def alternation(self, top: bool = False) -> None:
        at = self.i
        starts = [(len(self.tokens), len(self.nodes))]
        self.sequence()
        while self.p[self.i : self.i + 1] == "|":
            self.i += 1
            starts.append((len(self.tokens), len(self.nodes)))
            self.sequence()
        if top:
            self.anchored = len(starts) == 1 and self.p.startswith(("^", "\\A"))
        if len(starts) == 1:
            return
        alternation = len(self.contexts)
        ends = [*starts[1:], (len(self.tokens), len(self.nodes))]
        for branch, ((t0, n0), (t1, n1)) in enumerate(zip(starts, ends, strict=True)):
            cid = len(self.contexts)
            self.contexts.append((_BRANCH, alternation, branch))
            for item in (*self.tokens[t0:t1], *self.nodes[n0:n1]):
                item.ctx.append(cid)
        text = self.p[at : self.i]
        self.add_node(text if len(text) <= 40 else text[:37] + "...", starts[0][0], len(starts), False, None)

    def sequence(self) -> None:
        while self.i < len(self.p) and self.p[self.i] not in "|)":
            at, tokens, nodes, lookaheads = self.i, len(self.tokens), len(self.nodes), self.lookaheads
            kind = self.atom()
            bounds = self.quantifier()
            if bounds is None:
                continue
            low, high = bounds
            text = self.p[at : self.i]
            if kind != "char":
                raise self.refuse(f"a quantified {kind} {text!r}", at)
            if (high is None or high > 1) and (len(self.nodes) > nodes or self.lookaheads > lookaheads):
                raise UnsafeRegex(
                    f"{text!r} repeats a group holding a quantifier, alternation or lookahead: "
                    "backtracking can take exponential time"
                )
            own = self.enclose((_OPTIONAL,), tokens, nodes) if low == 0 else None
            if high != low:
                unbounded = high is None or high >= self.longest
                ways = self.longest if unbounded else high - low + 1  # type: ignore[operator]
                self.add_node(text, tokens, ways, unbounded, own)

    def quantifier(self) -> tuple[int, int | None] | None:
        c = self.p[self.i : self.i + 1]
        bounds: tuple[int, int | None]
        if c in ("*", "+", "?") and c:
            self.i += 1
            bounds = {"*": (0, None), "+": (1, None), "?": (0, 1)}[c]
        elif c == "{":
            found = _BRACES.match(self.p, self.i)
            if found is None or not (found.group(1) or found.group(2)):
                return None  # a literal brace, as `re` reads it
            low, comma, high = found.groups()
            self.i = found.end()
            bounds = (int(low or 0), (int(high) if high else None) if comma else int(low))
        else:
            return None
        if self.p[self.i : self.i + 1] == "+":
            raise self.refuse("a possessive quantifier", self.i - 1)
        if self.p[self.i : self.i + 1] == "?":
            self.i += 1  # lazy: the same choices, tried in another order
        return bounds

    def atom(self) -> str:
        at = self.i
        c = self.p[self.i]
        self.i += 1
        chars: _Chars | str | None
        if c == "(":
            return self.group(at)
        if c == "[":
            chars = self.char_class()
        elif c == ".":
            chars = _DOT
        elif c in "^$":
            return "anchor"
        elif c == "\\":
            chars = self.escape(in_class=False)
            if chars is None:
                return "anchor"
        else:
            chars = c
        self.tokens.append(_Token(_char(chars) if isinstance(chars, str) else chars))
        return "char"

    def group(self, at: int) -> str:
        lookahead = False
        if self.p[self.i : self.i + 1] == "?":
            head = self.p[self.i + 1 : self.i + 3]
            if head[:1] in (":", "=", "!"):
                lookahead = head[:1] != ":"
                self.i += 2
            elif head == "P<":
                self.i = self.p.index(">", self.i) + 1
            else:
                for prefix, name in _REFUSED_GROUPS:
                    if head.startswith(prefix):
                        raise self.refuse(f"{name} '(?{prefix}'", at)
                raise self.refuse(f"inline flags '(?{head[:1]}'", at)
        tokens, nodes = len(self.tokens), len(self.nodes)
        self.alternation()
        if self.p[self.i : self.i + 1] != ")":
            raise self.refuse("an unbalanced parenthesis", self.i)
        self.i += 1
        if not lookahead:
            return "char"
        self.lookaheads += 1
        self.enclose((_LOOKAHEAD,), tokens, nodes)  # consumes nothing: never separates two loops
        return "lookahead"

    def escape(self, *, in_class: bool) -> _Chars | str | None:
        """The class escape's set, the literal character, or None for an anchor."""
        at = self.i - 1
        c = self.p[self.i : self.i + 1]
        self.i += 1
        if c in _CLASS_ESCAPES:
            return _CLASS_ESCAPES[c]
        if c in ("b", "B", "A", "Z") and not in_class:
            return None
        if c == "b":
            return "\b"
        if c in _CONTROL:
            return _CONTROL[c]
        if c.isdigit():
            octal = (_OCTAL_IN_CLASS if in_class else _OCTAL).match(self.p, at + 1)
            if octal is None:
                raise self.refuse(f"a backreference '\\{c}'", at)
            self.i = octal.end()
            return chr(int(octal.group(0), 8))
        if c in ("x", "u", "U"):
            width = {"x": 2, "u": 4, "U": 8}[c]
            self.i += width
            return chr(int(self.p[self.i - width : self.i], 16))
        if c == "N":
            end = self.p.index("}", self.i)
            name = self.p[self.i + 1 : end]
            self.i = end + 1
            return unicodedata.lookup(name)
        if not c or c.isalnum():
            raise self.refuse(f"the escape '\\{c}'", at)
        return c

    def char_class(self) -> _Chars:
        negate = self.p[self.i : self.i + 1] == "^"
        self.i += negate
        chars = _Chars()
        first = True
        while first or self.p[self.i : self.i + 1] != "]":
            if self.i >= len(self.p):
                raise self.refuse("an unterminated character class", self.i)
            first = False
            low = self.class_item()
            after = self.p[self.i : self.i + 2]
            if after[:1] == "-" and len(after) == 2 and after != "-]":
                self.i += 1
                high = self.class_item()
                if not (isinstance(low, str) and isinstance(high, str)):
                    raise self.refuse("a range over a class escape", self.i)
                top = min(ord(high), 127)
                chars.add(_Chars(sum(1 << c for c in range(ord(low), top + 1)), ord(high) >= 128))
            else:
                chars.add(_char(low) if isinstance(low, str) else low)
        self.i += 1
        return _Chars(_ASCII & ~chars.mask, True) if negate else chars

    def class_item(self) -> _Chars | str:
        c = self.p[self.i]
        self.i += 1
        if c != "\\":
            return c
        found = self.escape(in_class=True)
        assert found is not None
        return found


def _check_chains(parser: _Parser, nodes: list[_Node]) -> None:
    """Refuse adjacent overlapping loops, then any chain with more than longest**2 ways."""
    longest = parser.longest
    budget = longest * longest
    best: list[int] = []
    previous: list[int | None] = []
    for j, node in enumerate(nodes):
        ways, before = node.ways, None
        for i in range(j):
            mandatory = _linked(parser, nodes[i], node)
            if mandatory is None:
                continue
            if not mandatory and _adjacent(parser, nodes[i], node):
                raise UnsafeRegex(
                    f"{nodes[i].text!r} and {node.text!r} can match the same characters back to back: "
                    "merge them into one"
                )
            if best[i] * node.ways > ways:
                ways, before = best[i] * node.ways, i
        best.append(ways)
        previous.append(before)
        if ways > budget:
            chain = [node.text]
            while before is not None:
                chain.append(nodes[before].text)
                before = previous[before]
            names = ", ".join(repr(t) for t in reversed(chain[-3:]))
            if len(chain) > 3:
                names += f" and {len(chain) - 3} more"
            raise UnsafeRegex(
                f"{names} can trade characters with one another: up to {ways:,} ways to split a "
                f"{longest}-character id (at most {budget:,})"
            )


def _linked(parser: _Parser, a: _Node, b: _Node) -> list[_Token] | None:
    """None when ``a`` and ``b`` cannot trade characters, else the tokens a match must
    consume between them (all fitting a string both could match)."""
    common = a.chars.meet(b.chars)
    if not common or _exclusive(parser, a, b):
        return None
    mandatory = _between(parser, a, b)
    return mandatory if all(t.chars.meet(common) for t in mandatory) else None


def _between(parser: _Parser, a: _Node, b: _Node) -> list[_Token]:
    """The tokens a match must consume after leaving ``a`` (or inside it, when ``b`` is
    nested in ``a``) to reach ``b``: those in no optional part, branch or lookahead other
    than ones holding ``a`` or ``b``."""
    low = a.end if b.start >= a.end else a.start
    kept = {*a.ctx, *b.ctx, a.own, b.own}
    return [
        t
        for t in parser.tokens[low : b.start]
        if all(c in kept and parser.contexts[c][0] != _LOOKAHEAD for c in t.ctx)
    ]


def _exclusive(parser: _Parser, a: _Node, b: _Node) -> bool:
    """True when ``a`` and ``b`` sit in different branches of one alternation."""
    contexts = parser.contexts
    branch_of = {contexts[c][1]: contexts[c][2] for c in a.ctx if contexts[c][0] == _BRANCH}
    for c in b.ctx:
        kind = contexts[c]
        if kind[0] == _BRANCH and branch_of.get(kind[1], kind[2]) != kind[2]:
            return True
    return False


def _adjacent(parser: _Parser, a: _Node, b: _Node) -> bool:
    """Two written unbounded loops in a row: not nested, neither in a lookahead (which the
    chains already count), nothing required between them."""
    if a.implicit or not (a.unbounded and b.unbounded) or b.start < a.end:
        return False
    return all(parser.contexts[c][0] != _LOOKAHEAD for c in (*a.ctx, *b.ctx))
