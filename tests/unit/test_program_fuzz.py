"""Whatever it is given, the program loader returns a program or raises ProgramError."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmproc import LLMProgram, ProgramError
from llmproc.config import ProgramConfig

SECTIONS = [*ProgramConfig.model_fields, "modle", "tools.mcp", ""]
KEYS = ["name", "provider", "system_prompt", "system", "files", "builtin", "enabled", "max_tokens",
        "temperature", "thinking", "replies", "servers", "command", "url", "variables", "x"]  # fmt: skip
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 5000), st.floats(allow_nan=True), st.text(max_size=12),
    st.sampled_from(["anthropic", "scripted", "openai", "spawn", "all", "*.md", "../x.toml"]),
)  # fmt: skip
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(KEYS), inner, max_size=4)
    ),
    max_leaves=12,
)
programs = st.dictionaries(
    st.sampled_from(SECTIONS), st.one_of(values, st.dictionaries(st.sampled_from(KEYS), values))
)


def loads_or_program_error(load) -> None:
    try:
        load()
    except ProgramError as err:
        assert str(err).strip()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(programs)
def test_any_dict_gives_a_program_or_a_program_error(data):
    with tempfile.TemporaryDirectory() as folder:
        loads_or_program_error(lambda: LLMProgram.from_dict(data, base_dir=folder))


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(max_size=200), st.binary(max_size=200).map(lambda b: b.decode("latin-1"))))
def test_any_file_text_gives_a_program_or_a_program_error(text):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "p.toml"
        path.write_text(
            "[model]\nname = 'x'\nprovider = 'scripted'\n" + text, encoding="utf-8", errors="replace"
        )
        loads_or_program_error(lambda: LLMProgram.from_toml(path))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_give_a_program_or_a_program_error(data):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "p.toml"
        path.write_bytes(data)
        loads_or_program_error(lambda: LLMProgram.from_toml(path))
