"""JSON Schema ``pattern`` (an ECMA-262 regex) -> a GBNF expression for a JSON string's contents.

The subset is the one llama.cpp's own ``json-schema-to-grammar`` handles: literals and escapes
(``\\t \\n \\r \\f \\v \\0 \\xHH \\uHHHH \\u{H..}``, escaped punctuation), ``.``, classes ``[...]`` /
``[^...]`` with ranges and ``\\d \\w \\s \\D \\W \\S``, groups ``(...)``, ``(?:...)``, named groups,
alternation, the quantifiers ``* + ? {n} {n,} {n,m}`` (lazy forms too: same language) and ``^``/``$``
at the ends of a top-level alternative. Patterns search (JSON Schema semantics): an unanchored side
admits any text there.

Refused, naming the feature: lookahead/lookbehind, backreferences, word boundaries, Unicode property
escapes, inline flags, anchors inside groups. The grammar may admit fewer strings than the regex
(never more): ``\\d``/``\\w``/``\\s`` are their ASCII members, and a negated class, ``.`` or
``\\D``/``\\W``/``\\S`` never produce ``"``, ``\\`` or control characters (a JSON string would have to
escape them), so every string it admits matches under ECMA-262, Python ``re`` and Rust ``regex``
(pydantic's engine) alike.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

__all__ = ["PatternError", "CompiledPattern", "compile_pattern"]

_MAX_CODE = 0x10FFFF
_DIGIT = [(0x30, 0x39)]
_WORD = [(0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)]
_SPACE = [(0x09, 0x0A), (0x0C, 0x0D), (0x20, 0x20)]  # \t \n \f \r and space; \v has no short JSON escape
# What a negated class, "." or \D/\W/\S may produce: printable, no quote/backslash, no surrogates.
_PRINTABLE = [(0x20, 0x21), (0x23, 0x5B), (0x5D, 0xD7FF), (0xE000, _MAX_CODE)]
_PRINTABLE_ASCII = [(0x20, 0x21), (0x23, 0x5B), (0x5D, 0x7E)]
_LINE_ENDS = [(0x0A, 0x0A), (0x0D, 0x0D), (0x2028, 0x2029)]
_SIMPLE_ESCAPES = {"t": "\t", "n": "\n", "r": "\r", "f": "\f", "v": "\v", "0": "\0"}


class PatternError(ValueError):
    """The pattern uses a regex feature a grammar cannot express (or is not a valid regex)."""


Ranges = list[tuple[int, int]]


def _norm(ranges: Ranges) -> Ranges:
    out: Ranges = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def _minus(universe: Ranges, remove: Ranges) -> Ranges:
    out: Ranges = []
    remove = _norm(remove)
    for lo, hi in _norm(universe):
        cur = lo
        for rlo, rhi in remove:
            if rhi < cur or rlo > hi:
                continue
            if rlo > cur:
                out.append((cur, rlo - 1))
            cur = max(cur, rhi + 1)
        if cur <= hi:
            out.append((cur, hi))
    return out


def _intersect(a: Ranges, b: Ranges) -> Ranges:
    out: Ranges = []
    for alo, ahi in _norm(a):
        for blo, bhi in _norm(b):
            lo, hi = max(alo, blo), min(ahi, bhi)
            if lo <= hi:
                out.append((lo, hi))
    return _norm(out)


# --- AST ---------------------------------------------------------------------------------------


@dataclass
class _Chars:
    ranges: Ranges


@dataclass
class _Group:
    alts: list[list[_Item]]


@dataclass
class _Item:
    atom: _Chars | _Group
    lo: int = 1
    hi: int | None = 1


@dataclass(frozen=True)
class CompiledPattern:
    """``expr``: GBNF for the string's contents (JSON-escaped); lengths in characters (None = unbounded)."""

    expr: str
    min_length: int
    max_length: int | None


