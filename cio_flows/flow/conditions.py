"""Conditions (`when`, `expect`, `wait_until`): evaluate, and explain a failure with the values seen."""

from __future__ import annotations

import json
import re
from typing import Any

from .model import Condition
from .templating import as_expression, evaluate_condition, render_string

# A top-level comparison, split once: left OP right. Good enough for explaining, not for evaluating.
_COMPARISON = re.compile(
    r"^(?P<left>.+?)\s*(?P<op>==|!=|>=|<=|>|<|\bnot in\b|\bin\b)\s*(?P<right>.+)$"
)


def holds(condition: Condition, context: dict[str, Any]) -> bool:
    return bool(evaluate_condition(condition.expression, context, condition.location))


def explain(condition: Condition, context: dict[str, Any]) -> tuple[str, str]:
    """(expected, found) for a condition that did not hold."""
    text = condition.expression.strip().removeprefix("{{").removesuffix("}}").strip()
    match = _COMPARISON.match(text)
    if match:
        try:
            left = _value(match["left"], context, condition)
            right = _value(match["right"], context, condition)
        except Exception:  # an operand that does not stand alone: fall back to the whole
            match = None
        else:
            if match["op"] == "==":
                return _show(right), f"{match['left']} = {_show(left)}"
            return text, f"{match['left']} = {_show(left)}, {match['right']} = {_show(right)}"
    found = evaluate_condition(text, context, condition.location)
    return "true", _show(found)


def _value(source: str, context: dict[str, Any], condition: Condition) -> Any:
    return render_string(as_expression(source), context, condition.location)


def _show(value: Any, limit: int = 200) -> str:
    try:
        text = json.dumps(value, default=str, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
