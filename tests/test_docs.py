"""Docs as tests: every CLI command has help with an example and appears in the README."""
from __future__ import annotations

from pathlib import Path

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def test_every_cli_command_is_documented(app) -> None:
    commands = {name: cmd for name, cmd in app.cli.commands.items() if name not in ("run", "shell", "routes")}
    assert {"init-db", "import-report", "create-user"} <= set(commands)
    for name, command in commands.items():
        assert command.help and "Example: flask --app service" in command.help, name
        assert f"flask --app service {name}" in README, name


def test_readme_opens_with_the_two_commands() -> None:
    assert "pip install -e . && python run.py" in README
    assert 'pip install -e ".[test]" && pytest' in README