class _Parser:
    def __init__(self, pattern: str) -> None:
        self.src = pattern
        self.pos = 0

    def fail(self, what: str) -> PatternError:
        return PatternError(f"pattern {self.src!r}: {what} (offset {self.pos}) is not supported in a grammar")

    def peek(self, n: int = 1) -> str:
        return self.src[self.pos : self.pos + n]

    def top(self) -> list[tuple[bool, list[_Item], bool]]:
        """Top-level alternatives as (anchored at start, items, anchored at end)."""
        out = []
        while True:
            start = self.peek() == "^"
            if start:
                self.pos += 1
            items = self.seq(top=True)
            end = self.peek() == "$"
            if end:
                self.pos += 1
            out.append((start, items, end))
            if self.peek() == "|":
                self.pos += 1
                continue
            if self.pos < len(self.src):
                ch = self.peek()
                raise self.fail("an anchor in the middle" if ch in "^$" else f"unbalanced {ch!r}")
            return out

    def alts(self) -> list[list[_Item]]:
        out = [self.seq(top=False)]
        while self.peek() == "|":
            self.pos += 1
            out.append(self.seq(top=False))
        return out

    def seq(self, *, top: bool) -> list[_Item]:
        items: list[_Item] = []
        while self.pos < len(self.src):
            ch = self.peek()
            if ch in "|)":
                break
            if ch == "$" and top and (self.pos + 1 == len(self.src) or self.src[self.pos + 1] == "|"):
                break
            if ch in "^$":
                raise self.fail("an anchor (^ or $) inside a group or in the middle")
            atom = self.atom()
            items.append(self.quantified(atom))
        return items

    def quantified(self, atom: _Chars | _Group) -> _Item:
        ch = self.peek()
        lo: int
        hi: int | None
        if ch == "*":
            lo, hi = 0, None
        elif ch == "+":
            lo, hi = 1, None
        elif ch == "?":
            lo, hi = 0, 1
        elif ch == "{":
            end = self.src.find("}", self.pos)
            body = self.src[self.pos + 1 : end] if end > 0 else ""
            parts = body.split(",")
            if (
                end < 0
                or len(parts) > 2
                or not parts[0].isdigit()
                or (len(parts) == 2 and parts[1] and not parts[1].isdigit())
            ):
                raise self.fail("a '{' that is not a quantifier {n}, {n,} or {n,m}")
            lo = int(parts[0])
            hi = lo if len(parts) == 1 else (int(parts[1]) if parts[1] else None)
            if hi is not None and hi < lo:
                raise self.fail(f"quantifier {{{body}}} with max < min")
            self.pos = end
        else:
            return _Item(atom)
        self.pos += 1
        if self.peek() == "?":
            self.pos += 1  # lazy: same language
        elif self.peek() == "+":
            raise self.fail("a possessive quantifier")
        if self.peek() in ("*", "+", "?", "{"):
            raise self.fail("a quantifier on a quantifier")
        return _Item(atom, lo, hi)

    def atom(self) -> _Chars | _Group:
        ch = self.peek()
        if ch == "(":
            return self.group()
        if ch == "[":
            return self.char_class()
        if ch == ".":
            self.pos += 1
            return _Chars(_minus(_PRINTABLE, _LINE_ENDS))
        if ch == "\\":
            return self.escape(in_class=False)
        if ch in "*+?{":
            raise self.fail(f"a quantifier {ch!r} with nothing to repeat")
        self.pos += 1
        return _Chars([(ord(ch), ord(ch))])

    def group(self) -> _Group:
        self.pos += 1
        if self.peek() == "?":
            head = self.peek(3)
            if head.startswith("?:"):
                self.pos += 2
            elif head in ("?<=", "?<!"):
                raise self.fail("a lookbehind (?<= / (?<!")
            elif head.startswith(("?=", "?!")):
                raise self.fail("a lookahead (?= / (?!")
            elif head.startswith(("?<", "?P<")):
                end = self.src.find(">", self.pos)
                if end < 0:
                    raise self.fail("an unterminated group name")
                self.pos = end + 1
            else:
                raise self.fail("inline flags or an unknown group (?...)")
        alts = self.alts()
        if self.peek() != ")":
            raise self.fail("an unclosed '('")
        self.pos += 1
        return _Group(alts)

    def escape(self, *, in_class: bool) -> _Chars:
        self.pos += 1
        if self.pos >= len(self.src):
            raise self.fail("a trailing backslash")
        ch = self.src[self.pos]
        self.pos += 1
        sets = {"d": _DIGIT, "w": _WORD, "s": _SPACE}
        if ch in sets:
            return _Chars(list(sets[ch]))
        if ch.lower() in sets:  # \D \W \S: the printable ASCII characters outside the class
            return _Chars(_minus(_PRINTABLE_ASCII, sets[ch.lower()]))
        if ch in _SIMPLE_ESCAPES:
            if ch == "0" and self.peek().isdigit():
                raise self.fail("an octal escape")
            return self.char(_SIMPLE_ESCAPES[ch])
        if ch == "x":
            return self.char(chr(self.hex_digits(2)))
        if ch == "u":
            if self.peek() == "{":
                end = self.src.find("}", self.pos)
                digits = self.src[self.pos + 1 : end] if end > 0 else ""
                try:
                    code = int(digits, 16)
                except ValueError:
                    raise self.fail("a bad \\u{...} escape") from None
                self.pos = end + 1
                return self.char(chr(code))
            return self.char(chr(self.hex_digits(4)))
        if ch.isdigit():
            raise self.fail(f"a backreference \\{ch}")
        if ch == "k":
            raise self.fail("a named backreference \\k<...>")
        if ch in "bB":
            raise self.fail("a backspace [\\b]" if in_class else f"a word boundary \\{ch}")
        if ch in "pP":
            raise self.fail(f"a Unicode property escape \\{ch}{{...}}")
        if ch.isalnum():
            raise self.fail(f"the escape \\{ch}")
        return self.char(ch)  # escaped punctuation: \. \- \/ \( ...

    def hex_digits(self, n: int) -> int:
        digits = self.src[self.pos : self.pos + n]
        if len(digits) != n or any(c not in "0123456789abcdefABCDEF" for c in digits):
            raise self.fail(f"a bad hex escape (needs {n} hex digits)")
        self.pos += n
        return int(digits, 16)

    @staticmethod
    def char(ch: str) -> _Chars:
        return _Chars([(ord(ch), ord(ch))])

    def char_class(self) -> _Chars:
        self.pos += 1
        negated = self.peek() == "^"
        if negated:
            self.pos += 1
        ranges: Ranges = []
        unicode_sets = False
        first = True
        while True:
            if self.pos >= len(self.src):
                raise self.fail("an unclosed '['")
            ch = self.peek()
            if ch == "]" and not first:
                self.pos += 1
                break
            first = False
            if ch == "[" and self.peek(2) in ("[:", "[=", "[."):
                raise self.fail("a POSIX class [[:...:]]")
            if ch == "\\":
                unicode_sets |= self.src[self.pos + 1 : self.pos + 2] in ("d", "w", "s")
                low = self.escape(in_class=True)
            else:
                self.pos += 1
                low = self.char(ch)
            if self.peek() == "-" and self.src[self.pos + 1 : self.pos + 2] not in ("]", ""):
                if len(low.ranges) != 1 or low.ranges[0][0] != low.ranges[0][1]:
                    raise self.fail("a range from a class escape")
                self.pos += 1
                if self.peek() == "\\":
                    high = self.escape(in_class=True)
                else:
                    high = self.char(self.peek())
                    self.pos += 1
                if len(high.ranges) != 1 or high.ranges[0][0] != high.ranges[0][1]:
                    raise self.fail("a range to a class escape")
                a, b = low.ranges[0][0], high.ranges[0][0]
                if b < a:
                    raise self.fail("a character range out of order")
                ranges.append((a, b))
            else:
                ranges += low.ranges
        if not negated:
            return _Chars(_norm(ranges))
        # The complement of an ASCII \d/\w/\s would include Unicode digits, letters and spaces that
        # Unicode-aware engines put inside the class: keep such a complement to ASCII.
        universe = _PRINTABLE_ASCII if unicode_sets else _PRINTABLE
        return _Chars(_minus(universe, ranges))


