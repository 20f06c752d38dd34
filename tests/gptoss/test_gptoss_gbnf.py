"""JSON Schema -> GBNF: unit tests, a pure-Python sampler of our grammars, and property tests
against the real llama-server (every grammar accepted, every constrained output schema-valid)."""

from __future__ import annotations

import functools
import json
import random
import re
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import dsrs
from dsrs_gptoss import gbnf, testing
from dsrs_gptoss.gbnf import UnsupportedSchemaError, schema_to_gbnf
from dsrs_gptoss.server import LlamaServer

# --- schema strategy --------------------------------------------------------------------------

NAMES = st.sampled_from(["a", "b", "name", "n2", "x_y", "count", "tags", "Kind"])
ASCII = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=6)


@st.composite
def string_schemas(draw: st.DrawFn) -> dict[str, Any]:
    hi = draw(st.integers(0, 8))
    lo = draw(st.integers(0, hi))
    s: dict[str, Any] = {"type": "string", "maxLength": hi}
    if lo:
        s["minLength"] = lo
    return s


@st.composite
def integer_schemas(draw: st.DrawFn) -> dict[str, Any]:
    s: dict[str, Any] = {"type": "integer"}
    lo = draw(st.none() | st.integers(-5000, 5000))
    width = draw(st.integers(0, 3000))
    if lo is not None:
        s["exclusiveMinimum" if draw(st.booleans()) else "minimum"] = lo
    if draw(st.booleans()):
        base = lo if lo is not None else draw(st.integers(-5000, 5000))
        s["exclusiveMaximum" if draw(st.booleans()) else "maximum"] = base + width + 2
    return s


@st.composite
def number_schemas(draw: st.DrawFn) -> dict[str, Any]:
    s: dict[str, Any] = {"type": "number"}
    lo = draw(st.none() | st.integers(-300, 300))
    if lo is not None:
        s["exclusiveMinimum" if draw(st.booleans()) else "minimum"] = lo
    if draw(st.booleans()):
        base = lo if lo is not None else draw(st.integers(-300, 300))
        s["exclusiveMaximum" if draw(st.booleans()) else "maximum"] = base + draw(st.integers(1, 500))
    return s


SCALARS = st.one_of(st.integers(-99, 99), ASCII, st.booleans(), st.none())
LEAVES = st.one_of(
    string_schemas(),
    st.sampled_from(sorted(gbnf.SUPPORTED_FORMATS)).map(lambda f: {"type": "string", "format": f}),
    integer_schemas(),
    number_schemas(),
    st.just({"type": "boolean"}),
    st.just({"type": "null"}),
    st.lists(SCALARS, min_size=1, max_size=4, unique_by=lambda v: json.dumps(v)).map(lambda v: {"enum": v}),
    SCALARS.map(lambda v: {"const": v}),
)
# One schema per JSON type, for oneOf branches that are disjoint by construction.
BY_TYPE: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "string": string_schemas(),
    "integer": integer_schemas(),
    "boolean": st.just({"type": "boolean"}),
    "null": st.just({"type": "null"}),
}


@st.composite
def object_schemas(draw: st.DrawFn, children: st.SearchStrategy[dict[str, Any]]) -> dict[str, Any]:
    props = draw(st.dictionaries(NAMES, children, min_size=1, max_size=4))
    required = [n for n in props if draw(st.booleans())]
    s: dict[str, Any] = {"type": "object", "properties": props}
    if required:
        s["required"] = required
    if draw(st.booleans()):
        s["additionalProperties"] = False
    return s


@st.composite
def array_schemas(draw: st.DrawFn, children: st.SearchStrategy[dict[str, Any]]) -> dict[str, Any]:
    hi = draw(st.integers(0, 3))
    lo = draw(st.integers(0, hi))
    return {"type": "array", "items": draw(children), "minItems": lo, "maxItems": hi}


@st.composite
def one_of_schemas(draw: st.DrawFn) -> dict[str, Any]:
    kinds = draw(st.lists(st.sampled_from(sorted(BY_TYPE)), min_size=2, max_size=3, unique=True))
    return {"oneOf": [draw(BY_TYPE[k]) for k in kinds]}


