"""Programs load from TOML, dicts and Python; every bad program gives one clear ProgramError."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmproc import LLMProgram, ProgramError

MINIMAL = """
[model]
name = "claude-haiku-4-5"
provider = "anthropic"
"""


def load_error(write_program, text: str) -> str:
    path = write_program(text)
    with pytest.raises(ProgramError) as info:
        LLMProgram.from_toml(path)
    return str(info.value)


def test_minimal_program_loads_with_defaults(write_program):
    program = LLMProgram.from_toml(write_program(MINIMAL))
    assert program.model_name == "claude-haiku-4-5"
    assert program.provider == "anthropic"
    assert program.config.model.max_iterations == 10
    assert program.system_prompt == ""
    assert program.display_name == "anthropic claude-haiku-4-5"


def test_established_spellings_load_unchanged(write_program, tmp_path):
    (tmp_path / "expert.toml").write_text(MINIMAL)
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "mcp_servers.json").write_text(
        '{"mcpServers": {"sequential-thinking": {"command": "npx", '
        '"args": ["-y", "@modelcontextprotocol/server-sequential-thinking"]}}}'
    )
    program = LLMProgram.from_toml(
        write_program(
            """
            [model]
            name = "claude-haiku-4-5"
            provider = "anthropic"
            display_name = "Claude"
            disable_automatic_caching = true
            [prompt]
            system = "Be brief."
            user_prompt = "Hi"
            [parameters]
            temperature = 0.7
            max_tokens = 8000
            top_k = 40
            [parameters.thinking]
            type = "enabled"
            budget_tokens = 4096
            [parameters.extra_headers]
            anthropic-beta = "token-efficient-tools-2025-02-19"
            [tools]
            enabled = ["spawn", "calculator"]
            [tools.aliases]
            calc = "calculator"
            [mcp]
            config_path = "config/mcp_servers.json"
            [mcp.tools]
            sequential-thinking = "all"
            [linked_programs]
            expert = "./expert.toml"
            [env_info]
            variables = ["platform"]
            project_name = "demo"
            [file_descriptor]
            enabled = true
            max_direct_output_chars = 8000
            [demo]
            prompts = ["hello"]
            """
        )
    )
    assert program.config.prompt.system_prompt == "Be brief."
    assert program.config.prompt.user == "Hi"
    assert program.config.tools.builtin == ["spawn", "calculator"]
    assert program.config.mcp.tools == {"sequential-thinking": "all"}
    assert program.mcp_servers["sequential-thinking"].command == "npx"
    assert program.linked_program_paths["expert"][0] == tmp_path / "expert.toml"
    assert "<env>\nplatform: " in program.system_prompt
    assert "project_name: demo" in program.system_prompt
    assert program.display_name == "Claude"


def test_misspelt_key_names_file_line_section_and_fix(write_program):
    message = load_error(
        write_program,
        MINIMAL + '\n[prompt]\nsytem_prompt = "hi"\n',
    )
    assert "program.toml:7:" in message
    assert "unknown key 'sytem_prompt' in [prompt]; did you mean 'system_prompt'?" in message


def test_misspelt_section_suggests_the_section(write_program):
    message = load_error(write_program, MINIMAL + "\n[paramters]\ntemperature = 1\n")
    assert "program.toml:6: unknown section [paramters]; did you mean [parameters]?" in message


def test_misspelt_provider_suggests_the_provider(write_program):
    message = load_error(write_program, '[model]\nname = "x"\nprovider = "antropic"\n')
    assert "program.toml:3:" in message
    assert "invalid value 'antropic' for [model] provider" in message
    assert "did you mean 'anthropic'?" in message


def test_unknown_provider_lists_the_choices(write_program):
    message = load_error(write_program, '[model]\nname = "x"\nprovider = "zzz"\n')
    assert (
        "expected one of: anthropic, anthropic_vertex, openai, gemini, gemini_vertex, mcp_sampling, scripted"
        in message
    )


def test_missing_model_section_is_named(write_program):
    message = load_error(write_program, '[prompt]\nsystem_prompt = "x"\n')
    assert "missing required key [model]" in message


def test_missing_model_name_is_named(write_program):
    message = load_error(write_program, '[model]\nprovider = "anthropic"\n')
    assert "missing required key [model] name" in message


def test_wrong_type_names_key_and_value(write_program):
    message = load_error(write_program, MINIMAL + '\n[parameters]\nmax_tokens = "lots"\n')
    assert "program.toml:7: [parameters] max_tokens: Input should be a valid integer" in message
    assert "'lots'" in message


def test_out_of_range_value_is_reported(write_program):
    message = load_error(write_program, MINIMAL + "\n[parameters]\ntemperature = 7\n")
    assert "[parameters] temperature: Input should be less than or equal to 2" in message


def test_thinking_budget_must_fit_in_max_tokens(write_program):
    extra = "\n[parameters]\nmax_tokens = 2000\n[parameters.thinking]\nbudget_tokens = 4096\n"
    message = load_error(write_program, MINIMAL + extra)
    assert "[parameters]: thinking budget_tokens (4096) must be less than max_tokens (2000)" in message


def test_unknown_builtin_tool_suggests_a_fix(write_program):
    message = load_error(write_program, MINIMAL + '\n[tools]\nbuiltin = ["spwan"]\n')
    assert "invalid value 'spwan'" in message
    assert "did you mean 'spawn'?" in message


def test_parameter_the_provider_does_not_take_is_an_error(write_program):
    message = load_error(write_program, MINIMAL + "\n[parameters]\nfrequency_penalty = 0.5\n")
    assert "[parameters] frequency_penalty is not supported by provider 'anthropic'" in message
    assert "program.toml:7:" in message


def test_several_problems_are_all_listed(write_program):
    path = write_program('[model]\nname = "x"\nprovider = "nope"\n[prompt]\nsytem = 1\n')
    with pytest.raises(ProgramError) as info:
        LLMProgram.from_toml(path)
    assert len(info.value.problems) == 2


def test_toml_syntax_error_names_line(write_program):
    message = load_error(write_program, '[model]\nname = "x\nprovider = "anthropic"\n')
    assert "program.toml:2: invalid TOML:" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        (lambda d: None, "program file not found"),
        (lambda d: (d / "program.toml").mkdir(), "is a directory"),
        (lambda d: (d / "program.toml").write_text("  \n"), "program file is empty"),
        (lambda d: (d / "program.toml").write_bytes(b"\x00\x01binary"), "is a binary file"),
        (
            lambda d: (d / "program.toml").write_bytes(b"[model]\nname = '\xff'\n"),
            r"is not UTF-8 text \(byte 0xff",
        ),
    ],
    ids=["missing", "directory", "empty", "binary", "not-utf8"],
)
def test_unreadable_program_files_say_why(tmp_path: Path, setup, expected):
    setup(tmp_path)
    with pytest.raises(ProgramError, match=expected):
        LLMProgram.from_toml(tmp_path / "program.toml")


def test_missing_suffix_suggests_the_toml_file(tmp_path):
    (tmp_path / "minimal.toml").write_text(MINIMAL)
    with pytest.raises(ProgramError, match=r"did you mean '.*minimal\.toml'\?"):
        LLMProgram.from_toml(tmp_path / "minimal")


def test_missing_system_prompt_file_is_named(write_program):
    message = load_error(write_program, MINIMAL + '\n[prompt]\nsystem_prompt_file = "nope.md"\n')
    assert "[prompt] system_prompt_file" in message
    assert "nope.md' not found" in message


def test_system_prompt_file_is_read_relative_to_the_program(write_program, tmp_path):
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "sys.md").write_text("From a file.")
    program = LLMProgram.from_toml(
        write_program(MINIMAL + '\n[prompt]\nsystem_prompt_file = "prompts/sys.md"\n')
    )
    assert program.system_prompt == "From a file."


def test_preload_files_and_globs_join_the_system_prompt(write_program, tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("alpha")
    (tmp_path / "docs" / "b.md").write_text("beta")
    program = LLMProgram.from_toml(
        write_program(MINIMAL + '\n[prompt]\nsystem_prompt = "Base."\n[preload]\nfiles = ["docs/*.md"]\n')
    )
    prompt = program.system_prompt
    assert prompt.startswith("Base.\n\n<preload>")
    assert '<file path="a.md">\nalpha\n</file>' in prompt
    assert prompt.index("alpha") < prompt.index("beta")


def test_missing_preload_file_is_an_error(write_program):
    message = load_error(write_program, MINIMAL + '\n[preload]\nfiles = ["missing.md"]\n')
    assert "[preload] file" in message and "missing.md' not found" in message


def test_preload_glob_matching_nothing_is_an_error(write_program):
    message = load_error(write_program, MINIMAL + '\n[preload]\nfiles = ["none/*.md"]\n')
    assert "[preload] files: 'none/*.md' matched no files" in message


def test_missing_linked_program_is_named(write_program):
    message = load_error(write_program, MINIMAL + '\n[linked_programs]\nexpert = "expert.toml"\n')
    assert "[linked_programs] expert: program file" in message and "not found" in message


def test_scripted_section_needs_the_scripted_provider(write_program):
    message = load_error(write_program, MINIMAL + '\n[scripted]\nreplies = ["hi"]\n')
    assert "[scripted] is only used with provider = 'scripted'" in message


def test_mcp_server_needs_command_or_url(write_program):
    message = load_error(write_program, MINIMAL + "\n[mcp.servers.time]\nargs = []\n")
    assert "give exactly one of 'command' (stdio) or 'url' (HTTP)" in message


def test_union_errors_name_the_key_once_without_internal_type_names(write_program):
    path = write_program(MINIMAL + '\n[linked_programs]\nexpert = 5\n[scripted]\nreplies = [{ txt = "a" }]\n')
    with pytest.raises(ProgramError) as info:
        LLMProgram.from_toml(path)
    assert [p.split(": ", 1)[1] for p in info.value.problems] == [
        "[linked_programs] expert: expected a string (got 5)",
        "unknown key 'txt' in [scripted.replies]; did you mean 'text'?",
    ]


def test_python_constructor_builds_the_same_program():
    program = LLMProgram(
        model_name="claude-haiku-4-5",
        provider="anthropic",
        system_prompt="Be brief.",
        parameters={"max_tokens": 100},
    )
    assert program.config.parameters.max_tokens == 100
    assert program.system_prompt == "Be brief."


def test_python_constructor_validates_too():
    with pytest.raises(ProgramError, match="invalid value 'antropic'"):
        LLMProgram(model_name="x", provider="antropic")


def test_from_dict_reports_the_given_source():
    with pytest.raises(ProgramError, match=r"^settings: unknown section \[modle\]; did you mean \[model\]\?"):
        LLMProgram.from_dict({"modle": {}, "model": {"name": "x", "provider": "scripted"}}, source="settings")


@pytest.mark.parametrize(
    ("icon", "complaint"),
    [
        ("missing.png", "[server] icon missing.png can not be read"),
        ("logo.gif", "use a .png, .jpg, .svg or .webp file, or an https:// URL"),
        ("http://example.com/a.png", "must be an https:// URL or an image file"),
        ("big.png", "at most 65,536"),
    ],
)
def test_a_bad_icon_names_the_key_and_the_fix(write_program, tmp_path, icon, complaint):
    (tmp_path / "big.png").write_bytes(b"\x89PNG" + b"0" * 70_000)
    message = load_error(write_program, MINIMAL + f'[server]\nicon = "{icon}"\n')
    assert complaint in message and "program.toml:" in message


def test_an_icon_file_becomes_a_data_uri(write_program, tmp_path):
    (tmp_path / "logo.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    program = LLMProgram.from_toml(write_program(MINIMAL + '[server]\nicon = "logo.svg"\ntitle = "Logo"\n'))
    src, media_type = program.server_icon
    assert media_type == "image/svg+xml" and src.startswith("data:image/svg+xml;base64,")
    url = LLMProgram.from_toml(write_program(MINIMAL + '[server]\nicon = "https://x.example/i.png?v=2"\n'))
    assert url.server_icon == ("https://x.example/i.png?v=2", "image/png")
