"""Conditions (`when`, `expect`, `wait_until`): evaluate, and explain a failure with the values seen.

A failure is explained from the expression's Jinja syntax tree, not from its text: for `a and b`
the operand that was false, for a comparison the value of each side, for `not x`, `x in y` and
tests (`x is defined`) the value they looked at; `and` / `or` nest.
"""

from __future__ import annotations

import copy
import json
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from jinja2 import TemplateSyntaxError, nodes
from jinja2.environment import TemplateExpression
from jinja2.runtime import Undefined

from .jinja_env import ENVIRONMENT, as_expression
from .model import Condition
from .templating import evaluate_condition

UNDEFINED_TEXT = "undefined"

_COMPARE_TEXT = {
    "eq": "==",
    "ne": "!=",
    "gt": ">",
    "gteq": ">=",
    "lt": "<",
    "lteq": "<=",
    "in": "in",
    "notin": "not in",
}
_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "gt": operator.gt,
    "gteq": operator.ge,
    "lt": operator.lt,
    "lteq": operator.le,
    "in": lambda left, right: left in right,
    "notin": lambda left, right: left not in right,
}
_BINARY_TEXT = {
    nodes.Add: "+",
    nodes.Sub: "-",
    nodes.Mul: "*",
    nodes.Div: "/",
    nodes.FloorDiv: "//",
    nodes.Mod: "%",
    nodes.Pow: "**",
}


@dataclass(frozen=True)
class Explanation:
    """Why a condition is false: what it wanted, what it found, and the part that decided it."""

    expected: str
    found: str
    operand: str  # the sub-expression that made the whole false (the whole, if it is atomic)


def holds(condition: Condition, context: dict[str, Any]) -> bool:
    return bool(evaluate_condition(condition.expression, context, condition.location))


def explain(condition: Condition, context: dict[str, Any]) -> tuple[str, str]:
    """(expected, found) for a condition that did not hold."""
    why = explanation(condition, context)
    return why.expected, why.found


def explanation(condition: Condition, context: dict[str, Any]) -> Explanation:
    """The explanation of a condition that did not hold, read from its syntax tree."""
    node = _parse(condition.expression)
    if node is None:  # text around the braces: only the whole can be shown
        found = evaluate_condition(condition.expression, context, condition.location)
        return Explanation("true", show(found), condition.expression.strip())
    return _Explainer(context).why_false(node)


def _parse(expression: str) -> nodes.Expr | None:
    try:
        template = ENVIRONMENT.parse(as_expression(expression))
    except TemplateSyntaxError:
        return None
    body = template.body
    if len(body) == 1 and isinstance(body[0], nodes.Output) and len(body[0].nodes) == 1:
        node = body[0].nodes[0]
        return None if isinstance(node, nodes.TemplateData) else node
    return None


class _Explainer:
    def __init__(self, context: dict[str, Any]) -> None:
        self.context = context

    def why_false(self, node: nodes.Expr) -> Explanation:
        if isinstance(node, nodes.And):
            # The first operand that is false decides: the left one, else the right one.
            left = self.value(node.left)
            return self.why_false(node.right if _truthy(left) else node.left)
        if isinstance(node, nodes.Or):
            left, right = self.why_false(node.left), self.why_false(node.right)
            return Explanation(
                f"{left.expected} or {right.expected}",
                f"{left.found}; {right.found}",
                source(node),
            )
        if isinstance(node, nodes.Not):
            return self._not(node)
        if isinstance(node, nodes.Compare):
            return self._compare(node)
        if isinstance(node, nodes.Test):
            return Explanation(source(node), self.found(node.node), source(node))
        return Explanation("true", self.found(node), source(node))

    def _not(self, node: nodes.Not) -> Explanation:
        inner = node.node
        if isinstance(inner, nodes.Not):  # not not x: x must hold
            return self.why_false(inner.node)
        subject = inner.node if isinstance(inner, nodes.Test) else inner
        return Explanation(source(node), self.found(subject), source(node))

    def _compare(self, node: nodes.Compare) -> Explanation:
        left_node, left = node.expr, self.value(node.expr)
        for part in node.ops:
            right = self.value(part.expr)
            if not _compares(part.op, left, right):
                return self._pair(left_node, part.op, part.expr, left, right)
            left_node, left = part.expr, right
        return Explanation(source(node), "true", source(node))  # it holds now: nothing to blame

    def _pair(
        self, left_node: nodes.Expr, op: str, right_node: nodes.Expr, left: Any, right: Any
    ) -> Explanation:
        text = f"{source(left_node)} {_COMPARE_TEXT[op]} {source(right_node)}"
        if op == "eq":  # expected the literal side, found the other one
            if _literal(left_node) and not _literal(right_node):
                return Explanation(show(left), _named(right_node, right), text)
            return Explanation(show(right), _named(left_node, left), text)
        sides = ((left_node, left), (right_node, right))
        shown = [_named(side, value) for side, value in sides if not _literal(side)]
        return Explanation(text, ", ".join(shown) or "false", text)

    def found(self, node: nodes.Expr) -> str:
        return _named(node, self.value(node))

    def value(self, node: nodes.Expr) -> Any:
        """The node's value in the context; Undefined when it names nothing."""
        try:
            return _compile(node)(**self.context)
        except Exception as exc:  # shown, not raised: the condition itself already evaluated
            return _Broken(f"{type(exc).__name__}: {exc}")


@dataclass(frozen=True)
class _Broken:
    """A sub-expression that raised when evaluated on its own."""

    reason: str