def extend(children: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    return st.one_of(
        object_schemas(children),
        array_schemas(children),
        st.lists(children, min_size=2, max_size=3).map(lambda b: {"anyOf": b}),
        one_of_schemas(),
        st.one_of(string_schemas(), integer_schemas(), object_schemas(LEAVES)).map(lambda s: {**s, "nullable": True}),
    )


@st.composite
def json_schemas(draw: st.DrawFn) -> dict[str, Any]:
    schema = draw(st.recursive(LEAVES, extend, max_leaves=6))
    if draw(st.integers(0, 3)) == 0:  # some go through $defs/$ref
        return {
            "$defs": {"Item": schema},
            "type": "object",
            "properties": {"item": {"$ref": "#/$defs/Item"}},
            "required": ["item"],
            "additionalProperties": False,
        }
    return schema


def to_standard(schema: Any) -> Any:
    """OpenAPI ``nullable: true`` as standard JSON Schema (what the jsonschema validator understands)."""
    if isinstance(schema, dict):
        out = {k: to_standard(v) for k, v in schema.items() if k != "nullable"}
        if schema.get("nullable") is True:
            return {"anyOf": [out, {"type": "null"}]}
        return out
    if isinstance(schema, list):
        return [to_standard(v) for v in schema]
    return schema


def validate(instance: Any, schema: dict[str, Any]) -> None:
    std = to_standard(schema)
    jsonschema.Draft202012Validator(std, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER).validate(
        instance
    )


# --- a small GBNF sampler (independent of llama.cpp) ----------------------------------------------

Node = tuple[Any, ...]
_TOKEN = re.compile(
    r'\s*(?:(?P<lit>"(?:[^"\\]|\\.)*")|(?P<cls>\[(?:[^\]\\]|\\.)*\])|(?P<name>[a-zA-Z0-9-]+)|(?P<op>[()|?*+])'
    r"|(?P<rep>\{\d+(?:,\d*)?\}))"
)


def _unescape_marked(body: str) -> list[tuple[str, bool]]:
    """Characters of a GBNF literal or class body, each with whether it was written escaped."""
    out, i = [], 0
    while i < len(body):
        ch = body[i]
        if ch == "\\":
            nxt = body[i + 1]
            width = {"x": 2, "u": 4, "U": 8}.get(nxt)
            if width:
                out.append((chr(int(body[i + 2 : i + 2 + width], 16)), True))
                i += 2 + width
                continue
            out.append(({"n": "\n", "r": "\r", "t": "\t"}.get(nxt, nxt), True))
            i += 2
            continue
        out.append((ch, False))
        i += 1
    return out


def _unescape(body: str) -> list[str]:
    return [ch for ch, _ in _unescape_marked(body)]


def _parse_alts(tokens: list[tuple[str, str]], pos: int) -> tuple[Node, int]:
    alts: list[list[Node]] = [[]]
    while pos < len(tokens):
        kind, text = tokens[pos]
        if kind == "op" and text == ")":
            break
        if kind == "op" and text == "|":
            alts.append([])
            pos += 1
            continue
        if kind == "op" and text == "(":
            node, pos = _parse_alts(tokens, pos + 1)
            pos += 1  # ")"
        elif kind == "lit":
            node = ("lit", "".join(_unescape(text[1:-1])))
            pos += 1
        elif kind == "cls":
            node = ("cls", text)
            pos += 1
        else:
            node = ("ref", text)
            pos += 1
        while pos < len(tokens) and (tokens[pos][0] == "rep" or tokens[pos][1] in ("?", "*", "+")):
            op = tokens[pos][1]
            lo, hi = {"?": (0, 1), "*": (0, None), "+": (1, None)}.get(op, (0, 0))
            if op.startswith("{"):
                parts = op[1:-1].split(",")
                lo = int(parts[0])
                hi = lo if len(parts) == 1 else (int(parts[1]) if parts[1] else None)
            node = ("rep", node, lo, hi)
            pos += 1
        alts[-1].append(node)
    return ("alt", [("seq", a) for a in alts]), pos


def parse_gbnf(text: str) -> dict[str, Node]:
    rules = {}
    for line in text.strip().splitlines():
        name, _, body = line.partition(" ::= ")
        tokens = [(m.lastgroup or "", m.group(m.lastgroup or "")) for m in _TOKEN.finditer(body)]
        rules[name] = _parse_alts(tokens, 0)[0]
    return rules


@functools.lru_cache(maxsize=4096)
def _class_chars(cls: str) -> list[str]:
    """Members of a GBNF class (ranges cut at U+052F: a sampler may draw from a subset)."""
    negated = cls.startswith("[^")
    marked = _unescape_marked(cls[2:-1] if negated else cls[1:-1])
    chars = [ch for ch, _ in marked]
    members: set[str] = set()
    i = 0
    while i < len(chars):
        if i + 2 < len(chars) and chars[i + 1] == "-" and not marked[i + 1][1]:  # an escaped "-" is literal
            members.update(chr(c) for c in range(ord(chars[i]), min(ord(chars[i + 2]), 0x52F) + 1))
            i += 3
        else:
            members.add(chars[i])
            i += 1
    if negated:
        return [chr(c) for c in range(0x20, 0x7F) if chr(c) not in members]
    return sorted(members)


def sample(rules: dict[str, Node], rng: random.Random) -> str:
    out: list[str] = []

    def gen(node: Node, depth: int) -> None:
        kind = node[0]
        if kind == "lit":
            out.append(node[1])
        elif kind == "cls":
            out.append(rng.choice(_class_chars(node[1])))
        elif kind == "ref":
            gen(rules[node[1]], depth + 1)
        elif kind == "seq":
            for child in node[1]:
                gen(child, depth)
        elif kind == "alt":
            options = node[1]
            # Deep down, prefer the shortest alternative so recursive grammars terminate.
            gen(min(options, key=lambda o: len(repr(o))) if depth > 30 else rng.choice(options), depth)
        elif kind == "rep":
            _, child, lo, hi = node
            top = hi if hi is not None else lo + (3 if depth < 30 else 0)
            for _ in range(rng.randint(lo, top)):
                gen(child, depth + 1)

    gen(rules["root"], 0)
    return "".join(out)


# --- unit tests -------------------------------------------------------------------------------


def test_object_with_required_and_optional_properties() -> None:
    schema = {
        "type": "object",
        "properties": {"a": {"type": "integer"}, "b": {"type": "string", "maxLength": 3}, "c": {"type": "boolean"}},
        "required": ["b"],
        "additionalProperties": False,
    }
    rules = parse_gbnf(schema_to_gbnf(schema))
    rng = random.Random(1)
    seen_keys: set[frozenset[str]] = set()
    for _ in range(300):
        doc = json.loads(sample(rules, rng))
        validate(doc, schema)
        seen_keys.add(frozenset(doc))
    assert frozenset({"b"}) in seen_keys and frozenset({"a", "b", "c"}) in seen_keys


@pytest.mark.parametrize(
    ("schema", "good", "bad"),
    [
        ({"type": "integer", "minimum": -13, "maximum": 250}, ["-13", "0", "250", "99"], ["-14", "251", "007"]),
        ({"type": "integer", "exclusiveMinimum": 5, "exclusiveMaximum": 9}, ["6", "8"], ["5", "9"]),
        ({"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1}, ["0.5", "0.001"], ["0", "1", "1.5"]),
        ({"enum": ["x", 1, None]}, ['"x"', "1", "null"], ['"y"', "2"]),
        ({"type": "string", "format": "date"}, ['"2024-02-28"', '"1999-12-31"'], ['"2024-02-30"', '"2024-13-01"']),
        ({"type": "string", "format": "ipv4"}, ['"10.0.0.255"'], ['"256.1.1.1"']),
        ({"type": "string", "format": "uuid"}, ['"123e4567-e89b-12d3-a456-426614174000"'], ['"123"']),
    ],
)
def test_grammar_accepts_and_rejects(schema: dict[str, Any], good: list[str], bad: list[str]) -> None:
    rules = parse_gbnf(schema_to_gbnf(schema))
    matcher = Matcher(rules)
    for text in good:
        assert matcher.matches(text), text
    for text in bad:
        assert not matcher.matches(text), text


class Matcher:
    """Does a grammar derive a string? (backtracking over positions; fine for short strings)."""

    def __init__(self, rules: dict[str, Node]) -> None:
        self.rules = rules

    def matches(self, text: str) -> bool:
        return len(text) in self.ends(self.rules["root"], text, 0, 0)

    def ends(self, node: Node, text: str, pos: int, depth: int) -> set[int]:
        if depth > 200:
            return set()
        kind = node[0]
        if kind == "lit":
            return {pos + len(node[1])} if text.startswith(node[1], pos) else set()
        if kind == "cls":
            return {pos + 1} if pos < len(text) and self.in_class(node[1], text[pos]) else set()
        if kind == "ref":
            return self.ends(self.rules[node[1]], text, pos, depth + 1)
        if kind == "seq":
            positions = {pos}
            for child in node[1]:
                positions = {e for p in positions for e in self.ends(child, text, p, depth + 1)}
            return positions
        if kind == "alt":
            return {e for o in node[1] for e in self.ends(o, text, pos, depth + 1)}
        _, child, lo, hi = node
        result: set[int] = {pos} if lo == 0 else set()
        frontier, count = {pos}, 0
        while frontier and (hi is None or count < hi) and count <= len(text):
            frontier = {e for p in frontier for e in self.ends(child, text, p, depth + 1)}
            count += 1
            if count >= lo:
                result |= frontier
        return result

    @staticmethod
    def in_class(cls: str, ch: str) -> bool:
        return ch in _class_chars(cls)


@pytest.mark.parametrize(
    ("schema", "fragment"),
    [
        ({"type": "string", "pattern": "^(?!a)b$"}, "a lookahead"),
        ({"type": "array", "items": {"type": "string"}, "uniqueItems": True}, "uniqueItems"),
        ({"not": {"type": "string"}}, "'not'"),
        ({"type": "string", "format": "uri"}, "format 'uri'"),
        ({"oneOf": [{"type": "integer"}, {"type": "number"}]}, "may both match"),
        ({"$ref": "https://example.com/s.json"}, "only local refs"),
        ({"$ref": "#/$defs/Missing"}, "points to nothing"),
        ({"allOf": [{"type": "string"}, {"maxLength": 3}]}, "allOf"),
        ({"type": "integer", "minimum": 5, "maximum": 4}, "no integer"),
        ({"type": "object", "properties": {"a": {"type": "integer"}}, "patternProperties": {}}, "patternProperties"),
        ({"type": "integer", "multipleOf": 3}, "multipleOf"),
    ],
)
def test_unsupported_keywords_raise_clear_errors(schema: dict[str, Any], fragment: str) -> None:
    with pytest.raises(UnsupportedSchemaError, match=re.escape(fragment)) as info:
        schema_to_gbnf(schema)
    assert str(info.value).startswith("JSON schema at #")


def test_nested_path_in_error() -> None:
    with pytest.raises(UnsupportedSchemaError, match=re.escape("#/properties/tags/items")):
        schema_to_gbnf({"type": "object", "properties": {"tags": {"type": "array", "items": {"pattern": "(a)\\1"}}}})


def test_recursive_ref_and_pydantic_style_schema() -> None:
    schema = {
        "$defs": {
            "Node": {
                "type": "object",
                "properties": {
                    "value": {"type": "integer", "minimum": 0, "maximum": 9},
                    "next": {"anyOf": [{"$ref": "#/$defs/Node"}, {"type": "null"}]},
                },
                "required": ["value", "next"],
                "title": "Node",
            }
        },
        "allOf": [{"$ref": "#/$defs/Node"}],
    }
    rules = parse_gbnf(schema_to_gbnf(schema))
    rng = random.Random(3)
    for _ in range(100):
        validate(json.loads(sample(rules, rng)), schema)


def test_oneof_tagged_union_is_accepted() -> None:
    schema = {
        "oneOf": [
            {"type": "object", "properties": {"kind": {"const": "a"}, "x": {"type": "integer"}}, "required": ["kind"]},
            {"type": "object", "properties": {"kind": {"const": "b"}}, "required": ["kind"]},
        ]
    }
    rules = parse_gbnf(schema_to_gbnf(schema))
    rng = random.Random(4)
    for _ in range(50):
        validate(json.loads(sample(rules, rng)), schema)


def test_needs_own_grammar_only_for_formats_llama_cpp_ignores() -> None:
    assert gbnf.needs_own_grammar({"type": "object", "properties": {"e": {"type": "string", "format": "email"}}})
    assert not gbnf.needs_own_grammar({"type": "string", "format": "date"})


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schema=json_schemas(), seed=st.integers(0, 2**16))
def test_property_every_schema_converts_and_samples_validate(schema: dict[str, Any], seed: int) -> None:
    """Soundness without llama.cpp: random derivations of our grammar are valid JSON for the schema."""
    grammar = schema_to_gbnf(schema)
    rules = parse_gbnf(grammar)
    rng = random.Random(seed)
    for _ in range(5):
        text = sample(rules, rng)
        validate(json.loads(text), schema)


# --- against the real llama-server --------------------------------------------------------------


@pytest.mark.integration
@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(schema=json_schemas(), seed=st.integers(0, 2**16))
def test_property_real_server_accepts_grammar_and_output_validates(
    tiny_server: LlamaServer, schema: dict[str, Any], seed: int
) -> None:
    # Random weights sample the control tokens <unk>/<s> as often as any other; llama.cpp matches the
    # grammar against their "<s>" text but writes nothing to the output, so they are banned here.
    lm = dsrs.LM(
        "gptoss:tiny",
        base_url=tiny_server.base_url,
        max_tokens=1500,
        temperature=1.0,
        seed=seed,
        structured="grammar",
        logit_bias=testing.TINY_CONTROL_TOKEN_BAN,
    )

    r = lm.call("Reply with JSON.", response_format=dsrs.ResponseFormat(name="out", schema=schema))
    assert r.finish_reason == "stop", (r.finish_reason, r.text[:200])
    validate(json.loads(r.text), schema)


@pytest.mark.integration
def test_server_rejects_a_broken_grammar_with_a_clear_error(tiny_server: LlamaServer) -> None:
    lm = dsrs.LM("gptoss:tiny", base_url=tiny_server.base_url, max_tokens=8, grammar="root ::= (")
    with pytest.raises(dsrs.InvalidRequestError):
        lm.call("x")
