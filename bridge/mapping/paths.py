"""Where a mapping read a value: the field being built and the event path, for error messages.

A value that can't be used (text where an amount is expected, a float, a missing amount) fails the
event with a message that names the output field being built and the path in the event where the
value was read::

    lines[2].unit_price: expected an amount at data.object.lines.data[2].amount, got None

The path comes from the expression's syntax tree: each plain field path in it (``line.amount``,
``o.customer.id``) is followed from its first name — ``o`` is the file's ``object:``, ``line`` the
item of its ``each:`` list, ``event`` the whole payload — and the first one that holds the
offending value is named. An expression with no such path (a literal, a computed value) is named
by its own text. This runs only when a mapping fails, never on the way to a command.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from bridge.mapping.spec import Expr, MappingError

Steps = tuple[str | int, ...]

# The file's line keys, by the invoice line field they build.
LINE_OUTPUT = {
    "amount": "unit_price",
    "discount": "unit_price",
    "tax": "unit_price",
    "includes_tax": "unit_price",
    "quantity": "quantity",
    "rate": "vat",
    "title": "title",
}


class BadValueError(MappingError):
    """A value read by ``expr`` can't be used: ``expected`` says what it should have been."""

    def __init__(self, expr: Expr, data: Any, expected: str, value: Any) -> None:
        super().__init__(f"{expr.where}: expected {expected}, got {value!r}")
        self.expr, self.data, self.expected, self.value = expr, data, expected, value

    def describe(self, field: str, roots: Mapping[str, Steps | None]) -> str:
        """``field: expected … at <event path>, got …``."""
        where = locate(self.expr, self.data, self.value, roots)
        return f"{field}: expected {self.expected} at {where}, got {self.value!r}"


def output_field(expr: Expr) -> str:
    """The field an expression builds: ``customer.fields.email`` -> ``customer.email``."""
    key = expr.key
    if key.startswith("lines["):
        name = key.split(".", 1)[1] if "." in key else key
        if name.startswith("fields."):
            return name.removeprefix("fields.")
        return LINE_OUTPUT.get(name, name)
    return key.replace("customer.fields.", "customer.", 1)


def paths(node: Mapping[str, Any], data: Any) -> Iterator[Steps]:
    """Every path in ``data`` that the syntax tree ``node`` reads, in reading order.

    A plain field path (``o.total``) is one path; a projection over one (``line.tax_lines[].rate``,
    ``o.line_items[?!gift_card]``) is one path per item of the list it projects.
    """
    whole = _plain(node)
    if whole is not None:
        if isinstance(data, Mapping) and whole[0] in data:
            yield whole
        return
    children = [c for c in node.get("children", ()) if isinstance(c, Mapping)]
    if node.get("type") in ("projection", "filter_projection") and len(children) >= 2:
        left, right = children[0], children[1]
        base = _plain(children[0]["children"][0] if left.get("type") == "flatten" else left)
        items = None if base is None else follow(data, base)
        if base is not None and isinstance(items, list):
            for index, item in enumerate(items):
                if right.get("type") in ("identity", "current"):
                    yield (*base, index)
                for rest in paths(right, item):
                    yield (*base, index, *rest)
            return
    for child in children:
        yield from paths(child, data)


def _plain(node: Mapping[str, Any]) -> Steps | None:
    kind = node.get("type")
    if kind == "field":
        return (str(node["value"]),)
    if kind == "index":
        return (int(node["value"]),)
    if kind in ("subexpression", "index_expression"):
        out: Steps = ()
        for child in node["children"]:
            part = _plain(child)
            if part is None:
                return None
            out += part
        return out if isinstance(out[0], str) else None
    return None


def follow(data: Any, steps: Sequence[str | int]) -> Any:
    """The value at ``steps`` in ``data`` (``None`` where the path stops), as JMESPath reads it."""
    for step in steps:
        if isinstance(step, int):
            data = data[step] if isinstance(data, list) and -len(data) <= step < len(data) else None
        else:
            data = data.get(step) if isinstance(data, Mapping) else None
    return data


def render(steps: Sequence[str | int]) -> str:
    out = ""
    for step in steps:
        out += f"[{step}]" if isinstance(step, int) else (f".{step}" if out else step)
    return out or "@"


def locate(expr: Expr, data: Any, value: Any, roots: Mapping[str, Steps | None]) -> str:
    """The event path where ``expr``, evaluated on ``data``, read ``value`` (else its text)."""
    for steps in paths(expr.parsed.parsed, data):
        got = follow(data, steps)
        if got is value or (type(got) is type(value) and got == value):
            return render(_rooted(steps, roots))
    return repr(expr.text)


def item_path(
    each: Expr, ctx: Mapping[str, Any], item: Any, roots: Mapping[str, Steps | None]
) -> Steps | None:
    """Where ``item``, one of the ``each:`` list, sits in the event (found by identity)."""
    for steps in paths(each.parsed.parsed, ctx):
        found = follow(ctx, steps)
        if found is item:  # an item of a projection (``o.line_items[?!gift_card]``)
            return _rooted(steps, roots)
        if isinstance(found, list):  # the list itself (``o.lines.data``)
            for index, candidate in enumerate(found):
                if candidate is item:
                    return _rooted((*steps, index), roots)
    return None


def _rooted(steps: Steps, roots: Mapping[str, Steps | None]) -> Steps:
    """``("o", "total")`` as ``("data", "object", "total")``: a name replaced by where it points."""
    root = roots.get(str(steps[0]))
    return steps if root is None else (*root, *steps[1:])


def plain_path(expr: Expr | None) -> Steps | None:
    """``data.object`` as its steps; ``None`` if the expression is anything but a field path."""
    return None if expr is None else _plain(expr.parsed.parsed)


def event_roots(obj: Expr | None) -> dict[str, Steps | None]:
    """Where ``event`` and ``o`` point in the event, for a file whose ``object:`` is ``obj``."""
    return {"event": (), "o": () if obj is None else plain_path(obj)}
