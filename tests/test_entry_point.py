"""The `inpainting` console command that pyproject.toml installs names a real function."""
import importlib
import tomllib
from pathlib import Path


def test_console_script_resolves_to_the_cli_main():
    project = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    for name, target in project["project"]["scripts"].items():
        module, _, function = target.partition(":")
        main = getattr(importlib.import_module(module), function)
        assert callable(main), f"{name} -> {target} is not callable"
    from inpainting.app.cli import main as cli_main
    assert project["project"]["scripts"]["inpainting"] == "inpainting.app.cli:main"
    assert main is cli_main or callable(main)