# --- emission ----------------------------------------------------------------------------------


def _class_char(code: int) -> str:
    ch = chr(code)
    if ch.isascii() and ch.isalnum():
        return ch
    return f"\\x{code:02X}" if code < 0x80 else (f"\\u{code:04X}" if code <= 0xFFFF else f"\\U{code:08X}")


def _literal(text: str) -> str:
    out = []
    for ch in text:
        code = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _emit_chars(chars: _Chars) -> str:
    """JSON string content for one character of ``chars``: plain ones in a class, others escaped."""
    plain = _intersect(chars.ranges, _PRINTABLE)
    alts: list[str] = []
    if len(plain) == 1 and plain[0][0] == plain[0][1]:
        alts.append(_literal(chr(plain[0][0])))
    elif plain:
        body = "".join(_class_char(lo) if lo == hi else f"{_class_char(lo)}-{_class_char(hi)}" for lo, hi in plain)
        alts.append(f"[{body}]")
    for lo, hi in _minus(chars.ranges, _PRINTABLE):
        for code in range(lo, min(hi, lo + 64) + 1):  # quote, backslash, controls: few; surrogates: none
            if 0xD800 <= code <= 0xDFFF:
                continue
            alts.append(_literal(json.dumps(chr(code))[1:-1]))
    if not alts:
        raise PatternError("a character class that admits no character")
    return alts[0] if len(alts) == 1 else "(" + " | ".join(alts) + ")"