def _compile(node: nodes.Expr) -> TemplateExpression:
    # As Environment.compile_expression does, from a node instead of text; the copy keeps
    # Jinja's optimizer from folding the tree being explained.
    body = [nodes.Assign(nodes.Name("result", "store"), copy.deepcopy(node), lineno=1)]
    template = ENVIRONMENT.from_string(nodes.Template(body, lineno=1))
    return TemplateExpression(template, undefined_to_none=False)


def _compares(op: str, left: Any, right: Any) -> bool:
    if isinstance(left, Undefined | _Broken) or isinstance(right, Undefined | _Broken):
        return False
    try:
        return bool(_COMPARE[op](left, right))
    except Exception:
        return False


def _truthy(value: Any) -> bool:
    if isinstance(value, Undefined | _Broken):
        return False
    try:
        return bool(value)
    except Exception:
        return False


def _literal(node: nodes.Node) -> bool:
    """A value written out in the expression (showing its value would only repeat it)."""
    if isinstance(node, nodes.Const):
        return True
    if isinstance(node, nodes.Neg | nodes.Pos):
        return _literal(node.node)
    if isinstance(node, nodes.List | nodes.Tuple):
        return all(map(_literal, node.items))
    if isinstance(node, nodes.Dict):
        return all(_literal(p.key) and _literal(p.value) for p in node.items)
    return False


def _named(node: nodes.Expr, value: Any) -> str:
    if _literal(node):
        return show(value)
    return f"{source(node)} = {show(value)}"


def show(value: Any, limit: int = 200) -> str:
    """A value as JSON, cut at `limit` characters."""
    if isinstance(value, Undefined):
        return UNDEFINED_TEXT
    if isinstance(value, _Broken):
        return f"(error: {value.reason})"
    try:
        text = json.dumps(value, default=str, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- the text of a node, as a reader would write it ---------------------------------------------


def source(node: nodes.Node) -> str:
    """Jinja source for an expression node (normalised spacing and quotes)."""
    match node:
        case nodes.Name():
            return node.name
        case nodes.Const():
            return _constant(node.value)
        case nodes.Getattr():
            return f"{_operand(node.node)}.{node.attr}"
        case nodes.Getitem():
            return f"{_operand(node.node)}[{source(node.arg)}]"
        case nodes.Slice():
            parts = [node.start, node.stop] + ([node.step] if node.step else [])
            return ":".join("" if p is None else source(p) for p in parts)
        case nodes.List():
            return "[" + ", ".join(source(item) for item in node.items) + "]"
        case nodes.Tuple():
            inner = ", ".join(source(item) for item in node.items)
            return f"({inner},)" if len(node.items) == 1 else f"({inner})"
        case nodes.Dict():
            return "{" + ", ".join(f"{source(p.key)}: {source(p.value)}" for p in node.items) + "}"
        case nodes.Compare():
            text = _operand(node.expr)
            for part in node.ops:
                text += f" {_COMPARE_TEXT.get(part.op, part.op)} {_operand(part.expr)}"
            return text
        case nodes.And() | nodes.Or():
            word = "and" if isinstance(node, nodes.And) else "or"
            return f"{_logical(node.left, node)} {word} {_logical(node.right, node)}"
        case nodes.Not() if isinstance(node.node, nodes.Test):
            return _test(node.node, negated=True)
        case nodes.Not():
            return f"not {_operand(node.node)}"
        case nodes.Test():
            return _test(node)
        case nodes.Filter() if node.node is not None:  # None only in a {% filter %} block
            return f"{_operand(node.node)} | {node.name}{_arguments(node, optional=True)}"
        case nodes.Call():
            return f"{_operand(node.node)}{_arguments(node)}"
        case nodes.Neg() | nodes.Pos():
            return ("-" if isinstance(node, nodes.Neg) else "+") + _operand(node.node)
        case nodes.Concat():
            return " ~ ".join(_operand(part) for part in node.nodes)
        case nodes.CondExpr():
            otherwise = f" else {source(node.expr2)}" if node.expr2 is not None else ""
            return f"{source(node.expr1)} if {source(node.test)}{otherwise}"
        case nodes.BinExpr() if type(node) in _BINARY_TEXT:
            return f"{_operand(node.left)} {_BINARY_TEXT[type(node)]} {_operand(node.right)}"
    return f"<{type(node).__name__.lower()}>"


_ATOMIC = (
    nodes.Name,
    nodes.Const,
    nodes.Getattr,
    nodes.Getitem,
    nodes.List,
    nodes.Tuple,
    nodes.Dict,
    nodes.Call,
    nodes.Filter,
)


def _operand(node: nodes.Node) -> str:
    """The node's source, in parentheses when it binds looser than what surrounds it."""
    text = source(node)
    return text if isinstance(node, _ATOMIC) else f"({text})"


def _logical(child: nodes.Node, parent: nodes.Node) -> str:
    text = source(child)
    mixed = isinstance(child, nodes.And | nodes.Or) and type(child) is not type(parent)
    return f"({text})" if mixed or isinstance(child, nodes.CondExpr) else text


def _test(node: nodes.Test, negated: bool = False) -> str:
    return (
        f"{_operand(node.node)} is {'not ' if negated else ''}{node.name}"
        f"{_arguments(node, optional=True)}"
    )


def _arguments(node: nodes.Call | nodes.Filter | nodes.Test, optional: bool = False) -> str:
    parts = [source(arg) for arg in node.args]
    parts += [f"{kw.key}={source(kw.value)}" for kw in node.kwargs]
    if node.dyn_args is not None:
        parts.append("*" + source(node.dyn_args))
    if node.dyn_kwargs is not None:
        parts.append("**" + source(node.dyn_kwargs))
    if optional and not parts:
        return ""
    return "(" + ", ".join(parts) + ")"


def _constant(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return repr(value)
