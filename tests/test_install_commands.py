"""The README's two commands are the contract: the app's install pulls only what the app needs, and CI runs
exactly the README's test command (which installs the tests' own requirements first)."""

from __future__ import annotations

import re
import subprocess
import sys

from cardiosynth.paths import REPO_ROOT

TEST_ONLY = {"pytest": "pytest", "playwright": "playwright", "atheris": "atheris", "import-linter": "importlinter",
             "sierraecg": "sierraecg"}  # package -> the module it installs


def _packages(path) -> set[str]:
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return {re.split(r"[=<>~!\[ ]", line, 1)[0].lower() for line in lines if line and not line.startswith("-")}


def _fenced_commands(markdown: str) -> list[str]:
    return [block.strip() for block in re.findall(r"```bash\n(.*?)```", markdown, re.S)]


def test_the_apps_install_pulls_no_test_tool():
    runtime, tests = _packages(REPO_ROOT / "requirements.txt"), _packages(REPO_ROOT / "requirements-test.txt")
    assert not runtime & set(TEST_ONLY), runtime & set(TEST_ONLY)
    assert set(TEST_ONLY) <= tests
    assert "-r requirements.txt" in (REPO_ROOT / "requirements-test.txt").read_text()


def test_ci_runs_exactly_the_readmes_test_command():
    install_and_start, run_tests = _fenced_commands((REPO_ROOT / "README.md").read_text())[:2]
    assert install_and_start == "pip install -r requirements.txt && python app.py"
    assert run_tests.startswith("pip install -r requirements-test.txt && ")
    ci_lines = [line.strip() for line in (REPO_ROOT / ".ci" / "run").read_text().splitlines()]
    assert run_tests in ci_lines


def test_the_app_imports_no_test_tool():
    """Building the app imports none of the tests' packages (a machine with only requirements.txt runs it)."""
    code = ("import sys, app; from cardiosynth.app import build_app; "
            f"print(sorted(m for m in {list(TEST_ONLY.values())!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"