def _repeat(expr: str, lo: int, hi: int | None) -> str:
    if (lo, hi) == (1, 1):
        return expr
    if hi is None:
        return f"{expr}*" if lo == 0 else (f"{expr}+" if lo == 1 else f"{expr}{{{lo},}}")
    if (lo, hi) == (0, 1):
        return f"{expr}?"
    return f"{expr}{{{lo}}}" if lo == hi else f"{expr}{{{lo},{hi}}}"


def _emit_seq(items: list[_Item]) -> tuple[str, int, int | None]:
    """GBNF for a sequence, and the least and greatest number of characters it produces."""
    parts: list[str] = []
    lo_total = 0
    hi_total: int | None = 0
    for item in items:
        if item.hi == 0:
            continue
        hi: int | None
        if isinstance(item.atom, _Chars):
            expr, lo, hi = _emit_chars(item.atom), 1, 1
        else:
            inner, lo, hi = _emit_alts(item.atom.alts)
            expr = f"({inner})"
        parts.append(_repeat(expr, item.lo, item.hi))
        lo_total += lo * item.lo
        if hi_total is not None:
            hi_total = None if hi is None or item.hi is None else hi_total + hi * item.hi
    return " ".join(parts) or '""', lo_total, hi_total


def _emit_alts(alts: list[list[_Item]]) -> tuple[str, int, int | None]:
    emitted = [_emit_seq(seq) for seq in alts]
    lo = min(e[1] for e in emitted)
    his = [e[2] for e in emitted]
    hi = None if any(h is None for h in his) else max(h for h in his if h is not None)
    return " | ".join(e[0] for e in emitted), lo, hi


def compile_pattern(pattern: str, any_char: str) -> CompiledPattern:
    """Compile ``pattern``; ``any_char`` is the GBNF rule for any JSON string character (unanchored ends)."""
    if not isinstance(pattern, str):
        raise PatternError(f"pattern must be a string, got {type(pattern).__name__}")
    alts = _Parser(pattern).top()
    exprs: list[str] = []
    lo_all: list[int] = []
    hi_all: list[int | None] = []
    for start, items, end in alts:
        expr, lo, hi = _emit_seq(items)
        parts = [] if start else [f"{any_char}*"]
        parts.append(expr)
        if not end:
            parts.append(f"{any_char}*")
        if not (start and end):
            hi = None
        exprs.append(" ".join(p for p in parts if p != '""') or '""')
        lo_all.append(lo)
        hi_all.append(hi)
    hi_max = None if any(h is None for h in hi_all) else max(h for h in hi_all if h is not None)
    body = exprs[0] if len(exprs) == 1 else " | ".join(f"({e})" for e in exprs)
    return CompiledPattern(body, min(lo_all), hi_max)
