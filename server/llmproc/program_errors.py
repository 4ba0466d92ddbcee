"""Turn TOML and pydantic validation failures into one readable line per problem.

Each line names the file, the line (when it can be found), the key path in TOML
spelling (`[prompt] system_prompt`), what is wrong and, for a misspelt key or value,
the closest valid spelling.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from . import config
from .config import ProgramConfig


def suggest(word: str, choices: typing.Iterable[str]) -> str:
    """'; did you mean 'x'?' for the closest choice, or ''."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside an annotation such as `X | None`, if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_in(arg)
        if found:
            return found
    return None


def _is_mapping(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin is dict:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_is_mapping(a) for a in typing.get_args(annotation))
    return False


def _keys_of(model: type[BaseModel]) -> list[str]:
    keys: list[str] = []
    for name, field in model.model_fields.items():
        keys.append(name)
        choices = getattr(field.validation_alias, "choices", None) or []
        keys.extend(c for c in choices if isinstance(c, str))
    return keys


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model that owns the last element of `loc` (None below a free-form table)."""
    model: type[BaseModel] | None = ProgramConfig
    loc = tuple(p for p in loc if isinstance(p, str))  # list indexes do not change the model
    i = 0
    while i < len(loc) - 1 and model is not None:
        field = model.model_fields.get(str(loc[i]))
        if field is None:
            return None
        annotation = field.annotation
        if _is_mapping(annotation):
            i += 1  # skip the free-form key (a server or program name)
            value_type = [a for a in typing.get_args(annotation) if typing.get_origin(a) is dict]
            annotation = typing.get_args(value_type[0] if value_type else annotation)[-1]
        model = _model_in(annotation)
        i += 1
    return model


def _literal_choices(loc: tuple[Any, ...]) -> list[str]:
    model = _model_at(loc)
    if model is None or str(loc[-1]) not in model.model_fields:
        return []
    choices: list[str] = []

    def collect(annotation: Any) -> None:
        if typing.get_origin(annotation) is Literal:
            choices.extend(str(a) for a in typing.get_args(annotation))
        for arg in typing.get_args(annotation):
            collect(arg)

    collect(model.model_fields[str(loc[-1])].annotation)
    return choices


def section_name(loc: tuple[Any, ...]) -> str:
    """('mcp', 'servers', 'time') -> '[mcp.servers.time]'."""
    return "[" + ".".join(str(p) for p in loc if isinstance(p, str)) + "]"


_TYPE_TAG = re.compile(r"^(str|int|float|bool|none|(list|dict|literal|function-[a-z]+)\[.*\])$")
_MODEL_NAMES = {m.__name__ for m in vars(config).values() if isinstance(m, type) and issubclass(m, BaseModel)}


def _is_union_tag(part: Any) -> bool:
    """pydantic names the branch of a union in `loc` ('str', 'LinkedProgramConfig', ...)."""
    return isinstance(part, str) and (part in _MODEL_NAMES or _TYPE_TAG.match(part) is not None)


def clean_loc(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(p for p in loc if not _is_union_tag(p))


def key_path(loc: tuple[Any, ...]) -> str:
    """('prompt', 'system_prompt') -> '[prompt] system_prompt'; list indexes are left out."""
    parts = [str(p) for p in loc if isinstance(p, str)]
    if not parts:
        return "the program"
    if len(parts) == 1:
        return f"[{parts[0]}]"
    return f"[{'.'.join(parts[:-1])}] {parts[-1]}"


def find_line(text: str, loc: tuple[Any, ...]) -> int | None:
    """Best-effort 1-based line of the key at `loc` in TOML `text`."""
    names = [str(p) for p in loc if isinstance(p, str)]
    if not names:
        return None
    lines = text.splitlines()
    header_re = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?")
    section, start = "", 0
    # Find the deepest table header that is a prefix of loc.
    for depth in range(len(names), 0, -1):
        wanted = ".".join(names[:depth])
        for number, line in enumerate(lines):
            match = header_re.match(line)
            if match and match.group(1).replace('"', "") == wanted:
                section, start = wanted, number
                if depth == len(names):
                    return number + 1
                break
        if section:
            break
    rest = names[len(section.split(".")) if section else 0 :]
    if not rest:
        return start + 1
    key_re = re.compile(rf"^\s*\"?{re.escape(rest[0])}\"?\s*(=|\.)")
    for number in range(start + 1 if section else 0, len(lines)):
        if section and header_re.match(lines[number]):
            break
        if not section and header_re.match(lines[number]):
            break
        if key_re.match(lines[number]):
            return number + 1
    return start + 1 if section else None


_PLAIN_TYPES = [
    (re.compile(r"Input should be a valid dictionary( or instance of \w+)?"), "expected a table"),
    (re.compile(r"Input should be a valid string"), "expected a string"),
    (re.compile(r"Input should be a valid list"), "expected a list"),
]


def _describe(error: dict[str, Any]) -> tuple[tuple[Any, ...], str]:
    loc = clean_loc(tuple(error["loc"]))
    kind = error["type"]
    if kind == "extra_forbidden":
        key = str(loc[-1])
        parent = loc[:-1]
        model = _model_at(loc)
        hint = suggest(key, _keys_of(model)) if model else ""
        if not parent:
            return loc, _unknown_section_text(key)
        return loc, f"unknown key '{key}' in {section_name(parent)}{hint}"
    if kind == "missing":
        return loc, f"missing required key {key_path(loc)}"
    if kind == "literal_error":
        value = error.get("input")
        choices = _literal_choices(
            tuple(p for p in loc if isinstance(p, str) and not p.startswith("literal["))
        )
        hint = suggest(str(value), choices) if isinstance(value, str) else ""
        expected = f"; expected one of: {', '.join(choices)}" if choices and not hint else ""
        return loc, f"invalid value {value!r} for {key_path(loc)}{expected}{hint}"
    message = error["msg"].removeprefix("Value error, ")
    for pattern, plain in _PLAIN_TYPES:
        message = pattern.sub(plain, message)
    value = error.get("input")
    shown = (
        f" (got {value!r})" if isinstance(value, (str, int, float, bool)) and len(repr(value)) < 60 else ""
    )
    return loc, f"{key_path(loc)}: {message}{shown}"


def _unknown_section_text(key: str) -> str:
    close = difflib.get_close_matches(key, list(ProgramConfig.model_fields), n=1, cutoff=0.6)
    return f"unknown section [{key}]" + (f"; did you mean [{close[0]}]?" if close else "")


def _union_root(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """The location up to the first union tag: errors of one union's branches share it."""
    for index, part in enumerate(loc):
        if _is_union_tag(part):
            return loc[:index]
    return loc


def format_validation_error(error: ValidationError, source: str, text: str | None) -> list[str]:
    """One line per problem, `source:line: message`.

    A union (a path or a table, say) reports one error per branch; only the deepest is kept,
    since it comes from the branch the author meant.
    """
    chosen: dict[tuple[Any, ...], dict[str, Any]] = {}
    for details in error.errors():
        item: dict[str, Any] = dict(details)
        root = _union_root(tuple(item["loc"]))
        kept = chosen.get(root)
        if kept is None or len(clean_loc(tuple(item["loc"]))) > len(clean_loc(tuple(kept["loc"]))):
            chosen[root] = item
    lines = []
    for item in chosen.values():
        loc, message = _describe(item)
        line = find_line(text, loc) if text else None
        lines.append(f"{source}:{line}: {message}" if line else f"{source}: {message}")
    return lines


def describe_source(path: Path | None) -> str:
    return str(path) if path else "<program>"
