"""GetMetricData's metric math: arithmetic (+ - * /) between time series and numbers,
and SUM, AVG, MIN, MAX, ABS, CEIL, FLOOR and METRICS(), as CloudWatch defines
them. Parsed with Python's own `ast` (the grammars agree on this subset) and evaluated
over a whitelist of node types, never `eval`.

A time series is {timestamp: value}. Series combine on the timestamps they share; a
function over a list of series works timestamp by timestamp, over one series it gives a
number (AVG(m1) is m1's average), as in CloudWatch.
"""

from __future__ import annotations

import ast
import datetime as dt
import math
import operator
from collections.abc import Callable

from gureum.services.cloudwatch import exceptions as exc

Series = dict[dt.datetime, float]
Value = float | Series | list[Series]

OPERATORS: dict[type, Callable[[float, float], float]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv}
AGGREGATES: dict[str, Callable[[list[float]], float]] = {
    "SUM": sum, "AVG": lambda v: sum(v) / len(v), "MIN": min, "MAX": max}
ELEMENTWISE: dict[str, Callable[[float], float]] = {
    "ABS": abs, "CEIL": math.ceil, "FLOOR": math.floor}
MAX_LENGTH = 1024


def evaluate(expression: str, named: dict[str, Series], labels: dict[str, str]) -> Series:
    """The time series an expression stands for, given the other queries' series."""
    if len(expression) > MAX_LENGTH:
        raise exc.InvalidParameterValue(f"An expression is at most {MAX_LENGTH} characters")
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError:
        raise exc.InvalidParameterValue(f"Syntax error in expression: {expression[:128]}") from None
    result = _eval(tree.body, named, labels)
    if isinstance(result, dict):
        return result
    raise exc.InvalidParameterValue(
        f"The expression {expression[:128]} must return one time series (not a number or "
        "an array of time series)")


def _eval(node: ast.AST, named: dict[str, Series], labels: dict[str, str]) -> Value:
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float) \
            and not isinstance(node.value, bool):
        return float(node.value)
    if isinstance(node, ast.Name):
        if node.id not in named:
            raise exc.InvalidParameterValue(f"Unknown metric id {node.id[:64]} in expression")
        return named[node.id]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        inner = _eval(node.operand, named, labels)
        sign = -1.0 if isinstance(node.op, ast.USub) else 1.0
        return _combine(sign, inner, operator.mul)
    if isinstance(node, ast.BinOp) and type(node.op) in OPERATORS:
        return _combine(_eval(node.left, named, labels), _eval(node.right, named, labels),
                        OPERATORS[type(node.op)])
    if isinstance(node, ast.List):
        return [_series(_eval(item, named, labels)) for item in node.elts]
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
        return _call(node.func.id.upper(), node.args, named, labels)
    raise exc.InvalidParameterValue("Unsupported element in expression: only numbers, metric "
                                    "ids, + - * /, lists and the offered functions")


def _series(value: Value) -> Series:
    if not isinstance(value, dict):
        raise exc.InvalidParameterValue("A list in an expression holds time series")
    return value


def _call(name: str, args: list[ast.expr], named: dict[str, Series],
          labels: dict[str, str]) -> Value:
    if name == "METRICS":
        wanted = args[0].value if args and isinstance(args[0], ast.Constant) else ""
        return [series for key, series in named.items() if wanted in labels.get(key, key)]
    values = [_eval(a, named, labels) for a in args]
    if name in AGGREGATES and len(values) == 1:
        (only,) = values
        if isinstance(only, list):  # across series, timestamp by timestamp
            stamps = sorted({t for series in only for t in series})
            return {t: AGGREGATES[name]([s[t] for s in only if t in s]) for t in stamps}
        if isinstance(only, dict):  # over one series: a number
            return AGGREGATES[name](list(only.values())) if only else math.nan
    if name in ELEMENTWISE and len(values) == 1 and isinstance(values[0], dict):
        return {t: float(ELEMENTWISE[name](v)) for t, v in values[0].items()}
    raise exc.InvalidParameterValue(f"Function {name[:32]} with these arguments is not "
                                    "offered: SUM, AVG, MIN, MAX, ABS, CEIL, FLOOR, METRICS")


def _combine(left: Value, right: Value, op: Callable[[float, float], float]) -> Value:
    if isinstance(left, list) or isinstance(right, list):
        raise exc.InvalidParameterValue("Arithmetic on an array of time series is not offered")
    if isinstance(left, float) and isinstance(right, float):
        result = _safe(op, left, right)
        return math.nan if result is None else result
    if isinstance(left, float):
        return {t: r for t, v in right.items() if (r := _safe(op, left, v)) is not None}
    if isinstance(right, float):
        return {t: r for t, v in left.items() if (r := _safe(op, v, right)) is not None}
    return {t: r for t in sorted(left.keys() & right.keys())
            if (r := _safe(op, left[t], right[t])) is not None}


def _safe(op: Callable[[float, float], float], a: float, b: float) -> float | None:
    try:
        return op(a, b)
    except ZeroDivisionError:
        return None  # as CloudWatch: no data point where a divisor is zero
