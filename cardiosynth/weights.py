"""Bundled weights: ``model.safetensors`` + ``config.json`` + ``README.md`` (model card) in one folder.

``config.json`` holds the model's config dataclass (what builds and runs the model, so training and inference
cannot drift), beside it the training recipe the trainer used (top-level ``recipe``: provenance for the model
card, never read to build the model), anything else inference needs (scalers, latent scales), the sha256 of the
weights file and of every model this one depends on. Loading refuses a hash mismatch and never unpickles anything.

Every model loads and saves one way, through :class:`Pretrained` (diffusers-style)::

    segmenter = Segmenter.from_pretrained()            # the bundled weights/segmenter
    vae = VAE3D.from_pretrained("runs/vae3d_paper")    # or any folder
    vae.save_pretrained(folder, card, extra={...}, recipe=recipe)  # safetensors + config.json + model card
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import typing
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from cardiosynth.paths import REPO_ROOT

WEIGHTS_DIR = REPO_ROOT / "weights"
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
CARD_FILE = "README.md"
#: the real ACDC training patients' nine phenotypes the app draws beside the phenotype VAE's samples (a bundled,
#: versioned table written by ``python -m training.export_reference_population``; provenance in the .md beside it)
REFERENCE_POPULATION = WEIGHTS_DIR / "phenotype_vae" / "reference_population.csv"


class WeightsError(RuntimeError):
    """Weights are missing, altered or inconsistent with their config."""


def checked_reference_population(path: str | Path = REFERENCE_POPULATION) -> Path:
    """``path`` after checking its sha256 against the one its card (the ``.md`` beside it) records, as weights
    are checked; a WeightsError when the card is missing or the table was altered."""
    path = Path(path)
    card = path.with_suffix(".md")
    recorded = re.search(r"sha256 of the CSV `([0-9a-f]{64})`", card.read_text()) if card.is_file() else None
    if recorded is None:
        raise WeightsError(f"{card} does not record the sha256 of {path.name}")
    if sha256_of(path) != recorded.group(1):
        raise WeightsError(f"{path} does not match the sha256 recorded in {card.name}: refusing an altered table")
    return path


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def resolve(folder_or_name: str | Path) -> Path:
    """A folder path, or the name of a bundled model under ``weights/``."""
    folder = Path(folder_or_name)
    if (folder / CONFIG_FILE).is_file():
        return folder
    bundled = WEIGHTS_DIR / str(folder_or_name)
    if (bundled / CONFIG_FILE).is_file():
        return bundled
    raise WeightsError(f"No weights found at {folder} (nor bundled as weights/{folder_or_name}). "
                       "Train them with the command in training/ or pass the right folder.")


def _as_dict(value) -> dict:
    """A config or recipe (a dataclass or a dict) as the dict its JSON holds."""
    return dataclasses.asdict(value) if dataclasses.is_dataclass(value) else dict(value)


def write_weights(
    folder: str | Path,
    model: torch.nn.Module | dict[str, torch.Tensor],
    config: Any,
    card: str,
    extra: dict | None = None,
    depends_on: dict[str, str | Path] | None = None,
    recipe: Any = None,
) -> Path:
    """Write weights (a module or a dict of tensors), config (+ the training ``recipe`` beside it, when there is
    one, ``extra`` and dependency hashes) and model card; return the folder. Models call it through
    :meth:`Pretrained.save_pretrained`; this is the writer for what is not a model class (a fitted estimator's
    arrays, test fixtures)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = model.state_dict() if isinstance(model, torch.nn.Module) else model
    state = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    save_file(state, str(folder / WEIGHTS_FILE))
    payload = {
        "config": _as_dict(config),
        **({} if recipe is None else {"recipe": _as_dict(recipe)}),
        "extra": extra or {},
        "sha256": sha256_of(folder / WEIGHTS_FILE),
        "depends_on": {name: read_config(dep)["sha256"] for name, dep in (depends_on or {}).items()},
    }
    (folder / CONFIG_FILE).write_text(json.dumps(payload, indent=2))
    (folder / CARD_FILE).write_text(card)
    return folder


def config_from_dict(cls, values: dict):
    """Rebuild a config dataclass from ``config.json``: lists back to tuples, a nested config (a field whose
    type is itself a config dataclass) from its own dict; unknown keys are an error, not silently ignored, so
    a config written by other code (or in an older layout) cannot load as something it is not."""
    types = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(values) - names
    if unknown:
        raise ValueError(f"Unknown {cls.__name__} fields in config.json: {sorted(unknown)}")

    def rebuild(name, value):
        if dataclasses.is_dataclass(types[name]) and isinstance(value, dict):
            return config_from_dict(types[name], value)
        return tuples(value)

    def tuples(value):
        return tuple(tuples(v) for v in value) if isinstance(value, list) else value

    return cls(**{k: rebuild(k, v) for k, v in values.items()})


