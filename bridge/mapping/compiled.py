"""JMESPath expressions turned once into plain Python closures, for speed.

JMESPath's tree interpreter re-dispatches on every node of the syntax tree at every evaluation;
on a large order the line expressions run thousands of times per event and that dispatch was most
of the mapping time. :class:`ExpressionCompiler` walks the tree once at load and returns one
closure per node, each a copy of the interpreter's ``visit_<type>`` method, so the result is the
same value (or the same exception) as ``interpreter.visit(node, value)``. Node types not copied
here (slices, object projections, multi-select hashes, ``&expr``) are handed to the interpreter
itself, so every expression still evaluates.

A plain field path (``o.customer.id``, ``line.tax_lines[0].rate``) gets a single getter instead
of a chain of closures: it is the most common expression in mapping files.

tests/unit/test_mapping_compiled.py checks both against the interpreter, expression by expression.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from numbers import Number
from typing import TYPE_CHECKING, Any

import jmespath
from jmespath.functions import Functions
from jmespath.visitor import TreeInterpreter

if TYPE_CHECKING:
    from jmespath.visitor import _TreeNode as Node

Evaluator = Callable[[Any], Any]


class ExpressionCompiler:
    """Compiles syntax trees for one set of functions (a mapping file's tables and VAT rates)."""

    def __init__(self, functions: Functions) -> None:
        self.functions = functions
        self.interpreter = TreeInterpreter(jmespath.Options(custom_functions=functions))

    def compile(self, node: Node) -> Evaluator:
        """A closure equal to ``lambda value: interpreter.visit(node, value)``, without dispatch."""
        path = _field_path(node)  # every field and index node, alone or chained
        if path is not None:
            return _path_getter(path)
        kind = node["type"]
        build = _BUILDERS.get(kind)
        if kind == "function_expression":
            return self._call(node["value"], [self.compile(c) for c in node["children"]])
        if build is None:
            visit = self.interpreter.visit
            return lambda value: visit(node, value)
        return build(node, [self.compile(child) for child in node["children"]])

    def _call(self, name: str, args: list[Evaluator]) -> Evaluator:
        """A function call; with the right number of arguments of any type, checks are moot."""
        functions = self.functions
        entry = functions.FUNCTION_TABLE.get(name)
        signature = entry["signature"] if entry else []
        if not entry or len(signature) != len(args) or any(s["types"] for s in signature):
            call = functions.call_function  # checks arity and types, raises as JMESPath does
            return lambda value: call(name, [arg(value) for arg in args])
        function = entry["function"]
        if len(args) == 1:  # the usual cases, without building an argument list
            (only,) = args
            return lambda value: function(functions, only(value))
        if len(args) == 2:
            first, second = args
            return lambda value: function(functions, first(value), second(value))
        return lambda value: function(functions, *[arg(value) for arg in args])


def _field_path(node: Node) -> list[str | int] | None:
    """``a.b[0].c`` as ``["a", "b", 0, "c"]``; ``None`` if the node is anything else."""
    kind = node["type"]
    if kind in ("field", "index"):
        return [node["value"]]
    if kind in ("subexpression", "index_expression"):
        out: list[str | int] = []
        for child in node["children"]:
            part = _field_path(child)
            if part is None:
                return None
            out.extend(part)
        return out
    return None


def _path_getter(path: list[str | int]) -> Evaluator:
    steps = tuple(path)
    if all(type(step) is str for step in steps):

        def fields(value: Any) -> Any:
            try:
                for step in steps:
                    value = value.get(step)
            except AttributeError:  # not an object (null included): the path is null
                return None
            return value

        return fields

    def getter(value: Any) -> Any:
        for step in steps:
            if value is None:
                return None  # every later step of a missing value is missing too
            if isinstance(step, str):
                try:
                    value = value.get(step)
                except AttributeError:
                    return None
            else:
                value = _at(value, step)
        return value

    return getter


def _at(value: Any, index: int) -> Any:
    if not isinstance(value, list):
        return None
    try:
        return value[index]
    except IndexError:
        return None


def _chain(node: Node, steps: list[Evaluator]) -> Evaluator:
    def chained(value: Any) -> Any:
        for step in steps:
            value = step(value)
        return value

    return chained


def _current(node: Node, children: list[Evaluator]) -> Evaluator:
    return lambda value: value


def _literal(node: Node, children: list[Evaluator]) -> Evaluator:
    literal = node["value"]
    return lambda value: literal


def _or(node: Node, children: list[Evaluator]) -> Evaluator:
    left, right = children

    def either(value: Any) -> Any:
        matched = left(value)
        return right(value) if _is_false(matched) else matched

    return either


def _and(node: Node, children: list[Evaluator]) -> Evaluator:
    left, right = children

    def both(value: Any) -> Any:
        matched = left(value)
        return matched if _is_false(matched) else right(value)

    return both


def _not(node: Node, children: list[Evaluator]) -> Evaluator:
    (inner,) = children

    def negate(value: Any) -> Any:
        result = inner(value)
        if _is_number(result) and result == 0:
            return False  # !0 is false in JMESPath: 0 is not a false value
        return not result

    return negate


def _comparator(node: Node, children: list[Evaluator]) -> Evaluator:
    left, right = children
    compare = TreeInterpreter.COMPARATOR_FUNC[node["value"]]  # the interpreter's own functions
    if node["value"] in ("eq", "ne"):
        return lambda value: compare(left(value), right(value))

    def order(value: Any) -> Any:
        a, b = left(value), right(value)
        if not (_is_comparable(a) and _is_comparable(b)):
            return None  # ordering only numbers and texts
        return compare(a, b)

    return order


def _multi_select_list(node: Node, children: list[Evaluator]) -> Evaluator:
    if len(children) == 1:  # ``[a || b]``, the usual case, without a loop
        (only,) = children
        return lambda value: None if value is None else [only(value)]
    return lambda value: None if value is None else [child(value) for child in children]


def _flatten(node: Node, children: list[Evaluator]) -> Evaluator:
    (base,) = children

    def flatten(value: Any) -> Any:
        items = base(value)
        if not isinstance(items, list):
            return None
        merged: list[Any] = []
        for item in items:
            if isinstance(item, list):
                merged.extend(item)
            else:
                merged.append(item)
        return merged

    return flatten


def _projection(node: Node, children: list[Evaluator]) -> Evaluator:
    base, each = children

    def project(value: Any) -> Any:
        items = base(value)
        if not isinstance(items, list):
            return None
        return [r for r in map(each, items) if r is not None]

    return project


def _filter_projection(node: Node, children: list[Evaluator]) -> Evaluator:
    base, each, condition = children

    def select(value: Any) -> Any:
        items = base(value)
        if not isinstance(items, list):
            return None
        kept = (each(item) for item in items if not _is_false(condition(item)))
        return [r for r in kept if r is not None]

    return select


_BUILDERS: dict[str, Callable[[Node, list[Evaluator]], Evaluator]] = {
    "subexpression": _chain,
    "index_expression": _chain,
    "pipe": _chain,
    "current": _current,
    "identity": _current,
    "literal": _literal,
    "or_expression": _or,
    "and_expression": _and,
    "not_expression": _not,
    "comparator": _comparator,
    "multi_select_list": _multi_select_list,
    "flatten": _flatten,
    "projection": _projection,
    "filter_projection": _filter_projection,
}


def _is_false(value: Any) -> bool:
    """JMESPath falseness, as the interpreter decides it (by equality, not Python truth)."""
    kind = type(value)
    if kind is str or kind is list or kind is dict:
        return not value  # == "", == [] or == {}
    if kind is int or kind is Decimal:
        return False  # 0 is true in JMESPath
    # Equality on purpose, as the interpreter: ``in`` would also match by identity.
    return value == "" or value == [] or value == {} or value is None or value is False  # noqa: PLR1714


def _is_comparable(value: Any) -> bool:
    return _is_number(value) or isinstance(value, str)


def _is_number(value: Any) -> bool:
    """A number and not a boolean, as the interpreter's ``_is_actual_number``."""
    return isinstance(value, Number) and not isinstance(value, bool)
