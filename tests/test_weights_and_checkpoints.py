import dataclasses
import json
from dataclasses import dataclass

import pytest
import torch
from safetensors.torch import load_file

from cardiosynth.weights import WeightsError, check_dependency, load_state, read_config, write_weights
from training.common import load_checkpoint, save_checkpoint, store_compact


@dataclass
class TinyConfig:
    width: int = 3


def test_save_and_load_pretrained_checks_sha256(tmp_path):
    model = torch.nn.Linear(3, 2)
    folder = write_weights(tmp_path / "m", model, TinyConfig(), "# card\n", extra={"scale": 0.5})
    state, payload = load_state(folder)
    assert torch.equal(state["weight"], model.weight.detach())
    assert payload["config"] == {"width": 3} and payload["extra"] == {"scale": 0.5}
    assert (folder / "README.md").read_text() == "# card\n"
    data = bytearray((folder / "model.safetensors").read_bytes())
    data[-1] ^= 0xFF
    (folder / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="does not match the sha256"):
        load_state(folder)


def test_dependency_hash_is_pinned(tmp_path):
    base = write_weights(tmp_path / "base", torch.nn.Linear(2, 2), TinyConfig(), "")
    child = write_weights(tmp_path / "child", torch.nn.Linear(2, 2), TinyConfig(), "", depends_on={"base": base})
    payload = read_config(child)
    check_dependency(payload, "base", base)
    write_weights(tmp_path / "base", torch.nn.Linear(2, 2), TinyConfig(), "")  # retrained base
    with pytest.raises(WeightsError, match="was trained with base"):
        check_dependency(payload, "base", base)


def test_missing_weights_are_a_hard_error(tmp_path):
    with pytest.raises(WeightsError, match="No weights found"):
        load_state(tmp_path / "nothing")


def test_checkpoint_round_trip_resumes_optimizer(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    x = torch.randn(8, 4)
    for _ in range(3):
        opt.zero_grad()
        model(x).pow(2).mean().backward()
        opt.step()
    save_checkpoint(tmp_path / "ckpt", model, opt, step=3, extra={"epoch": 1})
    twin = torch.nn.Linear(4, 1)
    twin_opt = torch.optim.AdamW(twin.parameters(), lr=1.0)
    meta = load_checkpoint(tmp_path / "ckpt", twin, twin_opt)
    assert meta["step"] == 3 and meta["extra"] == {"epoch": 1}
    for a, b in ((model, opt), (twin, twin_opt)):
        b.zero_grad()
        a(x).pow(2).mean().backward()
        b.step()
    assert torch.allclose(model.weight, twin.weight)
    assert json.loads((tmp_path / "ckpt.json").read_text())["param_groups"][0]["lr"] == 1e-2


def test_compact_store_loads_back_within_int8_rounding(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(512, 256), torch.nn.Linear(256, 4))  # one matrix big enough
    folder = write_weights(tmp_path / "m", model, TinyConfig(), "# card\n")
    store_compact(folder)
    stored = load_file(str(folder / "model.safetensors"))
    assert stored["0.weight"].dtype == torch.int8 and stored["1.weight"].dtype == torch.float16
    state, _ = load_state(folder)  # sha256 updated, scales folded back
    assert set(state) == {"0.weight", "0.bias", "1.weight", "1.bias"}
    original = model[0].weight.detach()
    row_step = original.abs().amax(dim=1, keepdim=True) / 127
    assert ((state["0.weight"] - original).abs() <= 0.5 * row_step * 1.01 + 1e-4).all()
    assert state["0.weight"].dtype == torch.float32


BUNDLED = ["frame_ae", "vae3d", "segmenter", "cine_encoder", "motion", "phenotype_vae", "mar", "mar_motion", "ecg_flow",
           "ecg_mae", "reid"]


def bundled_classes(name: str) -> tuple[type, type | None]:
    """The config dataclass of a bundled model and its trainer's recipe dataclass (None: no recipe is saved)."""
    from cardiosynth.models import (
        cine_encoder,
        ecg_flow,
        ecg_mae,
        frame_ae,
        mar,
        motion,
        phenotype_vae,
        reid,
        segmenter,
        vae3d,
    )
    from training import recipes

    return {"frame_ae": (frame_ae.FrameAEConfig, recipes.FrameAERecipe),
            "vae3d": (vae3d.VAE3DConfig, recipes.VAE3DRecipe),
            "segmenter": (segmenter.SegmenterConfig, recipes.SegmenterRecipe),
            "cine_encoder": (cine_encoder.CineEncoderConfig, recipes.CineEncoderRecipe),
            "motion": (motion.MotionConfig, None),
            "phenotype_vae": (phenotype_vae.PhenotypeVAEConfig, recipes.PhenotypeVAERecipe),
            "mar": (mar.MARConfig, recipes.MARRecipe), "mar_motion": (mar.MARConfig, recipes.MARRecipe),
            "ecg_flow": (ecg_flow.EcgFlowConfig, recipes.EcgFlowRecipe),
            "ecg_mae": (ecg_mae.EcgMAEConfig, recipes.EcgMAERecipe),
            "reid": (reid.ReidConfig, recipes.ReidRecipe)}[name]


@pytest.mark.parametrize("name", BUNDLED)
def test_every_bundled_config_is_in_the_current_layout(name):
    """Each bundled config.json holds exactly its config dataclass, nested as it is saved (no older layout is
    translated on load); a key the dataclass does not have, an older flat layout or a training recipe inside the
    model's config (the layout before the recipes left the library) is an error. The trainer's recipe lies beside
    the config (top-level ``recipe``) and is exactly its recipe dataclass."""
    from cardiosynth.weights import config_from_dict

    cls, recipe_cls = bundled_classes(name)
    payload = read_config(name)
    nested = payload["config"]
    assert json.loads(json.dumps(dataclasses.asdict(config_from_dict(cls, nested)))) == nested
    with pytest.raises(ValueError, match="Unknown"):
        config_from_dict(cls, {**nested, "no_such_field": 1})
    if any(isinstance(v, dict) for v in nested.values()):
        flat = {k: v for k, v in nested.items() if not isinstance(v, dict)}
        for part in (v for v in nested.values() if isinstance(v, dict)):
            flat.update(part)
        with pytest.raises(ValueError, match="Unknown"):
            config_from_dict(cls, flat)
    if recipe_cls is None:
        assert "recipe" not in payload
        return
    recipe = payload["recipe"]
    assert json.loads(json.dumps(dataclasses.asdict(config_from_dict(recipe_cls, recipe)))) == recipe
    with pytest.raises(ValueError, match=r"Unknown .*\['recipe'\]"):
        config_from_dict(cls, {**nested, "recipe": recipe})
