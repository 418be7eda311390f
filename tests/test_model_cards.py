"""Every bundled model card is rebuilt from what lies next to its weights (``config.json``: the config and the
figures in ``extra``; for the ECG flow the pairing statistics in ``reports/ecg_flow/``) by the card code in
``cardiosynth.models.cards``, and must equal the committed ``weights/<model>/README.md`` byte for byte; and
``training/`` keeps no card prose (a trainer trains, saves and logs)."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pandas as pd
import pytest

from cardiosynth.models.cards import (
    cine_encoder,
    ecg_flow,
    ecg_mae,
    frame_ae,
    mar,
    motion,
    phenotype_estimator,
    phenotype_vae,
    reid,
    segmenter,
    vae3d,
)
from cardiosynth.models.cine_encoder import CineEncoderConfig
from cardiosynth.models.ecg_flow import EcgFlowConfig
from cardiosynth.models.ecg_mae import EcgMAE, EcgMAEConfig
from cardiosynth.models.frame_ae import FrameAEConfig
from cardiosynth.models.mar import MARConfig
from cardiosynth.models.motion import MotionConfig
from cardiosynth.models.phenotype_vae import PhenotypeVAEConfig
from cardiosynth.models.segmenter import SegmenterConfig
from cardiosynth.models.vae3d import VAE3DConfig
from cardiosynth.paths import REPO_ROOT
from cardiosynth.render.bank import AnatomyBank
from cardiosynth.weights import config_from_dict

WEIGHTS = REPO_ROOT / "weights"
FIXTURES = Path(__file__).parent / "fixtures_cards"


def payload(name: str) -> dict:
    return json.loads((WEIGHTS / name / "config.json").read_text())


def committed(name: str) -> str:
    return (WEIGHTS / name / "README.md").read_text()


def command_in_card(name: str, heading: str) -> str:
    """The one figure a card holds that its folder does not: the command in the fenced block under ``heading``
    (the phenotype VAE and the segmenter did not store their command in ``extra``)."""
    text = committed(name)
    return text.split(f"{heading}\n```\n", 1)[1].split("\n```", 1)[0]


def card_motion():
    p = payload("motion")
    return motion.model_card(config_from_dict(MotionConfig, p["config"]), p["extra"])


def card_vae3d():
    p = payload("vae3d")
    return vae3d.model_card(config_from_dict(VAE3DConfig, p["config"]), p["recipe"], p["extra"])


def card_frame_ae():
    p = payload("frame_ae")
    return frame_ae.model_card(config_from_dict(FrameAEConfig, p["config"]), p["recipe"], p["extra"])


def card_cine_encoder():
    p = payload("cine_encoder")
    e = p["extra"]
    return cine_encoder.model_card(config_from_dict(CineEncoderConfig, p["config"]), e["selected"], e["train_minutes"],
                                   e["dataset"])


def card_reid():
    e = payload("reid")["extra"]
    return reid.model_card(e, e["command"])


def card_ecg_mae():
    p = payload("ecg_mae")
    config, e = config_from_dict(EcgMAEConfig, p["config"]), p["extra"]
    return ecg_mae.model_card(config, p["recipe"], e, e["train_minutes"], e["command"],
                              EcgMAE(config).count_parameters())


def card_ecg_flow():
    p = payload("ecg_flow")
    stats = pd.read_csv(REPO_ROOT / "reports" / "ecg_flow" / "pairing_statistics.csv")
    depends = {name: f"weights/{name}" for name in ("frame_ae", "motion", "ecg_mae")}
    return ecg_flow.model_card(config_from_dict(EcgFlowConfig, p["config"]), p["recipe"], p["extra"], stats,
                               depends["frame_ae"], depends["motion"], depends["ecg_mae"])


def card_phenotype_vae():
    from training.train_phenotype_vae import N_BOOT, N_SAMPLES
    p = payload("phenotype_vae")
    return phenotype_vae.model_card(config_from_dict(PhenotypeVAEConfig, p["config"]), p["recipe"],
                                    p["extra"]["metrics"], command_in_card("phenotype_vae", "## Command"),
                                    n_boot=N_BOOT, n_samples=N_SAMPLES)


def card_segmenter():
    p = payload("segmenter")
    # not stored next to the weights either: where it was trained, as the card says it
    machine = committed("segmenter").split("trained in ", 1)[1].split("\n(", 1)[1].split(").\n", 1)[0]
    return segmenter.model_card(config_from_dict(SegmenterConfig, p["config"]), p["recipe"], p["extra"]["metrics"],
                                command_in_card("segmenter", "## Reproduce"), machine)


def card_phenotype_estimator():
    # the split sizes are not stored next to the coefficients: they are the default prepared dataset's train and
    # val splits, as weights/reid (train cines and patients) and weights/vae3d (val metrics) record them
    train, val = payload("reid")["extra"], payload("vae3d")["extra"]["metrics"]["val"]
    return phenotype_estimator.model_card(payload("phenotype_estimator")["extra"]["val_scores"], train["train_cines"],
                                          train["train_patients"], val["n_cines"], val["n_patients"])


def card_anatomy_bank():
    p = payload("anatomy_bank")
    bank = AnatomyBank(config_from_dict(AnatomyBank.config_class, p["config"]))
    return bank.model_card(p["extra"])


CARDS = {"motion": card_motion, "vae3d": card_vae3d, "frame_ae": card_frame_ae, "cine_encoder": card_cine_encoder,
         "reid": card_reid, "ecg_mae": card_ecg_mae, "ecg_flow": card_ecg_flow, "phenotype_vae": card_phenotype_vae,
         "segmenter": card_segmenter, "phenotype_estimator": card_phenotype_estimator,
         "anatomy_bank": card_anatomy_bank}


@pytest.mark.parametrize("name", sorted(CARDS))
def test_the_bundled_card_is_rebuilt_byte_for_byte(name):
    assert CARDS[name]() == committed(name)


@pytest.mark.parametrize("name", ["mar", "mar_motion"])
def test_the_mar_cards_are_what_the_trainer_wrote(name):
    """The bundled MAR cards were edited by hand after training (the sampler chosen on val, measured results), so
    the check is against what the trainer's card wrote for these folders before the card moved to the library."""
    p = payload(name)
    e = p["extra"]
    folders = {key[:-len("_folder")]: value for key, value in e.items() if key.endswith("_folder")}
    card = mar.model_card(config_from_dict(MARConfig, p["config"]), p["recipe"], e["selected"], e["train_minutes"],
                          e["dataset"], e["command"], e["parameters"], e["n_train"], e["n_val"], folders)
    assert card == (FIXTURES / f"{name}.md").read_text()
    assert card != committed(name)  # if this fails, the bundled card is the trainer's again: test it above


def test_every_bundled_folder_has_its_card_checked():
    bundled = {folder.name for folder in WEIGHTS.iterdir() if (folder / "README.md").is_file()}
    assert bundled == set(CARDS) | {"mar", "mar_motion"}



def test_training_holds_no_model_card_prose():
    """No trainer defines a card function or holds a Markdown heading in a string: cards live in the library."""
    for path in sorted((REPO_ROOT / "training").glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                assert "card" not in node.name, f"{path.name}: {node.name}"
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                headings = [line for line in node.value.splitlines() if line.startswith(("# ", "## ", "### "))]
                assert not headings, f"{path.name}:{node.lineno}: {headings[0]}"
