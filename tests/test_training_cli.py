"""The trainers' shared command line (training.common.training_parser / parse_training_run)."""

from __future__ import annotations

import ast
import dataclasses
import importlib
from pathlib import Path

import pytest
import torch

from cardiosynth.paths import REPO_ROOT
from training.common import config_suffix, parse_training_run, training_parser


@dataclasses.dataclass(frozen=True)
class TinyRecipe:
    epochs: int = 10


@dataclasses.dataclass(frozen=True)
class TinyConfig:
    name: str = "default"


CONFIGS = {"default": TinyConfig(), "paper": TinyConfig(name="paper")}
RECIPES = {"default": TinyRecipe(), "paper": TinyRecipe(epochs=99)}


def test_a_run_selects_config_recipe_epochs_out_and_the_command_without_resume():
    parser = training_parser("doc", CONFIGS, "thing", max_steps=True)
    run = parse_training_run(parser, CONFIGS, "thing", "train_thing", ["--config", "paper", "--epochs", "3",
                                                                     "--resume"], recipes=RECIPES)
    assert run.config == TinyConfig(name="paper") and run.recipe == TinyRecipe(epochs=3)
    assert run.out == Path("weights/thing_paper")
    assert run.command == "python -m training.train_thing --config paper --epochs 3"
    assert run.args.resume and run.args.max_steps is None and run.args.device == "auto"
    default = parse_training_run(parser, CONFIGS, "thing", "train_thing", [], recipes=RECIPES)
    assert default.config == CONFIGS["default"] and default.recipe == RECIPES["default"]
    assert default.out == Path("weights/thing")
    assert parse_training_run(parser, CONFIGS, "thing", "train_thing", []).recipe is None
    with pytest.raises(ValueError, match="no training recipe"):
        parse_training_run(parser, CONFIGS, "thing", "train_thing", ["--epochs", "3"])
    chosen = parse_training_run(parser, CONFIGS, "thing", "train_thing", ["--out", "/tmp/x"],
                                default_out=lambda args: "never used")
    assert chosen.out == Path("/tmp/x")
    assert config_suffix("default") == "" and config_suffix("paper") == "_paper"


def test_threads_are_set_and_unknown_configs_refused():
    parser = training_parser("doc", CONFIGS, "thing", threads=True)
    before = torch.get_num_threads()
    try:
        parse_training_run(parser, CONFIGS, "thing", "train_thing", ["--threads", "1"])
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    with pytest.raises(SystemExit):
        parse_training_run(parser, CONFIGS, "thing", "train_thing", ["--config", "huge"])


@pytest.mark.parametrize("module", ["train_cine_encoder", "train_vae3d", "train_ecg_mae", "train_mar", "train_frame_ae",
                                    "train_segmenter", "train_ecg_flow", "fit_motion"])
def test_every_trainer_explains_its_flags(module, capsys):
    with pytest.raises(SystemExit) as done:
        importlib.import_module(f"training.{module}").main(["--help"])
    assert done.value.code == 0
    shown = capsys.readouterr().out
    assert "--config" in shown and "--out" in shown


@pytest.mark.parametrize("module, presets", [
    ("train_cine_encoder", "CINE_ENCODER_RECIPES"), ("train_vae3d", "VAE3D_RECIPES"),
    ("train_ecg_mae", "ECG_MAE_RECIPES"), ("train_mar", "MAR_RECIPES"), ("train_frame_ae", "FRAME_AE_RECIPES"),
    ("train_segmenter", "SEGMENTER_RECIPES"),
    ("train_ecg_flow", "ECG_FLOW_RECIPES"), ("train_reid", "REID_RECIPES")])
def test_every_config_a_trainer_offers_has_a_recipe_of_its_name(module, presets):
    """``--config NAME`` selects the model config and the training recipe (training.recipes) of that name."""
    from training import recipes

    assert set(importlib.import_module(f"training.{module}").CONFIGS) == set(getattr(recipes, presets))


def test_model_configs_hold_no_training_recipe():
    """What builds and runs a model is its config; how it was trained is the trainer's recipe, saved beside it."""
    from cardiosynth.models import (cine_encoder, ecg_flow, ecg_mae, frame_ae, mar, motion,  # noqa: I001
                                    phenotype_vae, reid, segmenter, vae3d)

    for cls in (cine_encoder.CineEncoderConfig, ecg_flow.EcgFlowConfig, ecg_mae.EcgMAEConfig, frame_ae.FrameAEConfig,
                mar.MARConfig, motion.MotionConfig, phenotype_vae.PhenotypeVAEConfig, reid.ReidConfig,
                segmenter.SegmenterConfig, vae3d.VAE3DConfig):
        assert "recipe" not in {field.name for field in dataclasses.fields(cls)}, cls.__name__


@pytest.mark.parametrize("module", ["motion_report", "vae3d_report"])
def test_the_reports_that_left_the_trainers_explain_their_flags(module, capsys):
    """``fit_motion`` / ``train_vae3d`` no longer take ``--report`` / ``--bench``: the evaluation wing does."""
    with pytest.raises(SystemExit) as done:
        importlib.import_module(f"evaluation.{module}").main(["--help"])
    assert done.value.code == 0
    shown = capsys.readouterr().out
    assert "--bench" in shown and "--threads" in shown and "--dataset" in shown
    trainer = {"motion_report": "fit_motion", "vae3d_report": "train_vae3d"}[module]
    with pytest.raises(SystemExit):
        importlib.import_module(f"training.{trainer}").main(["--report"])


@pytest.mark.parametrize("module", ["ecg_mae_report", "ecg_flow_pairing"])
def test_the_ecg_reports_that_left_the_trainers_explain_their_flags(module, capsys):
    """``train_ecg_mae`` no longer takes ``--report`` / ``--evaluate``, and ``train_ecg_flow`` no longer writes
    ``reports/ecg_flow/``: the evaluation wing does."""
    with pytest.raises(SystemExit) as done:
        importlib.import_module(f"evaluation.{module}").main(["--help"])
    assert done.value.code == 0
    shown = capsys.readouterr().out
    assert "--out" in shown and "--report" in shown and "--threads" in shown
    assert ("--evaluate" in shown) == (module == "ecg_mae_report")
    assert ("--dataset" in shown) == (module == "ecg_flow_pairing")  # the ECG MAE reads LUDB, no prepared dataset


@pytest.mark.parametrize("flags", [["--report", "reports/ecg_mae"], ["--evaluate"]])
def test_the_ecg_mae_trainer_refuses_report_and_evaluate(flags, capsys):
    with pytest.raises(SystemExit) as done:
        importlib.import_module("training.train_ecg_mae").main(flags)
    assert done.value.code == 2 and "unrecognized arguments" in capsys.readouterr().err


def test_no_trainer_writes_under_reports():
    """A trainer trains, saves and logs: no trainer builds a path under ``reports/`` (``REPO_ROOT / "reports"`` or
    a "reports/..." string); reports are written by ``python -m evaluation.<name>``."""
    for path in sorted((REPO_ROOT / "training").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                assert node.value != "reports" and not node.value.startswith("reports/"), f"{path.name}:{node.lineno}"