INT8_SCALE = ".int8_scale"  # companion tensor of a weight matrix stored as int8 rows


def quantize_int8(state: dict[str, torch.Tensor], min_elements: int = 65536) -> dict[str, torch.Tensor]:
    """Large weight matrices as int8 with one float16 scale per row (symmetric), the rest as float16: a bundle
    a quarter of float32 for the big models. :func:`dequantize` undoes it on load."""
    out = {}
    for name, value in state.items():
        if not value.is_floating_point():
            out[name] = value
        elif value.dim() == 2 and value.numel() >= min_elements:
            scale = value.float().abs().amax(dim=1).clamp_min(1e-12) / 127.0
            out[name] = torch.round(value.float() / scale[:, None]).to(torch.int8)
            out[name + INT8_SCALE] = scale.half()
        else:
            out[name] = value.half()
    return out


def dequantize(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """float32 weight matrices from int8 rows and their scales (a state without them passes unchanged)."""
    out = {k: v for k, v in state.items() if not k.endswith(INT8_SCALE)}
    for name in out:
        if name + INT8_SCALE in state:
            out[name] = out[name].float() * state[name + INT8_SCALE].float()[:, None]
    return out


def read_config(folder_or_name: str | Path) -> dict:
    return json.loads((resolve(folder_or_name) / CONFIG_FILE).read_text())


def load_state(folder_or_name: str | Path) -> tuple[dict[str, torch.Tensor], dict]:
    """``(state_dict, config.json contents)`` after checking the weights' sha256."""
    folder = resolve(folder_or_name)
    payload = read_config(folder)
    weights = folder / WEIGHTS_FILE
    if not weights.is_file():
        raise WeightsError(f"{weights} is missing")
    actual = sha256_of(weights)
    if actual != payload.get("sha256"):
        raise WeightsError(f"{weights} does not match the sha256 recorded in its config.json "
                           f"({actual[:12]}… vs {str(payload.get('sha256'))[:12]}…): refusing to load altered weights")
    return dequantize(load_file(str(weights))), payload


def check_dependency(payload: dict, name: str, folder_or_name: str | Path) -> None:
    """Refuse to combine a model with a different version of a model it was trained with."""
    expected = payload.get("depends_on", {}).get(name)
    actual = read_config(folder_or_name)["sha256"]
    if expected is not None and expected != actual:
        raise WeightsError(f"This model was trained with {name} {expected[:12]}…, but {folder_or_name} is {actual[:12]}…")


class Pretrained:
    """The one way a model is saved and loaded. A model class mixes this in beside ``nn.Module`` and names its
    ``config_class`` and ``default_weights`` (the bundled folder's name); checks that belong to one model (a
    scaler that must be there, a dependency that must match) go in :meth:`_check_loaded`.

    ``from_pretrained`` rebuilds the config dataclass from ``config.json``, refuses weights whose sha256
    differs, loads them as float32, attaches ``sha256``, ``depends_on`` and ``metrics`` (the config's
    ``extra``) for provenance and returns the model in eval mode."""

    config_class: type
    default_weights: str

    @classmethod
    def from_pretrained(cls, folder_or_name: str | Path | None = None, **options):
        folder_or_name = cls.default_weights if folder_or_name is None else folder_or_name
        state, payload = load_state(folder_or_name)
        model = cls(config_from_dict(cls.config_class, payload["config"]))
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
        model.sha256, model.depends_on = payload["sha256"], payload.get("depends_on", {})
        model.metrics = payload.get("extra", {})
        return model.eval()._check_loaded(folder_or_name, **options)

    def _check_loaded(self, folder_or_name: str | Path, **options):
        """Model-specific checks and conversions after loading (none by default); returns the model to use."""
        if options:
            raise TypeError(f"{type(self).__name__}.from_pretrained takes no options {sorted(options)}")
        return self

    def save_pretrained(self, folder: str | Path, card: str, extra: dict | None = None,
                        depends_on: dict[str, str | Path] | None = None,
                        state: dict[str, torch.Tensor] | None = None, recipe: Any = None) -> Path:
        """Write this model's folder: its weights (or ``state``, e.g. an EMA's or a quantised copy of them),
        its config, the training ``recipe`` beside it, ``extra`` and the sha256 of every model it ``depends_on``;
        return the folder."""
        return write_weights(folder, self if state is None else state, self.config, card, extra, depends_on, recipe)
