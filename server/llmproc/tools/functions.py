"""Python callables as tools: JSON schema from type hints, descriptions from the docstring.

Arguments are validated with the same pydantic model that produced the schema, so a
model that sends bad arguments gets an error result that says which argument is
wrong. Sync functions run in a worker thread so they never block the event loop.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable
from typing import Any, get_type_hints

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from ..errors import ToolError
from .base import Access, ToolOutcome, ToolSpec
from .threads import run_sync_tool

_META = "__llmproc_tool__"


def tool(
    name: str | None = None,
    *,
    description: str | None = None,
    access: Access = "read",
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator that names a function tool or overrides its description.

    Undecorated functions are tools too; use this only to change what the model sees.
    """

    def mark(function: Callable[..., Any]) -> Callable[..., Any]:
        setattr(function, _META, {"name": name, "description": description, "access": access})
        return function

    return mark


def _strip_titles(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {k: _strip_titles(v) for k, v in schema.items() if k != "title" or not isinstance(v, str)}
    if isinstance(schema, list):
        return [_strip_titles(v) for v in schema]
    return schema


class FunctionTool:
    """One Python callable, its schema and its argument validator."""

    def __init__(self, function: Callable[..., Any]) -> None:
        meta = getattr(function, _META, {})
        self.function = function
        import docstring_parser  # only when a function becomes a tool: start-up stays fast

        doc = docstring_parser.parse(inspect.getdoc(function) or "")
        arg_docs = {p.arg_name: p.description or "" for p in doc.params}
        description = meta.get("description") or "\n\n".join(
            part for part in (doc.short_description, doc.long_description) if part
        )
        self.is_async = inspect.iscoroutinefunction(function)
        self._arguments_model = self._model(function, arg_docs)
        schema = _strip_titles(self._arguments_model.model_json_schema())
        schema.setdefault("properties", {})
        self.spec = ToolSpec(
            name=meta.get("name") or function.__name__,
            description=description or f"Call {function.__name__}.",
            parameters=schema,
            access=meta.get("access", "read"),
        )

    @staticmethod
    def _model(function: Callable[..., Any], arg_docs: dict[str, str]) -> type[BaseModel]:
        signature = inspect.signature(function)
        try:
            hints = get_type_hints(function)
        except Exception:
            hints = {}
        fields: dict[str, Any] = {}
        for param in signature.parameters.values():
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                continue
            annotation = hints.get(param.name, Any)
            default = ... if param.default is param.empty else param.default
            fields[param.name] = (annotation, Field(default, description=arg_docs.get(param.name) or None))
        return create_model(f"{function.__name__}_arguments", __config__=ConfigDict(extra="forbid"), **fields)

    async def call(self, arguments: dict[str, Any]) -> ToolOutcome:
        try:
            validated = self._arguments_model.model_validate(arguments)
        except ValidationError as err:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'arguments'}: {e['msg']}" for e in err.errors()
            )
            return ToolOutcome.text(
                f"invalid arguments for tool '{self.spec.name}': {problems}", is_error=True
            )
        kwargs = {name: getattr(validated, name) for name in type(validated).model_fields}
        try:
            if self.is_async:
                value = await self.function(**kwargs)
            else:
                # an executor thread, not anyio's: it is cheaper per call and a timeout can
                # abandon a blocked sync tool instead of waiting for it to return.
                value = await run_sync_tool(self.function, **kwargs)
        except ToolError as err:
            return ToolOutcome.text(str(err), is_error=True)
        except Exception as err:
            return ToolOutcome.text(
                f"tool '{self.spec.name}' failed: {type(err).__name__}: {err}", is_error=True
            )
        return ToolOutcome.text(render_value(value))


def render_value(value: Any) -> str:
    """How a tool's return value is shown to the model."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, BaseModel):
        return value.model_dump_json()
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return str(value)


class FunctionToolset:
    """A Toolset made of Python callables."""

    def __init__(self, functions: list[Callable[..., Any]]) -> None:
        self._tools = {t.spec.name: t for t in (FunctionTool(f) for f in functions)}

    def specs(self) -> list[ToolSpec]:
        return [t.spec for t in self._tools.values()]

    async def call(self, name: str, arguments: dict[str, Any]) -> ToolOutcome:
        return await self._tools[name].call(arguments)
