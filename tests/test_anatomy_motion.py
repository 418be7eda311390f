"""The anatomy half (frame autoencoder), the whole representation's round trip, and the bundled weights."""

import dataclasses

import numpy as np
import pytest
import torch

from cardiosynth.models.anatomy_motion import AnatomyMotionCodec
from cardiosynth.models.frame_ae import (CONFIGS, FrameAutoencoder, decode_frames, encode_frames, kl_per_element,
                                         perceptual_distance)
from cardiosynth.models.motion import CONFIGS as MOTION_CONFIGS
from cardiosynth.models.motion import MotionModel
from cardiosynth.models.segmenter import Segmenter
from training.recipes import FRAME_AE_RECIPES

TINY = dataclasses.replace(CONFIGS["default"], size=32, channels=(8, 16), norm_groups=4)




def test_frame_autoencoder_shapes_and_a_tiny_overfit(one_thread):
    torch.manual_seed(0)
    model = FrameAutoencoder(TINY)
    yy, xx = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    frames = torch.stack([torch.sigmoid(6 - torch.hypot(yy - 16, xx - c)) for c in (12.0, 16.0, 20.0, 14.0)])[:, None]
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = None
    for _ in range(120):
        recon, mean, std = model(frames, sample=False)
        loss = (recon - frames).abs().mean() + 1e-6 * kl_per_element(mean, std)
        first = first if first is not None else float(loss.detach())
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    assert mean.shape == (4, *TINY.latent_shape) == (4, TINY.latent_channels, 16, 16)
    assert float(loss) < 0.3 * first
    model.eval()
    z = encode_frames(model, frames[:, 0])
    out = decode_frames(model, z)
    assert out.shape == (4, 32, 32) and 0 <= float(out.min()) <= float(out.max()) <= 1


def test_perceptual_distance_is_zero_for_equal_frames_and_grows_with_blur(one_thread):
    segmenter = Segmenter().eval()
    frames = torch.rand(2, 1, 64, 64)
    blurred = torch.nn.functional.avg_pool2d(frames, 5, stride=1, padding=2)
    assert float(perceptual_distance(segmenter, frames, frames)) == pytest.approx(0.0, abs=1e-6)
    assert float(perceptual_distance(segmenter, blurred, frames)) > 0.01


