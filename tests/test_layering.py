"""The architecture is a checked contract: import-linter's layers (``.importlinter``), and imports at the top.

A lower layer importing a higher one, the library importing a command (evaluation, training, fuzz), or a
project import hidden inside a function (which hides an arrow from a reader) fails here.
"""

from __future__ import annotations

import ast
import configparser
import subprocess
import sys

from cardiosynth.paths import REPO_ROOT

CONFIG = REPO_ROOT / ".importlinter"
PROJECT = ("cardiosynth", "evaluation", "training")


def test_import_contracts_are_kept():
    done = subprocess.run([sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command; "
                           "sys.exit(lint_imports_command())", "--no-cache"],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "broken" in done.stdout and "0 broken" in done.stdout


def test_every_library_package_is_in_a_layer():
    """A new subpackage or module must be placed in the layers, or it could import anything."""
    config = configparser.ConfigParser()
    config.read(CONFIG)
    layered = {name.strip() for line in config["importlinter:contract:library-layers"]["layers"].splitlines()
               for name in line.split("|") if name.strip()}
    library = REPO_ROOT / "cardiosynth"
    present = {f"cardiosynth.{p.stem if p.is_file() else p.name}" for p in library.iterdir()
               if (p.is_dir() and (p / "__init__.py").exists()) or (p.suffix == ".py" and p.stem != "__init__")}
    assert present - layered == set(), f"not in any layer of {CONFIG.name}: {sorted(present - layered)}"


def _function_level_project_imports(path, root=REPO_ROOT) -> list[str]:
    tree = ast.parse(path.read_text())
    found = []
    for function in ast.walk(tree):
        if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in ast.walk(function):
            if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith(PROJECT)):
                found.append(f"{path.relative_to(root)}:{node.lineno} from {'.' * node.level}{node.module or ''}")
            elif isinstance(node, ast.Import) and any(a.name.startswith(PROJECT) for a in node.names):
                found.append(f"{path.relative_to(root)}:{node.lineno} import {node.names[0].name}")
    return found


def test_project_imports_sit_at_the_top_of_each_file():
    files = [p for package in PROJECT for p in sorted((REPO_ROOT / package).rglob("*.py"))]
    assert len(files) > 50
    hidden = [hit for path in files for hit in _function_level_project_imports(path)]
    assert hidden == [], "\n".join(hidden)


def test_the_checker_sees_a_hidden_import(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("import numpy\n\ndef f():\n    import numpy as np\n    from cardiosynth.models import mar\n"
                      "    from . import sibling\n    return mar, np, sibling\n")
    hits = _function_level_project_imports(module, tmp_path)
    assert [h.split(" ", 1)[1] for h in hits] == ["from cardiosynth.models", "from ."]


def test_pipelines_export_both_generators():
    import cardiosynth.pipelines as pipelines
    from cardiosynth.pipelines.ecg_to_cine import EcgToCine, EcgToCineOutput
    from cardiosynth.pipelines.phenotype_to_cine import PhenotypeToCine

    assert pipelines.EcgToCine is EcgToCine and pipelines.EcgToCineOutput is EcgToCineOutput
    assert pipelines.PhenotypeToCine is PhenotypeToCine
    assert {"EcgToCine", "PhenotypeToCine", "PhenotypePrior"} <= set(pipelines.__all__)


def test_measure_and_inference_contracts_are_declared():
    """Issue 40: the instruments do not build generators, and inference does not import the data preparation."""
    config = configparser.ConfigParser()
    config.read(CONFIG)
    measure = config["importlinter:contract:measure-measures"]
    assert measure["source_modules"].split() == ["cardiosynth.measure"]
    assert "cardiosynth.pipelines" in measure["forbidden_modules"].split()
    inference = config["importlinter:contract:inference-without-training-data"]
    assert inference["source_modules"].split() == ["cardiosynth.pipelines"]
    assert {"cardiosynth.data.prepare", "cardiosynth.data.acdc"} <= set(inference["forbidden_modules"].split())
