"""Reading and validating one mapping file into compiled expressions.

A mapping file is YAML (or TOML) data: JMESPath expressions and a few policy values. Everything is
checked when the file is loaded, so a typo fails at start-up with the file, the key and the problem,
never on the first sale. docs/mappings.md describes the format.

Errors: :class:`MappingConfigError` (a file is invalid) and :class:`MappingError` (one event cannot
be mapped: the event goes to ``failed`` with the message, and can be replayed once fixed).
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import jmespath
import yaml
from jmespath.exceptions import JMESPathError
from jmespath.parser import ParsedResult

from bridge.mapping.files import mapping_file
from bridge.mapping.functions import FRENCH_VAT_RATES, FUNCTION_NAMES
from bridge.mapping.mentions import MENTIONS
from bridge.mapping.shopify_lookup import metafields_of

KINDS = ("sale", "credit_note", "refund", "cancel", "customer_update")
LINE_KEYS = {
    "each",
    "title",
    "quantity",
    "amount",
    "discount",
    "tax",
    "rate",
    "includes_tax",
    "nature",
}
TAX_KEYS = {"destination", "exempt"}  # the tax: section: where the sale goes, the shop says exempt
REQUIRED = {
    "sale": ("key", "currency", "charged", "lines", "customer"),
    "credit_note": ("key", "currency", "charged", "lines", "invoice_key"),
    "refund": ("key", "invoice_key"),
    "cancel": ("key", "invoice_key"),
    "customer_update": ("customer",),
}
TOP_KEYS = {
    "kind", "use", "object", "enrich", "tables", "vat_rates", "skip", "fail", "key", "currency",
    "charged", "invoice_key", "customer", "lines", "invoice", "policy", "description",
    "skip_after_enrich", "full", "tax",
}  # fmt: skip
POLICY_KEYS = {
    "keep_source_vat",
    "send_email",
    "skip_zero",
    "reverse_charge",
    "rounding_title",
    "vat_gap_title",
    "information",
    "zero_vat_mention",
    "mentions",
}
EXPR_KEYS: tuple[str, ...] = ("key", "currency", "charged", "invoice_key", "full")
ENRICHERS = (
    "checkout_line_items",
    "checkout_session",
    "invoice_of_payment",
    "credit_note_of_refund",
    "charge_refund",
    "payment_details",
    "customer_metafields",
)


class MappingConfigError(Exception):
    """A mapping file is invalid. The message names the file, the key and the problem."""


class MappingError(Exception):
    """This event cannot be mapped (unexpected payload, amounts that do not add up)."""


@dataclass(frozen=True, slots=True, eq=False)
class Expr:
    """A JMESPath expression, compiled once by ``jmespath.compile``, and where it came from.

    Compared by identity: each is one place in one file.
    """

    text: str
    where: str  # "mappings/stripe/invoice.paid.yaml: invoice.title"
    parsed: ParsedResult
    key: str = ""  # "invoice.title", "lines[0].amount": the file's key that holds it


@dataclass(frozen=True, slots=True)
class Rule:
    when: Expr
    message: str


@dataclass(frozen=True, slots=True)
class LineSpec:
    each: Expr
    exprs: dict[str, Expr]
    fields: dict[str, Expr]


@dataclass(frozen=True, slots=True)
class ReverseCharge:
    enabled: bool = False
    home_country: str = "FR"


@dataclass(frozen=True, slots=True)
class Deployment:
    """The settings the builders read (``BRIDGE_VAT_REGIME``…), set on every file by the engine."""

    vat_regime: str = "normal"
    oss: bool = False
    zero_vat_mention: str | None = None  # BRIDGE_ZERO_VAT_MENTION
    line_nature: str = "none"  # none, bic or bnc: whether and how lines' nature is sent
    registry: Any = None  # a bridge.tax.vies.VatRegistry when BRIDGE_VIES_URL is set


@dataclass(frozen=True, slots=True)
class MappingSpec:
    """One mapping file, validated and compiled."""

    path: Path
    kind: str
    obj: Expr | None
    exprs: dict[str, Expr]  # key, currency, charged, invoice_key, customer.binding_key
    customer_fields: dict[str, Expr]
    invoice_fields: dict[str, Expr]
    lines: tuple[LineSpec, ...]
    skip: tuple[Rule, ...]
    fail: tuple[Rule, ...]
    enrich: dict[str, Expr]
    skip_found: tuple[Rule, ...]  # skip_after_enrich: rules that read what the look-ups found
    tables: dict[str, dict[str, Any]]
    vat_rates: tuple[Decimal, ...] = FRENCH_VAT_RATES
    skip_zero: bool = True
    keep_source_vat: bool = True
    send_email: bool = False
    reverse_charge: ReverseCharge = field(default_factory=ReverseCharge)
    rounding_title: str = "Ajustement d'arrondi"
    vat_gap_title: str = "Écart d'arrondi de TVA"
    information: str = "Avoir sur la facture n° {}"
    deployment: Deployment = field(default_factory=Deployment)  # set by the engine at load
    tax_exprs: dict[str, Expr] = field(default_factory=dict)  # the tax: section
    mentions: dict[str, str] = field(default_factory=lambda: dict(MENTIONS))
    zero_vat_mention: str | None = None  # the name of the mention an all-0 % invoice carries


def read_document(path: Path) -> dict[str, Any]:
    """The file's data; syntax errors become :class:`MappingConfigError` naming the file."""
    try:
        raw = path.read_text(encoding="utf-8")
        data = tomllib.loads(raw) if path.suffix == ".toml" else yaml.safe_load(raw)
    except (OSError, UnicodeDecodeError, yaml.YAMLError, tomllib.TOMLDecodeError) as exc:
        raise MappingConfigError(f"{path}: cannot read: {_one_line(exc)}") from None
    if not isinstance(data, dict):
        raise MappingConfigError(f"{path}: the file must be a mapping of keys to values")
    return data


