"""Compiled expressions give exactly what JMESPath's interpreter gives: the same value, or the same
exception with the same message, on hand-picked edge cases and on every expression of every
built-in mapping file against every golden payload."""

from __future__ import annotations

from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jmespath
import pytest

from bridge.config import Settings
from bridge.mapping.compiled import ExpressionCompiler
from bridge.mapping.engine import MappingEngine
from bridge.mapping.functions import MappingFunctions
from bridge.mapping.samples import read_samples

GOLDEN_DIR = Path(__file__).resolve().parent.parent / "golden"
COMPILER = ExpressionCompiler(MappingFunctions(ZoneInfo("Europe/Paris"), {"modes": {"stripe": 3}}))

DOCUMENTS: list[Any] = [
    None,
    0,
    "text",
    [],
    {},
    [1, [2, 3], None, {"a": 1}],
    {
        "a": {"b": {"c": "deep"}, "n": None, "zero": 0, "empty": "", "f": False},
        "l": [{"b": 1, "t": [{"p": "1.20"}, {"p": None}]}, {"b": None}, None, {"c": 2}, "s"],
        "nested": [[1, 2], [3, [4]], 5, None],
        "amount": Decimal("12.50"),
        "d": Decimal(0),
        "s": "x",
        "gift": [{"gift_card": True, "v": 1}, {"gift_card": False, "v": 2}, {"v": 3}],
        "mode": "stripe",
    },
]
EXPRESSIONS = [
    # plain field paths, with missing keys, nulls, non-objects and list indexes
    "a", "a.b.c", "a.b.c.d", "a.n.x", "missing.b", "a.zero", "s.x", "l[0].b", "l[1].b",
    "l[2].b", "l[-1]", "l[-1].b", "l[10].b", "l[0].t[0].p", "l[0].t[-1].p", "a[0]", "s[0]",
    "amount", "[0]", "[1][0]",
    # truth: 0 is true, "", [], {}, null and false are false
    "a.zero || 'x'", "a.empty || 'x'", "a.n || a.f || l", "d || 'x'", "a.f && 'x'",
    "amount && a.zero", "!a.zero", "!a.empty", "!d", "!l", "!missing", "!`{}`", "!`[]`",
    # projections, filters, flattening, multi-select, pipes
    "l[].b", "l[*].b", "l[].t[].p", "l[].t[].[p || 'none'][]", "nested[]", "nested[][]",
    "gift[?gift_card].v", "gift[?!gift_card].v", "gift[?v == `2`]", "gift[?v != `2`].v",
    "[a.zero, a.n, missing]", "a.[zero, empty]", "l[0] | b", "l | [0]", "@", "a.b | @",
    "gift[?gift_card].[v, gift_card]", "missing[]", "s[]", "missing[].b", "s[*].x",
    # node types left to the interpreter: slices, hashes, ordering, value projections, &expr
    "l[1:3]", "nested[::-1]", "{x: a.zero, y: missing}", "a.*", "sort_by(gift, &v)[].v",
    "max_by(gift, &v).v",
    # ordering: numbers and texts only, anything else is null
    "gift[?v > `1`].v", "a.zero < `1`", "a.zero >= a.f", "s <= 'y'", "amount > `12`",
    "length(l) > `0`", "missing < `1`", "l > `1`",
    # functions: the mapping's own (argument checks inside) and JMESPath's (typed)
    "dsum(l[].t[].p)", "dmul(amount, `2`)", "dsum(s)", "vat(`20`)", "fmt('{}-{}', s, a.zero)",
    "fmt(a.zero)", "table('modes', mode, `2`)", "table('modes', 'other', `2`)", "length(l)",
    "length(a.zero)", "length(l, s)", "dec(missing)", "dec(a)", "contains(['x', 'y'], s)",
    "join(', ', [s, a.b.c][?@])", "type(amount)", "not_null(missing, a.zero)", "dsub()",
]  # fmt: skip


def evaluate(evaluate_fn: Any, value: Any) -> tuple[str, Any]:
    try:
        return "value", evaluate_fn(value)
    except Exception as exc:  # any exception: it must be the interpreter's one
        return type(exc).__name__, str(exc)


def same(expression: Any, compiler: ExpressionCompiler, doc: Any) -> None:
    """The compiled ``expression`` (a parsed JMESPath) agrees with the interpreter on ``doc``."""
    node = expression.parsed
    expected = evaluate(lambda v: compiler.interpreter.visit(node, v), doc)
    got = evaluate(compiler.compile(node), doc)
    assert got == expected
    if got[0] == "value":  # Decimal("1") == 1 == True: the types must agree as well
        assert type(got[1]) is type(expected[1])


@pytest.mark.parametrize("text", EXPRESSIONS)
def test_compiled_expression_equals_interpreter(text: str) -> None:
    parsed = jmespath.compile(text)
    for doc in DOCUMENTS:
        same(parsed, COMPILER, doc)


def test_edge_cases_reach_both_outcomes() -> None:
    """The cases above exercise values and errors alike, so the comparison can catch either."""
    outcomes = {
        evaluate(COMPILER.compile(jmespath.compile(t).parsed), doc)[0]
        for t in EXPRESSIONS
        for doc in DOCUMENTS
    }
    assert {"value", "JMESPathTypeError", "ArityError", "FunctionError"} <= outcomes


def test_plain_paths_read_missing_and_null_as_null() -> None:
    doc = {"a": {"b": None, "l": [{"c": 1}]}}
    for text, want in [("a.b.c", None), ("a.l[0].c", 1), ("a.l[1].c", None), ("x.y", None)]:
        assert COMPILER.compile(jmespath.compile(text).parsed)(doc) == want


def test_every_built_in_expression_on_every_golden_payload() -> None:
    engine = MappingEngine.load(Settings(), network=False)
    samples = read_samples(GOLDEN_DIR)
    checked = 0
    for loaded in engine._loaded.values():
        spec = loaded.spec
        compiler = ExpressionCompiler(
            MappingFunctions(ZoneInfo("Europe/Paris"), spec.tables, spec.vat_rates)
        )
        visit = compiler.interpreter.visit
        for sample in samples:
            event = sample.event()
            obj = event.payload
            if spec.obj is not None:
                obj = visit(spec.obj.parsed.parsed, obj)
            contexts = [{"o": obj, "event": event.payload, "shop": event.shop_domain}]
            for group in spec.lines:
                items = evaluate(partial(visit, group.each.parsed.parsed), contexts[0])
                if items[0] == "value" and isinstance(items[1], list):
                    contexts += [{**contexts[0], "line": item} for item in items[1]]
            for expr in spec.expressions():
                for ctx in contexts:
                    same(expr.parsed, compiler, ctx)
                    checked += 1
    assert checked > 5000
