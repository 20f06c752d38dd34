"""JSON Schema -> GBNF (llama.cpp grammar) converter.

``schema_to_gbnf(schema)`` returns a grammar whose every sentence is a JSON document valid against
``schema`` (soundness is the contract; the grammar may admit fewer documents than the schema, e.g.
it never emits undeclared extra properties, exponents or ``\\u`` escapes). Keywords it cannot
enforce raise :class:`UnsupportedSchemaError` naming the keyword and where it is, rather than
producing output that might not validate.

Covered: ``type`` (one or a list), objects (``properties``, ``required``, ``additionalProperties``
false/true/schema), arrays (``items``, ``prefixItems``, ``minItems``/``maxItems``), ``enum``,
``const``, strings (``minLength``/``maxLength``; ``pattern``, see :mod:`dsrs_gptoss.pattern`;
formats ``date``, ``time``, ``date-time``, ``duration``, ``uuid``, ``email``, ``ipv4``,
``hostname``), integers and numbers with ``minimum``/``maximum``/``exclusiveMinimum``/
``exclusiveMaximum``, ``anyOf``, ``oneOf`` (branches must be provably disjoint: by type, const/enum
values, a required property one branch has and another forbids with ``additionalProperties: false``,
or a required property whose values are disjoint), ``discriminator`` (pydantic's tagged unions: the
tag property is always written), single-schema ``allOf``, ``$ref`` into ``$defs``/``definitions``
(recursion included), ``nullable: true``. Annotations (``title``, ``description``, ``default``,
``examples`` ...) are ignored.

pydantic writes ``Decimal`` as ``anyOf [number, string]``; a bare string next to a bare number is
read that way and constrained to a decimal numeral (``"12.50"``), so the answer also validates
with pydantic (which parses the string as a number) rather than only with the schema.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

from dsrs_gptoss.pattern import PatternError, compile_pattern

__all__ = [
    "SUPPORTED_FORMATS",
    "OWN_FORMATS",
    "UnsupportedSchemaError",
    "schema_to_gbnf",
    "needs_own_grammar",
]

#: String formats the grammar enforces.
SUPPORTED_FORMATS = frozenset({"date", "time", "date-time", "duration", "uuid", "email", "ipv4", "hostname"})
#: Formats llama-server's own json_schema conversion ignores: a schema using them gets our grammar.
OWN_FORMATS = frozenset({"email", "ipv4", "hostname"})
#: Integer parts are capped at this many digits (keeps floats exact and generation finite).
MAX_INT_DIGITS = 15
#: Fraction digits of a generated number.
MAX_FRACTION_DIGITS = 6

_ANNOTATIONS = frozenset(
    {
        "title",
        "description",
        "default",
        "examples",
        "$schema",
        "$id",
        "$comment",
        "readOnly",
        "writeOnly",
        "deprecated",
        "$anchor",
        "contentMediaType",
        "$defs",  # definitions are read through $ref, from the root
        "definitions",
    }
)
_KNOWN = frozenset(
    {
        "type",
        "properties",
        "required",
        "additionalProperties",
        "items",
        "prefixItems",
        "minItems",
        "maxItems",
        "enum",
        "const",
        "minLength",
        "maxLength",
        "format",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "anyOf",
        "oneOf",
        "allOf",
        "$ref",
        "$defs",
        "definitions",
        "nullable",
        "uniqueItems",
        "minProperties",
        "maxProperties",
        "pattern",
        "discriminator",
    }
)
_TYPES = ("object", "array", "string", "integer", "number", "boolean", "null")

_PRIMITIVES: dict[str, str] = {
    "ws": '" "?',
    "char": r'[^"\\\x7F\x00-\x1F] | "\\" ["\\/bfnrt]',
    "string": r'"\"" char* "\""',
    "boolean": '"true" | "false"',
    "null": '"null"',
    "digit": "[0-9]",
    "integer": f'"-"? ("0" | [1-9] [0-9]{{0,{MAX_INT_DIGITS - 1}}})',
    "fraction": f'"." [0-9]{{1,{MAX_FRACTION_DIGITS}}}',
    "number": "integer fraction?",
    "value": "object | array | string | number | boolean | null",
    "object": '"{" ws ( string ws ":" ws value ( ws "," ws string ws ":" ws value )* )? ws "}"',
    "array": '"[" ws ( value ( ws "," ws value )* )? ws "]"',
    "hex": "[0-9a-fA-F]",
    "date": (
        '[0-9]{4} "-" ( ("0" [1-9] | "1" [0-2]) "-" ("0" [1-9] | "1" [0-9] | "2" [0-8])'
        ' | ("0" [13-9] | "1" [0-2]) "-" ("29" | "30")'
        ' | ("0" [13578] | "1" [02]) "-31" )'
    ),
    "time": '([01] [0-9] | "2" [0-3]) ":" [0-5] [0-9] ":" [0-5] [0-9] ("." [0-9]{1,6})? ("Z" | [+-] ([01] [0-9] | "2" [0-3]) ":" [0-5] [0-9])',
    "uuid": 'hex{8} "-" hex{4} "-" hex{4} "-" hex{4} "-" hex{12}',
    "label": "[a-z0-9] ([a-z0-9-]{0,20} [a-z0-9])?",
    "hostname": 'label ("." label){0,3}',
    "email": '[a-z0-9] [a-z0-9._+-]{0,20} "@" label ("." label){0,2} "." [a-z]{2,6}',
    "octet": '"25" [0-5] | "2" [0-4] [0-9] | "1" [0-9] [0-9] | [1-9] [0-9] | [0-9]',
    "ipv4": 'octet "." octet "." octet "." octet',
    # ISO 8601 durations as pydantic reads them (timedelta): days and/or a time part, no years/months.
    "duration": '"-"? "P" ( [0-9]{1,5} "D" ( "T" duration-time )? | "T" duration-time )',
    "duration-time": (
        '[0-9]{1,5} "H" ( [0-9]{1,5} "M" )? ( [0-9]{1,5} ("." [0-9]{1,6})? "S" )?'
        ' | [0-9]{1,5} "M" ( [0-9]{1,5} ("." [0-9]{1,6})? "S" )? | [0-9]{1,5} ("." [0-9]{1,6})? "S"'
    ),
    "decimal-string": '"\\"" "-"? ("0" | [1-9] [0-9]{0,14}) ("." [0-9]{1,6})? "\\""',
}
_PRIMITIVE_DEPS: dict[str, tuple[str, ...]] = {
    "string": ("char",),
    "number": ("integer", "fraction"),
    "value": ("object", "array", "string", "number", "boolean", "null"),
    "object": ("ws", "string", "value"),
    "array": ("ws", "value"),
    "uuid": ("hex",),
    "hostname": ("label",),
    "email": ("label",),
    "ipv4": ("octet",),
    "duration": ("duration-time",),
}


class UnsupportedSchemaError(ValueError):
    """The schema uses something the grammar cannot enforce. ``path`` is a JSON pointer to it."""

    def __init__(self, message: str, path: str = "#") -> None:
        super().__init__(f"JSON schema at {path}: {message}")
        self.path = path


def literal(text: str) -> str:
    """A GBNF string literal for ``text``."""
    out = []
    for ch in text:
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _json_literal(value: Any) -> str:
    return literal(json.dumps(value, ensure_ascii=True, separators=(",", ":"), sort_keys=False))


def _repeat(item: str, lo: int, hi: int | None) -> str:
    if hi is None:
        return f"({item}){{{lo},}}" if lo else f"({item})*"
    if lo == hi:
        return f"({item}){{{lo}}}" if lo else ""
    return f"({item}){{{lo},{hi}}}"


# --- integer ranges as digit patterns ------------------------------------------------------------


def _digits_range(lo: str, hi: str) -> list[str]:
    """Sequences of GBNF char classes matching the decimal strings in [lo, hi] (same length, no sign)."""
    if not lo:
        return [""]
    if lo == hi:
        return [literal(lo)]
    if lo[0] == hi[0]:
        return [f"{literal(lo[0])} {rest}".strip() for rest in _digits_range(lo[1:], hi[1:])]
    n = len(lo) - 1
    out: list[str] = []
    lo_rest_is_min = lo[1:] == "0" * n
    hi_rest_is_max = hi[1:] == "9" * n
    first_full = int(lo[0]) + (0 if lo_rest_is_min else 1)
    last_full = int(hi[0]) - (0 if hi_rest_is_max else 1)
    if not lo_rest_is_min:
        out += [f"{literal(lo[0])} {r}".strip() for r in _digits_range(lo[1:], "9" * n)]
    if first_full <= last_full:
        head = literal(str(first_full)) if first_full == last_full else f"[{first_full}-{last_full}]"
        out.append(f"{head} [0-9]{{{n}}}" if n else head)
    if not hi_rest_is_max:
        out += [f"{literal(hi[0])} {r}".strip() for r in _digits_range("0" * n, hi[1:])]
    return out


def _natural_range(lo: int, hi: int) -> list[str]:
    """Alternatives matching canonical decimals of the integers in [lo, hi], 0 <= lo <= hi."""
    out: list[str] = []
    length = len(str(lo))
    while lo <= hi:
        top = min(hi, 10**length - 1)
        out += _digits_range(str(lo), str(top))
        lo, length = top + 1, length + 1
    return out


def _int_range(lo: int | None, hi: int | None) -> str:
    """A GBNF body for the integers in [lo, hi] (None = unbounded, capped at MAX_INT_DIGITS digits)."""
    cap = 10**MAX_INT_DIGITS - 1
    lo = -cap if lo is None else max(lo, -cap)
    hi = cap if hi is None else min(hi, cap)
    if lo > hi:
        raise ValueError("empty integer range")
    alts: list[str] = []
    if lo < 0:
        neg_hi = min(hi, -1)
        alts += [f'"-" {a}' for a in _natural_range(-neg_hi, -lo)]
    if hi >= 0:
        alts += _natural_range(max(lo, 0), hi)
    return " | ".join(f"({a})" if " " in a else a for a in alts)


# --- the converter -------------------------------------------------------------------------------


class _Converter:
    def __init__(self, root: Mapping[str, Any]) -> None:
        self.root = root
        self.rules: dict[str, str] = {}
        self.by_key: dict[str, str] = {}
        self.refs: dict[str, str] = {}

    # rule bookkeeping
    def need(self, name: str) -> str:
        if name not in self.rules:
            self.rules[name] = _PRIMITIVES[name]
            for dep in _PRIMITIVE_DEPS.get(name, ()):
                self.need(dep)
        return name

    def add(self, hint: str, body: str) -> str:
        key = body
        if key in self.by_key:
            return self.by_key[key]
        base = re.sub(r"[^a-zA-Z0-9-]+", "-", hint).strip("-").lower() or "r"
        name, i = base, 1
        while name in self.rules or name in _PRIMITIVES or name == "root":  # "root" is the entry rule
            i += 1
            name = f"{base}-{i}"
        self.rules[name] = body
        self.by_key[key] = name
        return name

    # dispatch
    def visit(self, schema: Any, path: str, hint: str) -> str:
        """Return a GBNF expression (a rule name or a short body) for ``schema``."""
        if schema is True or schema == {}:
            return self.need("value")
        if schema is False:
            raise UnsupportedSchemaError("false schema admits no value", path)
        if not isinstance(schema, Mapping):
            raise UnsupportedSchemaError(f"a schema must be an object or boolean, got {type(schema).__name__}", path)
        for key in schema:
            if key not in _KNOWN and key not in _ANNOTATIONS:
                raise UnsupportedSchemaError(f"keyword {key!r} is not supported", path)
        if "$ref" in schema:
            others = [k for k in schema if k not in _ANNOTATIONS and k not in ("$ref", "$defs", "definitions")]
            if others:
                raise UnsupportedSchemaError(f"$ref with sibling keywords {others} is not supported", path)
            return self.ref(str(schema["$ref"]), path)
        if "allOf" in schema:
            parts = schema["allOf"]
            if not isinstance(parts, list) or len(parts) != 1:
                raise UnsupportedSchemaError("allOf with more than one schema is not supported", path + "/allOf")
            rest = {k: v for k, v in schema.items() if k != "allOf" and k not in _ANNOTATIONS}
            if rest:
                raise UnsupportedSchemaError(f"allOf with sibling keywords {sorted(rest)} is not supported", path)
            return self.visit(parts[0], path + "/allOf/0", hint)
        nullable = schema.get("nullable") is True
        if nullable:
            inner = {k: v for k, v in schema.items() if k != "nullable"}
            body = f"{self.visit(inner, path, hint)} | {self.need('null')}"
            return self.add(hint + "-or-null", body)
        if "const" in schema:
            self.check_only(schema, ("const", "type"), path)
            kinds = self.declared_types(schema)
            if kinds is not None and _json_type(schema["const"]) not in kinds:
                raise UnsupportedSchemaError(f"const does not have the declared type {schema.get('type')!r}", path)
            return _json_literal(schema["const"])
        if "enum" in schema:
            self.check_only(schema, ("enum", "type"), path)
            values = schema["enum"]
            if not isinstance(values, list) or not values:
                raise UnsupportedSchemaError("enum must be a non-empty list", path + "/enum")
            kinds = self.declared_types(schema)
            kept = [v for v in values if kinds is None or _json_type(v) in kinds]
            if not kept:
                raise UnsupportedSchemaError(f"no enum value has the declared type {schema.get('type')!r}", path)
            return self.add(hint, " | ".join(_json_literal(v) for v in kept))
        for key in ("anyOf", "oneOf"):
            if key in schema:
                return self.union(schema, key, path, hint)
        kind = schema.get("type")
        if isinstance(kind, list):
            if not kind:
                raise UnsupportedSchemaError("type list is empty", path + "/type")
            alts = [self.visit({**schema, "type": k}, f"{path}/type/{i}", f"{hint}-{k}") for i, k in enumerate(kind)]
            return self.add(hint, " | ".join(alts))
        if kind is None:
            kind = self.infer_type(schema)
            if kind is None:
                return self.need("value")
        if kind not in _TYPES:
            raise UnsupportedSchemaError(f"unknown type {kind!r}", path + "/type")
        return getattr(self, "t_" + kind)(schema, path, hint)  # type: ignore[no-any-return]

    @staticmethod
    def declared_types(schema: Mapping[str, Any]) -> set[str] | None:
        kind = schema.get("type")
        if kind is None:
            return None
        kinds = set(kind) if isinstance(kind, list) else {kind}
        if "number" in kinds:
            kinds.add("integer")
        return kinds

    @staticmethod
    def infer_type(schema: Mapping[str, Any]) -> str | None:
        if any(k in schema for k in ("properties", "additionalProperties", "required")):
            return "object"
        if any(k in schema for k in ("items", "prefixItems", "minItems", "maxItems")):
            return "array"
        if any(k in schema for k in ("minLength", "maxLength", "format", "pattern")):
            return "string"
        if any(k in schema for k in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")):
            return "number"
        return None

    @staticmethod
    def check_only(schema: Mapping[str, Any], allowed: tuple[str, ...], path: str) -> None:
        extra = [k for k in schema if k not in allowed and k not in _ANNOTATIONS]
        if extra:
            raise UnsupportedSchemaError(f"keywords {extra} next to {allowed[0]} are not supported", path)

    def ref(self, ref: str, path: str) -> str:
        if ref in self.refs:
            return self.refs[ref]
        if ref == "#":
            target: Any = self.root
        else:
            match = re.fullmatch(r"#/(\$defs|definitions)/(.+)", ref)
            if not match:
                raise UnsupportedSchemaError(f"only local refs '#/$defs/Name' are supported, got {ref!r}", path)
            defs = self.root.get(match.group(1)) or {}
            name = match.group(2).replace("~1", "/").replace("~0", "~")
            if name not in defs:
                raise UnsupportedSchemaError(f"$ref {ref!r} points to nothing", path)
            target = defs[name]
        rule = self.add("ref-" + ref.rsplit("/", 1)[-1], f"<pending {ref}>")
        self.refs[ref] = rule
        expr = self.visit(target, ref, rule + "-def")
        self.rules[rule] = expr
        del self.by_key[f"<pending {ref}>"]
        return rule

    def union(self, schema: Mapping[str, Any], key: str, path: str, hint: str) -> str:
        branches = schema[key]
        if not isinstance(branches, list) or not branches:
            raise UnsupportedSchemaError(f"{key} must be a non-empty list", path + "/" + key)
        rest = {
            k: v
            for k, v in schema.items()
            if k not in (key, "discriminator", "$defs", "definitions") and k not in _ANNOTATIONS
        }
        if rest:
            raise UnsupportedSchemaError(f"{key} with sibling keywords {sorted(rest)} is not supported", path)
        if "discriminator" in schema:
            branches = self.tagged(branches, schema["discriminator"], f"{path}/{key}")
        if key == "anyOf" and _is_decimal(branches):
            alts = [self.need("number"), self.need("decimal-string")]
            if len(branches) == 3:
                alts.append(self.need("null"))
            return self.add("decimal", " | ".join(alts))
        if key == "oneOf":
            for i in range(len(branches)):
                for j in range(i + 1, len(branches)):
                    if not self.disjoint(branches[i], branches[j]):
                        raise UnsupportedSchemaError(
                            f"oneOf branches {i} and {j} may both match one value; the grammar cannot "
                            "exclude overlaps (use anyOf, or distinguish the branches by type or const)",
                            path + "/oneOf",
                        )
        alts = [self.visit(b, f"{path}/{key}/{i}", f"{hint}-{i}") for i, b in enumerate(branches)]
        return self.add(hint, " | ".join(alts))

    def tagged(self, branches: list[Any], discriminator: Any, path: str) -> list[Any]:
        """The branches of a discriminated union with the tag property required in each.

        pydantic reads the tag first and fails without it, even where the branch gives it a default.
        """
        name = discriminator.get("propertyName") if isinstance(discriminator, Mapping) else None
        if not isinstance(name, str):
            raise UnsupportedSchemaError(
                "discriminator needs a propertyName", path.rsplit("/", 1)[0] + "/discriminator"
            )
        out = []
        for i, branch in enumerate(branches):
            target = self.resolve(branch)
            props = target.get("properties") if isinstance(target, Mapping) else None
            if not isinstance(props, Mapping) or name not in props or self.values_of(props[name]) is None:
                raise UnsupportedSchemaError(
                    f"discriminator {name!r}: branch {i} has no const/enum property {name!r}", f"{path}/{i}"
                )
            required = list(target.get("required") or ())
            out.append({**target, "required": required if name in required else [name, *required]})
        return out

    # --- disjointness for oneOf --------------------------------------------------------------

    def resolve(self, schema: Any) -> Any:
        seen = 0
        while isinstance(schema, Mapping) and "$ref" in schema and seen < 50:
            ref = str(schema["$ref"])
            match = re.fullmatch(r"#/(\$defs|definitions)/(.+)", ref)
            if not match:
                return schema
            schema = (self.root.get(match.group(1)) or {}).get(match.group(2), {})
            seen += 1
        return schema

    def types_of(self, schema: Any) -> set[str] | None:
        schema = self.resolve(schema)
        if not isinstance(schema, Mapping):
            return None
        if "const" in schema:
            return {_json_type(schema["const"])}
        if "enum" in schema and isinstance(schema["enum"], list):
            return {_json_type(v) for v in schema["enum"]}
        kind = schema.get("type")
        kinds = set(kind) if isinstance(kind, list) else {kind} if isinstance(kind, str) else None
        if kinds is None:
            inferred = self.infer_type(schema)
            kinds = {inferred} if inferred else None
        if kinds is not None and schema.get("nullable") is True:
            kinds.add("null")
        if kinds is not None and "number" in kinds:
            kinds.add("integer")
        return kinds

    def values_of(self, schema: Any) -> list[Any] | None:
        schema = self.resolve(schema)
        if isinstance(schema, Mapping):
            if "const" in schema:
                return [schema["const"]]
            if isinstance(schema.get("enum"), list):
                return list(schema["enum"])
        return None

    def disjoint(self, a: Any, b: Any, depth: int = 0) -> bool:
        """True only when no JSON value can match both ``a`` and ``b`` (False = not proven)."""
        if depth > 16:  # recursive models: stop looking rather than loop
            return False
        ta, tb = self.types_of(a), self.types_of(b)
        if ta is not None and tb is not None and not (ta & tb):
            return True
        va, vb = self.values_of(a), self.values_of(b)
        if va is not None and vb is not None:
            return not any(x == y and _json_type(x) == _json_type(y) for x in va for y in vb)
        for values, other in ((va, b), (vb, a)):
            if values is not None and all(self.excludes(other, v) for v in values):
                return True
        a, b = self.resolve(a), self.resolve(b)
        if isinstance(a, Mapping) and isinstance(b, Mapping) and ta == {"object"} and tb == {"object"}:
            ra, rb = set(a.get("required") or ()), set(b.get("required") or ())
            pa, pb = a.get("properties") or {}, b.get("properties") or {}
            for name in ra & rb:
                if name in pa and name in pb and self.disjoint(pa[name], pb[name], depth + 1):
                    return True
            # A property one branch requires and the other forbids (additionalProperties: false).
            if any(n not in pb for n in ra) and b.get("additionalProperties") is False:
                return True
            if any(n not in pa for n in rb) and a.get("additionalProperties") is False:
                return True
        return False

    def excludes(self, schema: Any, value: Any) -> bool:
        """``value`` provably fails ``schema`` (by type, or a string value outside maxLength/minLength)."""
        kinds = self.types_of(schema)
        if kinds is not None and _json_type(value) not in kinds:
            return True
        target = self.resolve(schema)
        if isinstance(value, str) and isinstance(target, Mapping) and not any(k in target for k in ("anyOf", "oneOf")):
            lo, hi = target.get("minLength"), target.get("maxLength")
            return (isinstance(lo, int) and len(value) < lo) or (isinstance(hi, int) and len(value) > hi)
        return False

    # --- types --------------------------------------------------------------------------------

    def t_null(self, schema: Mapping[str, Any], path: str, hint: str) -> str:
        return self.need("null")

    def t_boolean(self, schema: Mapping[str, Any], path: str, hint: str) -> str:
        return self.need("boolean")

    def t_string(self, schema: Mapping[str, Any], path: str, hint: str) -> str:
        fmt = schema.get("format")
        lo = int(schema.get("minLength", 0))
        hi = schema.get("maxLength")
        if "pattern" in schema:
            return self.pattern_string(schema["pattern"], fmt, lo, hi, path)
        if fmt is not None:
            if fmt not in SUPPORTED_FORMATS:
                raise UnsupportedSchemaError(
                    f"string format {fmt!r} is not supported (supported: {sorted(SUPPORTED_FORMATS)})", path
                )
            if lo or hi is not None:
                raise UnsupportedSchemaError("minLength/maxLength together with format are not supported", path)
            if fmt == "date-time":
                body = f'"\\"" {self.need("date")} "T" {self.need("time")} "\\""'
            else:
                body = f'"\\"" {self.need(fmt)} "\\""'
            return self.add(f"{fmt}-string", body)
        if hi is not None and int(hi) < lo:
            raise UnsupportedSchemaError(f"maxLength {hi} < minLength {lo}", path)
        if lo == 0 and hi is None:
            return self.need("string")
        self.need("char")
        chars = _repeat("char", lo, None if hi is None else int(hi))
        return self.add(f"string-{lo}-{hi if hi is not None else 'inf'}", f'"\\"" {chars} "\\""'.replace("  ", " "))

    def pattern_string(self, pattern: Any, fmt: Any, lo: int, hi: Any, path: str) -> str:
        if fmt is not None:
            raise UnsupportedSchemaError(f"pattern together with format {fmt!r} is not supported", path)
        try:
            compiled = compile_pattern(pattern, self.need("char"))
        except PatternError as exc:
            raise UnsupportedSchemaError(str(exc), path + "/pattern") from None
        if compiled.min_length < lo or (
            hi is not None and (compiled.max_length is None or compiled.max_length > int(hi))
        ):
            # A grammar cannot intersect a regex with a length range in general; fixed-length ones fit.
            raise UnsupportedSchemaError(
                f"pattern {pattern!r} admits {compiled.min_length}..{compiled.max_length or 'any'} characters, "
                f"more than minLength/maxLength {lo}..{hi if hi is not None else 'any'} allow; "
                "put the length into the pattern (e.g. {m,n}) and anchor it with ^...$",
                path,
            )
        return self.add("pattern", f'"\\"" ({compiled.expr}) "\\""')

    def bounds(self, schema: Mapping[str, Any], path: str) -> tuple[float | None, bool, float | None, bool]:
        lo: float | None = None
        hi: float | None = None
        lo_ex = hi_ex = False
        for key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
            value = schema.get(key)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise UnsupportedSchemaError(f"{key} must be a finite number (draft 2019+ form)", path)
        if "minimum" in schema:
            lo = schema["minimum"]
        if "exclusiveMinimum" in schema and (lo is None or schema["exclusiveMinimum"] >= lo):
            lo, lo_ex = schema["exclusiveMinimum"], True
        if "maximum" in schema:
            hi = schema["maximum"]
        if "exclusiveMaximum" in schema and (hi is None or schema["exclusiveMaximum"] <= hi):
            hi, hi_ex = schema["exclusiveMaximum"], True
        return lo, lo_ex, hi, hi_ex

    def t_integer(self, schema: Mapping[str, Any], path: str, hint: str) -> str:
        lo, lo_ex, hi, hi_ex = self.bounds(schema, path)
        ilo = None if lo is None else (math.floor(lo) + 1 if lo_ex else math.ceil(lo))
        ihi = None if hi is None else (math.ceil(hi) - 1 if hi_ex else math.floor(hi))
        if ilo is None and ihi is None:
            return self.need("integer")
        try:
            return self.add(f"int-{ilo}-{ihi}".replace("None", "inf"), _int_range(ilo, ihi))
        except ValueError:
            raise UnsupportedSchemaError(f"no integer lies within the bounds [{lo}, {hi}]", path) from None

    def t_number(self, schema: Mapping[str, Any], path: str, hint: str) -> str:
        lo, lo_ex, hi, hi_ex = self.bounds(schema, path)
        if lo is None and hi is None:
            return self.need("number")
        # A non-zero fraction: "i.f" lies strictly between i and i + 1, which keeps exclusive bounds simple.
        frac = self.add("fraction-nonzero", f'"." [0-9]{{0,{MAX_FRACTION_DIGITS - 1}}} [1-9]')
        alts: list[str] = []
        # Whole numbers in range, written without a fraction.
        ilo = None if lo is None else (math.floor(lo) + 1 if lo_ex else math.ceil(lo))
        ihi = None if hi is None else (math.ceil(hi) - 1 if hi_ex else math.floor(hi))
        if ilo is None or ihi is None or ilo <= ihi:
            alts.append(f"({_int_range(ilo, ihi)})")
        # i.f with i >= 0 lies in (i, i + 1): needs i >= lo and i + 1 <= hi.
        p_lo = 0 if lo is None else max(0, math.ceil(lo))
        p_hi = None if hi is None else math.floor(hi) - 1
        if p_hi is None or p_lo <= p_hi:
            alts.append(f"({_int_range(p_lo, p_hi)}) {frac}")
        # -k.f with k >= 0 lies in (-(k + 1), -k): needs k + 1 <= -lo and -k <= hi.
        n_hi = None if lo is None else math.floor(-lo) - 1
        n_lo = 0 if hi is None else max(0, math.ceil(-hi))
        if n_hi is None or n_lo <= n_hi:
            alts.append(f'"-" ({_int_range(n_lo, n_hi)}) {frac}')
        if not alts:
            raise UnsupportedSchemaError(f"no number lies within the bounds [{lo}, {hi}]", path)
        return self.add(f"num-{lo}-{hi}".replace("None", "inf").replace(".", "p"), " | ".join(alts))

    def t_array(self, schema: Mapping[str, Any], path: str, hint: str) -> str:
        if schema.get("uniqueItems") is True:
            raise UnsupportedSchemaError("uniqueItems is not supported", path)
        lo = int(schema.get("minItems", 0))
        hi_raw = schema.get("maxItems")
        hi = None if hi_raw is None else int(hi_raw)
        if hi is not None and hi < lo:
            raise UnsupportedSchemaError(f"maxItems {hi} < minItems {lo}", path)
        ws = self.need("ws")
        if "prefixItems" in schema:
            prefix = schema["prefixItems"]
            n = len(prefix)
            if lo > n or (hi is not None and hi < n):
                raise UnsupportedSchemaError("prefixItems with minItems/maxItems other than its length", path)
            parts = [self.visit(s, f"{path}/prefixItems/{i}", f"{hint}-{i}") for i, s in enumerate(prefix)]
            inner = f' {ws} "," {ws} '.join(parts)
            return self.add(hint, f'"[" {ws} {inner} {ws} "]"' if parts else f'"[" {ws} "]"')
        items = schema.get("items", True)
        if hi == 0 or items is False:
            if lo > 0:
                raise UnsupportedSchemaError("items: false with minItems > 0 admits no array", path)
            return self.add("empty-array", f'"[" {ws} "]"')
        item = self.visit(items, path + "/items", hint + "-item")
        more = _repeat(f'{ws} "," {ws} {item}', max(lo - 1, 0), None if hi is None else hi - 1)
        seq = f"{item} {more}".strip()
        body = f'"[" {ws} {seq} {ws} "]"' if lo > 0 else f'"[" {ws} ({seq})? {ws} "]"'
        return self.add(hint, body)

    def t_object(self, schema: Mapping[str, Any], path: str, hint: str) -> str:
        props: Mapping[str, Any] = schema.get("properties") or {}
        required = list(schema.get("required") or ())
        missing = [r for r in required if r not in props]
        additional = schema.get("additionalProperties", True)
        ws = self.need("ws")
        if missing and additional is False:
            raise UnsupportedSchemaError(f"required {missing} are not in properties", path)
        if missing:
            raise UnsupportedSchemaError(f"required {missing} without a schema in properties is not supported", path)
        if not props:
            return self.map_object(schema, additional, path, hint)
        if "minProperties" in schema or "maxProperties" in schema:
            raise UnsupportedSchemaError("minProperties/maxProperties with properties are not supported", path)
        names = list(props)
        kvs = []
        for name in names:
            value = self.visit(props[name], f"{path}/properties/{name}", f"{hint}-{name}")
            kvs.append(f'{_json_literal(name)} {ws} ":" {ws} {value}')
        n = len(names)
        # first[i]: properties i.. with none emitted yet; rest[i]: properties i.. after one was emitted.
        rest: list[str] = [""] * (n + 1)
        first: list[str] = [""] * (n + 1)
        for i in range(n - 1, -1, -1):
            tail = rest[i + 1]
            with_this = f'{ws} "," {ws} {kvs[i]} {tail}'.strip()
            if names[i] in required:
                rest[i] = self.add(f"{hint}-after-{i}", with_this)
            else:
                rest[i] = self.add(f"{hint}-after-{i}", f"{with_this} | {tail}" if tail else f"({with_this})?")
            lead = f"{kvs[i]} {tail}".strip()
            if names[i] in required:
                first[i] = self.add(f"{hint}-from-{i}", lead)
            else:
                alt = first[i + 1]
                first[i] = self.add(f"{hint}-from-{i}", f"{lead} | {alt}" if alt else f"({lead})?")
        return self.add(hint, f'"{{" {ws} {first[0]} {ws} "}}"')

    def map_object(self, schema: Mapping[str, Any], additional: Any, path: str, hint: str) -> str:
        ws = self.need("ws")
        lo = int(schema.get("minProperties", 0))
        hi_raw = schema.get("maxProperties")
        hi = None if hi_raw is None else int(hi_raw)
        if additional is False or hi == 0:
            if lo > 0:
                raise UnsupportedSchemaError("an object with no properties cannot have minProperties > 0", path)
            return self.add("empty-object", f'"{{" {ws} "}}"')
        if lo > 1:
            # Keys would have to be distinct; the grammar cannot promise that.
            raise UnsupportedSchemaError("minProperties > 1 without declared properties is not supported", path)
        value = self.visit(additional, path + "/additionalProperties", hint + "-value")
        # At most one entry: distinct keys cannot be enforced, and one key is always distinct.
        kv = f'{self.need("string")} {ws} ":" {ws} {value}'
        body = f'"{{" {ws} {kv} {ws} "}}"' if lo == 1 else f'"{{" {ws} ({kv})? {ws} "}}"'
        return self.add(hint, body)


def _is_decimal(branches: list[Any]) -> bool:
    """pydantic's ``Decimal`` (``Optional[Decimal]`` too): ``anyOf`` of a bare number, a bare string (and null)."""
    bare = []
    for branch in branches:
        if not isinstance(branch, Mapping) or {k for k in branch if k not in _ANNOTATIONS} != {"type"}:
            return False
        bare.append(branch["type"])
    return sorted(t for t in bare if t != "null") == ["number", "string"] and bare.count("null") <= 1


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "integer" if value.is_integer() else "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def schema_to_gbnf(schema: Mapping[str, Any] | bool) -> str:
    """Convert a JSON Schema to a GBNF grammar (root rule ``root``). Raises :class:`UnsupportedSchemaError`."""
    if isinstance(schema, bool):
        schema = {} if schema else {"not": {}}
    conv = _Converter(schema)
    expr = conv.visit(schema, "#", "root")
    rules = {"root": expr, **conv.rules}
    return "\n".join(f"{name} ::= {rules[name]}" for name in _reachable(rules)) + "\n"


_RULE_REF = re.compile(r'"(?:[^"\\]|\\.)*"|\[(?:[^\]\\]|\\.)*\]|([a-zA-Z0-9-]+)')


def _reachable(rules: Mapping[str, str]) -> list[str]:
    """Rule names reachable from ``root``, in first-use order (unused helper rules are dropped)."""
    order = ["root"]
    seen = {"root"}
    i = 0
    while i < len(order):
        for match in _RULE_REF.finditer(rules[order[i]]):
            name = match.group(1)
            if name and name in rules and name not in seen:
                seen.add(name)
                order.append(name)
        i += 1
    return order


def needs_own_grammar(schema: Any) -> bool:
    """True when ``schema`` uses a string format llama-server's own conversion ignores."""
    if isinstance(schema, Mapping):
        if schema.get("format") in OWN_FORMATS:
            return True
        return any(needs_own_grammar(v) for v in schema.values())
    if isinstance(schema, list):
        return any(needs_own_grammar(v) for v in schema)
    return False
