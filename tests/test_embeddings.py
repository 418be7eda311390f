"""The shared sinusoidal embeddings (cardiosynth/models/embeddings.py) equal, bit for bit, the formulas each model
was trained with: the ECG MAE's and the ECG -> cine flow's interleaved token positions, the cine ViT's MAE-style
2D grid and DiT's timestep embedding. The references below are the code the models had before the rule was
shared; the shapes are those of the bundled configs (weights/ecg_mae, weights/ecg_flow) and the cine ViT's
defaults (it bundles no weights)."""

from __future__ import annotations

import math

import pytest
import torch

from cardiosynth.models.cine_vit import CineMAE, CineViTConfig
from cardiosynth.models.ecg_flow import EcgFlow, EcgFlowConfig
from cardiosynth.models.ecg_mae import EcgMAE, EcgMAEConfig
from cardiosynth.models.embeddings import (
    frequencies,
    grid_position_table,
    position_table,
    sinusoids,
    timestep_embedding,
)
from cardiosynth.weights import config_from_dict, load_state, read_config


def reference_token_positions(n: int, dim: int) -> torch.Tensor:  # ecg_mae.sinusoidal_positions, as trained
    position = torch.arange(n, dtype=torch.float32)[:, None]
    freq = torch.exp(-math.log(10_000.0) * torch.arange(0, dim, 2, dtype=torch.float32) / dim)
    table = torch.zeros(n, dim)
    table[:, 0::2], table[:, 1::2] = torch.sin(position * freq), torch.cos(position * freq)
    return table


def reference_grid_positions(grid: int, width: int) -> torch.Tensor:  # cine_vit.sincos_positions, as before
    quarter = width // 4
    omega = 1.0 / 10000 ** (torch.arange(quarter, dtype=torch.float32) / quarter)
    ys, xs = torch.meshgrid(torch.arange(grid, dtype=torch.float32), torch.arange(grid, dtype=torch.float32),
                            indexing="ij")
    parts = [f(c.reshape(-1, 1) * omega) for c in (ys, xs) for f in (torch.sin, torch.cos)]
    return torch.cat(parts, dim=1)


def reference_timesteps(t: torch.Tensor, dim: int, max_period: float = 10_000.0, scale: float = 1.0) -> torch.Tensor:
    half = dim // 2  # DiT's timestep_embedding, with the scale the flow uses
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = scale * t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


def bundled_config(config_class, name: str):
    return config_from_dict(config_class, read_config(name)["config"])


def token_position_shapes() -> list[tuple[int, int]]:
    mae, flow = bundled_config(EcgMAEConfig, "ecg_mae"), bundled_config(EcgFlowConfig, "ecg_flow")
    side = flow.latent_size // flow.patch
    return [(mae.tokens, mae.width), (side * side, flow.width), (flow.latent_frames, flow.width),
            (flow.ecg_frames, flow.width), (7, 16), (1, 2)]


def test_token_positions_are_the_trained_ones_bit_for_bit():
    for n, dim in token_position_shapes():
        assert torch.equal(position_table(n, dim), reference_token_positions(n, dim)), (n, dim)


def test_grid_positions_are_the_cine_vits_bit_for_bit():
    c = CineViTConfig()
    for grid, width in [(c.size // c.patch, c.width), (c.size // c.patch, c.decoder_width), (2, 16), (5, 12)]:
        assert torch.equal(grid_position_table(grid, width), reference_grid_positions(grid, width)), (grid, width)
    model = CineMAE(c)
    assert torch.equal(model.encoder.positions, reference_grid_positions(c.size // c.patch, c.width))
    assert torch.equal(model.decoder_positions, reference_grid_positions(c.size // c.patch, c.decoder_width))


@pytest.mark.parametrize("dim, scale", [(256, 1.0), (128, 1000.0), (64, 1.0), (6, 1.0)])
def test_timestep_embedding_is_dits_bit_for_bit(dim, scale):
    t = torch.cat([torch.rand(9, generator=torch.Generator().manual_seed(0)), torch.tensor([0.0, 1.0])])
    assert torch.equal(timestep_embedding(t, dim, scale=scale), reference_timesteps(t, dim, scale=scale))
    steps = torch.arange(1000)  # MAR's integer timesteps
    assert torch.equal(timestep_embedding(steps, dim, scale=scale), reference_timesteps(steps, dim, scale=scale))


def test_one_rule_two_roundings_and_three_layouts():
    exp, power = frequencies(32), frequencies(32, rounding="power")
    assert exp[0] == power[0] == 1.0
    torch.testing.assert_close(exp, power, rtol=1e-6, atol=0)  # the same rule, rounded two ways
    assert not torch.equal(exp, power)  # ... which is why the cine ViT keeps its own
    values, freqs = torch.tensor([0.0, 1.5, 7.0]), frequencies(3)
    sin, cos = torch.sin(values[:, None] * freqs), torch.cos(values[:, None] * freqs)
    assert torch.equal(sinusoids(values, freqs, "cos|sin"), torch.cat([cos, sin], 1))
    assert torch.equal(sinusoids(values, freqs, "sin|cos"), torch.cat([sin, cos], 1))
    assert torch.equal(sinusoids(values, freqs, "interleaved")[:, 0::2], sin)
    assert torch.equal(sinusoids(values, freqs, "interleaved")[:, 1::2], cos)
    for bad in (lambda: frequencies(4, rounding="log"), lambda: sinusoids(values, freqs, "sin"),
                lambda: position_table(3, 5), lambda: grid_position_table(2, 6)):
        with pytest.raises(ValueError):
            bad()


def test_the_position_tables_are_not_in_the_weights():
    """The tables are rebuilt at construction (non-persistent buffers), so the bundled files do not hold them."""
    for name in ("ecg_mae", "ecg_flow"):
        state = load_state(name)[0]
        assert not {"positions", "spatial_pos", "frame_pos", "ecg_pos"} & set(state), name


def test_the_bundled_ecg_models_load_and_run_on_the_trained_tables():
    """The bundled ECG MAE and flow load, hold the trained tables and give the same output with the shared tables
    as with the reference ones put in their place."""
    g = torch.Generator().manual_seed(0)
    mae = EcgMAE.from_pretrained()
    c = mae.config
    assert torch.equal(mae.positions, c.position_scale * reference_token_positions(c.tokens, c.width))
    x = torch.randn(1, c.leads, c.samples, generator=g)
    with torch.no_grad():
        shared = mae(x)
        mae.positions = c.position_scale * reference_token_positions(c.tokens, c.width)
        assert all(torch.equal(a, b) for a, b in zip(shared, mae(x)))
    flow = EcgFlow.from_pretrained()
    f = flow.config
    side = f.latent_size // f.patch
    z, ecg = torch.randn(2, *f.latent_shape, generator=g), torch.randn(2, f.ecg_frames, f.ecg_dim, generator=g)
    t, where = torch.tensor([0.2, 0.7]), torch.tensor([0.3, 0.9])
    with torch.no_grad():
        shared = flow(z, t, ecg, where)
        flow.spatial_pos = reference_token_positions(side * side, f.width)
        flow.frame_pos = reference_token_positions(f.latent_frames, f.width)
        flow.ecg_pos = reference_token_positions(f.ecg_frames, f.width)
        assert torch.equal(shared, flow(z, t, ecg, where))
