"""programs/reference.toml documents every key of the schema and loads as a program."""

from __future__ import annotations

import re
from pathlib import Path

from llmproc import LLMProgram
from llmproc.config import ProgramConfig, _models_below

REFERENCE = Path(__file__).resolve().parents[2] / "programs" / "reference.toml"


def schema_keys() -> set[str]:
    """Every field name and alias of every section model."""
    keys: set[str] = set()
    for model in _models_below(ProgramConfig):
        for name, field in model.model_fields.items():
            keys.add(name)
            keys.update(c for c in getattr(field.validation_alias, "choices", []) if isinstance(c, str))
    return keys


def test_reference_program_loads():
    program = LLMProgram.from_toml(REFERENCE)
    assert program.provider == "anthropic"


def test_every_schema_key_is_documented_in_the_reference():
    text = REFERENCE.read_text()

    def documented(key: str) -> bool:
        # as a key (`key =`, `{ key =`), a table (`[x.key]`), a described key (`key (`), or a quoted spelling
        return re.search(rf'(?:^|[\s\[.{{"#]){key}(?:\s*=|\s*\(|"|\])', text, flags=re.MULTILINE) is not None

    missing = sorted(k for k in schema_keys() if not documented(k))
    assert not missing, f"keys missing from programs/reference.toml: {missing}"
