"""The <env> block of the system prompt: facts about where the process runs, opt-in per variable."""

from __future__ import annotations

import datetime
import getpass
import os
import platform
import socket

from .config import ENV_INFO_VARIABLES, EnvInfoConfig

_READERS = {
    "working_directory": os.getcwd,
    "platform": lambda: platform.system().lower(),
    "date": lambda: datetime.date.today().isoformat(),
    "python_version": platform.python_version,
    "hostname": socket.gethostname,
    "username": getpass.getuser,
}


def render(config: EnvInfoConfig) -> str:
    """The <env> block for the chosen variables, or '' when none are chosen."""
    names = list(ENV_INFO_VARIABLES) if config.variables == "all" else list(config.variables)
    lines = [f"{name}: {_READERS[name]()}" for name in names]
    lines += [f"{key}: {value}" for key, value in (config.model_extra or {}).items()]
    return "<env>\n" + "\n".join(lines) + "\n</env>" if lines else ""