def _one_line(exc: Exception) -> str:
    """A read error in one line: YAML's own message spans several, with a snippet of the file."""
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        return f"line {mark.line + 1}, column {mark.column + 1}: {exc.problem}"
    return " ".join(str(exc).split())


def load_spec(
    path: Path, user_dir: Path | None = None, _seen: tuple[Path, ...] = ()
) -> MappingSpec:
    """Read, validate and compile ``path``. ``use: other.event`` reuses that event's file."""
    data = read_document(path)
    if "use" in data:
        target = mapping_file(path.parent.name, str(data["use"]), user_dir)
        if target is None or target in _seen or set(data) - {"use", "description"}:
            raise MappingConfigError(
                f"{path}: use: must name another existing mapping of the same source, alone"
            )
        return load_spec(target, user_dir, (*_seen, path))
    return _Compiler(path, data).spec()


class _Compiler:
    def __init__(self, path: Path, data: dict[str, Any]) -> None:
        self.path = path
        self.data = data

    def fail(self, key: str, problem: str) -> MappingConfigError:
        return MappingConfigError(f"{self.path}: {key}: {problem}")

    def expr(self, key: str, value: Any) -> Expr:
        if isinstance(value, bool | int) or value is None:
            value = f"`{str(value).lower() if isinstance(value, bool) else value or 'null'}`"
        if not isinstance(value, str) or not value.strip():
            raise self.fail(key, "must be a JMESPath expression (a string)")
        try:
            parsed = jmespath.compile(value)
        except JMESPathError as exc:
            raise self.fail(key, f"invalid expression {value!r}: {exc}") from None
        self._check_functions(key, parsed.parsed)
        return Expr(value, f"{self.path}: {key}", parsed, key)

    def _check_functions(self, key: str, node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "function_expression":
                name = node.get("value")
                if name not in FUNCTION_NAMES and name not in _BUILTIN_FUNCTIONS:
                    raise self.fail(key, f"unknown function {name}()")
            for child in node.get("children", []):
                self._check_functions(key, child)

    def exprs(self, key: str, value: Any) -> dict[str, Expr]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(key, "must be a mapping of field names to expressions")
        return {str(k): self.expr(f"{key}.{k}", v) for k, v in value.items()}

    def rules(self, key: str, message_key: str) -> tuple[Rule, ...]:
        value = self.data.get(key) or []
        if not isinstance(value, list):
            raise self.fail(key, f"must be a list of {{if: expression, {message_key}: text}}")
        out = []
        for i, rule in enumerate(value):
            where = f"{key}[{i}]"
            if not isinstance(rule, dict) or set(rule) != {"if", message_key}:
                raise self.fail(where, f"must have exactly the keys 'if' and '{message_key}'")
            out.append(Rule(self.expr(f"{where}.if", rule["if"]), str(rule[message_key])))
        return tuple(out)

    def lines(self) -> tuple[LineSpec, ...]:
        value = self.data.get("lines")
        if value is None:
            return ()
        if not isinstance(value, list) or not value:
            raise self.fail("lines", "must be a non-empty list of line groups")
        out = []
        for i, group in enumerate(value):
            where = f"lines[{i}]"
            if not isinstance(group, dict):
                raise self.fail(where, "must be a mapping")
            unknown = set(group) - LINE_KEYS - {"fields"}
            if unknown:
                raise self.fail(where, f"unknown keys {sorted(unknown)}")
            for required in ("each", "title", "amount", "tax", "rate"):
                if required not in group:
                    raise self.fail(f"{where}.{required}", "is required")
            exprs = {k: self.expr(f"{where}.{k}", v) for k, v in group.items() if k != "fields"}
            fields = self.exprs(f"{where}.fields", group.get("fields"))
            out.append(LineSpec(exprs.pop("each"), exprs, fields))
        return tuple(out)

    def spec(self) -> MappingSpec:
        data = self.data
        unknown = set(data) - TOP_KEYS
        if unknown:
            raise self.fail(
                sorted(unknown)[0], f"unknown key (known: {', '.join(sorted(TOP_KEYS))})"
            )
        kind = data.get("kind")
        if kind not in KINDS:
            raise self.fail("kind", f"must be one of {', '.join(KINDS)}, got {kind!r}")
        for required in REQUIRED[kind]:
            if required not in data:
                raise self.fail(required, f"is required for kind {kind}")
        exprs = {k: self.expr(k, data[k]) for k in EXPR_KEYS if k in data}
        customer = data.get("customer") or {}
        if not isinstance(customer, dict):
            raise self.fail("customer", "must be a mapping with binding_key and fields")
        if "customer" in data:
            if "binding_key" not in customer:
                raise self.fail("customer.binding_key", "is required")
            exprs["binding_key"] = self.expr("customer.binding_key", customer["binding_key"])
        enrich = self.exprs("enrich", data.get("enrich"))
        for name in enrich:
            if name not in ENRICHERS:
                raise self.fail(
                    f"enrich.{name}", f"unknown enrichment (known: {', '.join(ENRICHERS)})"
                )
        tables = data.get("tables") or {}
        if not isinstance(tables, dict) or not all(isinstance(t, dict) for t in tables.values()):
            raise self.fail("tables", "must map table names to mappings of key: value")
        if "customer_metafields" in enrich:
            try:
                metafields_of(tables)
            except ValueError as exc:
                raise self.fail("enrich.customer_metafields", str(exc)) from None
        return MappingSpec(
            path=self.path,
            kind=kind,
            obj=self.expr("object", data["object"]) if "object" in data else None,
            exprs=exprs,
            customer_fields=self.exprs("customer.fields", customer.get("fields")),
            invoice_fields=self.exprs("invoice", data.get("invoice")),
            lines=self.lines(),
            skip=self.rules("skip", "reason"),
            fail=self.rules("fail", "error"),
            enrich=enrich,
            skip_found=self.rules("skip_after_enrich", "reason"),
            tax_exprs=self.tax_exprs(),
            tables={str(k): {str(kk): vv for kk, vv in v.items()} for k, v in tables.items()},
            vat_rates=self.vat_rates(),
            **self.policy(),
        )

    def tax_exprs(self) -> dict[str, Expr]:
        exprs = self.exprs("tax", self.data.get("tax"))
        unknown = set(exprs) - TAX_KEYS
        if unknown:
            raise self.fail(f"tax.{sorted(unknown)[0]}", f"unknown key (known: {sorted(TAX_KEYS)})")
        return exprs

    def vat_rates(self) -> tuple[Decimal, ...]:
        value = self.data.get("vat_rates")
        if value is None:
            return FRENCH_VAT_RATES
        try:
            rates = tuple(Decimal(str(v)) for v in value)
        except (InvalidOperation, TypeError):
            raise self.fail("vat_rates", 'must be a list of rates like "0.200"') from None
        if not rates or any(r < 0 or r >= 1 for r in rates):
            raise self.fail("vat_rates", 'rates are fractions between 0 and 1, like "0.200"')
        return rates

    def policy(self) -> dict[str, Any]:
        policy = self.data.get("policy") or {}
        if not isinstance(policy, Mapping):
            raise self.fail("policy", "must be a mapping")
        unknown = set(policy) - POLICY_KEYS
        if unknown:
            raise self.fail(f"policy.{sorted(unknown)[0]}", "unknown policy")
        out: dict[str, Any] = {}
        for name in ("skip_zero", "keep_source_vat", "send_email"):
            if name in policy:
                if not isinstance(policy[name], bool):
                    raise self.fail(f"policy.{name}", "must be true or false")
                out[name] = policy[name]
        for name in ("rounding_title", "vat_gap_title", "information"):
            if name in policy:
                if not isinstance(policy[name], str) or not policy[name]:
                    raise self.fail(f"policy.{name}", "must be a non-empty text")
                out[name] = policy[name]
        if "reverse_charge" in policy:
            rc = policy["reverse_charge"]
            if not isinstance(rc, Mapping) or set(rc) - {"enabled", "home_country"}:
                raise self.fail(
                    "policy.reverse_charge",
                    "keys are enabled and home_country (reword its mentions under policy.mentions)",
                )
            out["reverse_charge"] = ReverseCharge(
                enabled=bool(rc.get("enabled", False)),
                home_country=str(rc.get("home_country", "FR")).upper(),
            )
        return {**out, **self.mentions(policy)}

    def mentions(self, policy: Mapping[str, Any]) -> dict[str, Any]:
        """``policy.mentions`` (rewordings of known mentions) and ``policy.zero_vat_mention``."""
        out: dict[str, Any] = {}
        known = ", ".join(MENTIONS)
        texts = policy.get("mentions") or {}
        if not isinstance(texts, Mapping):
            raise self.fail("policy.mentions", f"must map mention names ({known}) to texts")
        for name, text in texts.items():
            if name not in MENTIONS:
                raise self.fail(f"policy.mentions.{name}", f"unknown mention (known: {known})")
            if not isinstance(text, str) or not text.strip():
                raise self.fail(f"policy.mentions.{name}", "must be a non-empty text")
        out["mentions"] = {**MENTIONS, **texts}
        if "zero_vat_mention" in policy:
            name = policy["zero_vat_mention"]
            if name not in MENTIONS:
                raise self.fail("policy.zero_vat_mention", f"must be one of: {known}")
            out["zero_vat_mention"] = name
        return out


_BUILTIN_FUNCTIONS = frozenset(
    (
        "abs",
        "avg",
        "ceil",
        "contains",
        "ends_with",
        "floor",
        "join",
        "keys",
        "length",
        "map",
        "max",
        "max_by",
        "merge",
        "min",
        "min_by",
        "not_null",
        "reverse",
        "sort",
        "sort_by",
        "starts_with",
        "sum",
        "to_array",
        "to_number",
        "to_string",
        "type",
        "values",
    )
)
