"""The calculator tool: arithmetic and math functions, evaluated safely from a parsed tree.

Only numbers, arithmetic operators, comparisons and the names below are allowed; no
attribute access, no calls of anything else, and bounded powers and factorials, so an
expression can neither run code nor exhaust the machine.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from typing import Any

from ..errors import ToolError
from .functions import tool

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {ast.UAdd: operator.pos, ast.USub: operator.neg}
_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], bool]] = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}
_MATH = (  # noqa: SIM905 - one readable line of names
    "sqrt exp log log2 log10 sin cos tan asin acos atan atan2 sinh cosh tanh degrees radians "
    "floor ceil gcd lcm hypot comb perm"
).split()
_FUNCTIONS: dict[str, Callable[..., Any]] = {name: getattr(math, name) for name in _MATH} | {
    "abs": abs,
    "round": round,
    "min": min,
    "max": max,
    "factorial": math.factorial,
}
_CONSTANTS = {"pi": math.pi, "e": math.e, "tau": math.tau, "inf": math.inf}
_MAX_EXPONENT = 10_000
_MAX_FACTORIAL = 5_000


def _evaluate(node: ast.AST) -> Any:
    if isinstance(node, ast.Expression):
        return _evaluate(node.body)
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _evaluate(node.left), _evaluate(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > _MAX_EXPONENT and abs(left) > 1:
            raise ToolError(f"exponent {right} is too large (limit {_MAX_EXPONENT})")
        return _BINARY[type(node.op)](left, right)
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_evaluate(node.operand))
    if isinstance(node, ast.Compare) and all(type(op) in _COMPARE for op in node.ops):
        left = _evaluate(node.left)
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            right = _evaluate(comparator)
            if not _COMPARE[type(op)](left, right):
                return False
            left = right
        return True
    if isinstance(node, ast.Name):
        if node.id in _CONSTANTS:
            return _CONSTANTS[node.id]
        raise ToolError(f"unknown name '{node.id}'; constants: {', '.join(_CONSTANTS)}")
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
        function = _FUNCTIONS.get(node.func.id)
        if function is None:
            raise ToolError(f"unknown function '{node.func.id}'; functions: {', '.join(sorted(_FUNCTIONS))}")
        args = [_evaluate(a) for a in node.args]
        if function is math.factorial and args and args[0] > _MAX_FACTORIAL:
            raise ToolError(f"factorial argument is too large (limit {_MAX_FACTORIAL})")
        return function(*args)
    raise ToolError(f"not allowed in an expression: {ast.unparse(node)}")


def evaluate(expression: str) -> int | float | bool:
    """The value of an arithmetic expression; ToolError explains anything it can not compute."""
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError as err:
        raise ToolError(f"invalid expression: {err.msg}") from None
    try:
        return _evaluate(tree)
    except ToolError:
        raise
    except ZeroDivisionError:
        raise ToolError("division by zero") from None
    except (ValueError, OverflowError, TypeError) as err:
        raise ToolError(f"can not compute: {err}") from None


@tool(access="read")
def calculator(expression: str) -> str:
    """Evaluate an arithmetic expression exactly: + - * / // % **, comparisons, parentheses,
    math functions (sqrt, log, sin, factorial, ...) and the constants pi, e, tau.

    Args:
        expression: The expression, for example "sqrt(2) * (3 + 4) ** 2".
    """
    value = evaluate(expression)
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    try:
        return str(value)
    except ValueError:  # an integer with more digits than Python prints
        return f"an integer of about {math.log10(abs(value)):.0f} digits (too long to print)"