def test_bad_frames_get_one_clear_error(one_thread):
    model = FrameAutoencoder(TINY).eval()
    with pytest.raises(ValueError, match=r"shape \(N, 32, 32\)"):
        encode_frames(model, torch.rand(2, 64, 64))
    broken = torch.rand(1, 32, 32)
    broken[0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        encode_frames(model, broken)
    with pytest.raises(ValueError, match="scaled latents"):
        decode_frames(model, torch.zeros(1, TINY.latent_channels + 1, 16, 16))


def test_codec_round_trip_shapes_and_bad_cines(one_thread):
    motion_config = dataclasses.replace(MOTION_CONFIGS["default"], frames=4, size=32, grid=8, temporal_components=3,
                                        encoder=dataclasses.replace(MOTION_CONFIGS["default"].encoder, iterations=3))
    codec = AnatomyMotionCodec(FrameAutoencoder(TINY).eval(), MotionModel(motion_config))
    cines = torch.rand(2, 4, 32, 32)
    anatomy, motion = codec.encode(cines)
    assert anatomy.shape == (2, TINY.latent_channels, 16, 16) and motion.shape == (2, 3, 2, 8, 8)
    out = codec.decode(anatomy, motion)
    assert out.shape == (2, 4, 32, 32) and 0 <= float(out.min()) <= float(out.max()) <= 1
    with pytest.raises(ValueError, match=r"cines must be \(N, 4, 32, 32\)"):
        codec.encode(torch.rand(2, 5, 32, 32))
    cines[0, 1, 2, 2] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        codec.encode(cines)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        codec.encode(torch.full((1, 4, 32, 32), 3.0))
    with pytest.raises(ValueError, match="different frame sizes"):
        AnatomyMotionCodec(FrameAutoencoder(TINY), MotionModel(MOTION_CONFIGS["default"]))


def test_bundled_representation_rebuilds_a_real_cine(prepared_default, one_thread):
    """The bundled weights load (sha256 checked) and rebuild a real validation cine: sharp ED anatomy and a
    contracting LV, within the representation's measured quality (PSNR well above a static ED frame)."""
    codec = AnatomyMotionCodec.from_pretrained()
    val = prepared_default.split("val")
    i = int(np.argmin(np.abs(val.table["slice_position"].to_numpy() - 0.5)))
    real = torch.from_numpy(val.frames(i))[None]
    recon = codec.reconstruct(real)
    assert recon.shape == real.shape == (1, 16, 64, 64)

    def psnr(a):
        return float(10 * torch.log10(1 / (a - real).pow(2).mean()))

    static = real[:, :1].expand_as(real)
    assert psnr(recon) > 24 and psnr(recon) > psnr(static) + 1.0


def test_train_frame_ae_runs_and_resumes(tmp_path, monkeypatch, one_thread):
    """Two epochs on a tiny fixture set (the second adversarial), then ``--resume`` to a third: the bundle
    loads with its sha256 and its latent scale, and the log holds each epoch once."""
    import json

    from acdc_fixture import write_acdc, write_split

    from cardiosynth.data.prepare import CONFIGS as PREPARE
    from cardiosynth.data.prepare import prepare_acdc
    from cardiosynth.models.frame_ae import FrameAutoencoder
    from training import train_frame_ae

    monkeypatch.setenv("CARDIOSYNTH_CACHE", str(tmp_path / "cache"))
    patients = {"patient001": "NOR", "patient002": "DCM", "patient003": "NOR"}
    root = write_acdc(tmp_path / "acdc", patients)
    split = write_split(tmp_path / "split.csv", patients)
    split.write_text(split.read_text().replace("patient003,NOR,train", "patient003,NOR,val"))
    prepare_acdc(root, PREPARE["default"], tmp_path / "prepared", split, progress=False)
    config = CONFIGS["default"]
    recipe = dataclasses.replace(FRAME_AE_RECIPES["default"], epochs=2, adversarial_start_epoch=1, batch_size=16)
    train_frame_ae.train(config, recipe, tmp_path / "fae", str(tmp_path / "prepared"), False, "cpu", "test")
    summary = train_frame_ae.train(config, dataclasses.replace(recipe, epochs=3), tmp_path / "fae",
                                   str(tmp_path / "prepared"), True, "cpu", "test")
    log = [json.loads(line) for line in (tmp_path / "cache" / "runs" / "fae" / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [0, 1, 2] and "train_g_adv" in log[1] and "train_g_adv" not in log[0]
    model = FrameAutoencoder.from_pretrained(tmp_path / "fae")
    assert model.config.stats.latent_scale > 0 and summary["steps"] == log[-1]["step"]

    assert json.loads((tmp_path / "fae" / "config.json").read_text())["recipe"]["epochs"] == 3  # saved beside

    # a decoder fine-tune (its config and recipe "decoder_ft") from it: the encoder and the latent scale stay bit
    # for bit
    tuned_config = CONFIGS["decoder_ft"]
    tuned_recipe = dataclasses.replace(recipe, init_from=str(tmp_path / "fae"), freeze_encoder=True, epochs=1,
                                       adversarial_start_epoch=0)
    train_frame_ae.train(tuned_config, tuned_recipe, tmp_path / "tuned", str(tmp_path / "prepared"), False, "cpu",
                         "test")
    tuned = FrameAutoencoder.from_pretrained(tmp_path / "tuned")
    assert all(torch.equal(a, b) for a, b in zip(tuned.encoder_parameters(), model.encoder_parameters()))
    assert not all(torch.equal(a, b) for a, b in zip(tuned.net.decoder.parameters(), model.net.decoder.parameters()))
    assert tuned.config.stats.latent_scale == model.config.stats.latent_scale
    assert tuned.depends_on["encoder_of"] == model.sha256
    with pytest.raises(ValueError, match="architecture"):
        initial = dataclasses.replace(tuned_config, latent_channels=config.latent_channels + 1)
        train_frame_ae.initial_model(initial, tuned_recipe)
