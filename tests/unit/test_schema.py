"""The JSON Schema of programs: committed, current, and true to the loader."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from llmproc.config import program_json_schema_text

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "schema" / "program.schema.json"
PROGRAMS = sorted([*(ROOT / "programs").rglob("*.toml"), *(ROOT / "client_examples").rglob("*.toml")])


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    import json

    schema = json.loads(COMMITTED.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_committed_schema_is_current():
    assert COMMITTED.read_text(encoding="utf-8") == program_json_schema_text(), (
        "schema/program.schema.json is out of date: run `llmproc schema -o schema/program.schema.json`"
    )


def test_llmproc_schema_prints_it():
    done = subprocess.run(
        [sys.executable, "-m", "llmproc.cli.run", "schema"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == COMMITTED.read_text(encoding="utf-8")


@pytest.mark.parametrize("path", PROGRAMS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_shipped_program_checks_clean(validator, path):
    errors = [e.message for e in validator.iter_errors(tomllib.loads(path.read_text(encoding="utf-8")))]
    assert not errors


def test_older_key_names_check_clean(validator):
    program = {"model": {"name": "m", "provider": "anthropic"}, "prompt": {"system": "s", "user_prompt": "u"}}
    assert not list(validator.iter_errors(program))


@pytest.mark.parametrize(
    ("program", "complaint"),
    [
        ({"model": {"name": "m", "provider": "anthropic", "temprature": 1}}, "temprature"),
        ({"model": {"name": "m", "provider": "antropic"}}, "antropic"),
        ({"prompt": {"system_prompt": "s"}}, "'model' is a required property"),
        ({"model": {"name": "m", "provider": "openai"}, "parameters": {"max_tokens": "many"}}, "many"),
    ],
)
def test_editors_flag_what_the_loader_refuses(validator, program, complaint):
    messages = " ".join(e.message for e in validator.iter_errors(program))
    assert complaint in messages
