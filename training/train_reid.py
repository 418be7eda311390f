"""Train the re-identification network (a classifier of the training patients, used as a same-patient score).

    python -m training.train_reid [--out weights/reid] [--threads 2]

Every frame of every training-split cine is an example of its patient; each batch is augmented (shifts, a
smooth random deformation like the renderer's, gamma, noise). About 5 minutes on 2 cores. The held-out
threshold (95th percentile of the val cines' best match to any training cine) is fitted after training and saved
in the config's ``extra``.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import torch
import torch.nn.functional as F

from cardiosynth.data.dataset import load_prepared
from cardiosynth.models.cards.reid import model_card
from cardiosynth.models.reid import ReidConfig, ReidNet, best_match
from cardiosynth.render.fields import grid_sample_coordinates, novelty_field
from cardiosynth.render.sampling import identity_positions
from training.common import parse_training_run, seed_everything, training_parser
from training.recipes import REID_RECIPES, ReidRecipe

CONFIGS = {"default": ReidConfig()}


def augment(frames: torch.Tensor, generator: torch.Generator, recipe: ReidRecipe) -> torch.Tensor:
    """Shift, smooth deformation, gamma and noise, per frame (bilinear: augmentation, not rendering)."""
    n, size = len(frames), frames.shape[-1]
    fields = torch.stack([novelty_field(size, recipe.deform_px, generator) for _ in range(n)]).float()
    shifts = torch.randint(-recipe.shift_px, recipe.shift_px + 1, (n, 1, 1, 2), generator=generator).float()
    positions = identity_positions(size).float()[None] + fields + shifts
    grid = grid_sample_coordinates(positions, size, size)
    out = F.grid_sample(frames[:, None], grid, mode="bilinear", padding_mode="zeros", align_corners=False)[:, 0]
    gamma = torch.exp(torch.randn(n, 1, 1, generator=generator) * 0.2)
    out = out.clamp(0, 1) ** gamma
    return (out + torch.randn(out.shape, generator=generator) * 0.02).clamp(0, 1)


def train(config: ReidConfig, recipe: ReidRecipe, dataset_name: str = "default") -> tuple[ReidNet, dict]:
    generator = seed_everything(recipe.seed)
    train_part = load_prepared(dataset_name).split("train")
    subjects = sorted(train_part.table["subject"].unique())
    labels = torch.tensor(train_part.table["subject"].map({s: i for i, s in enumerate(subjects)}).to_numpy())
    frames = torch.from_numpy(train_part.cines.astype(np.float32) / 255.0)  # (N, T, H, W)
    config = dataclasses.replace(config, patients=len(subjects))
    model = ReidNet(config)
    optimiser = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, recipe.lr, total_steps=recipe.steps)
    started, losses = time.perf_counter(), []
    for step in range(recipe.steps):
        cine = torch.randint(len(frames), (recipe.batch,), generator=generator)
        frame = torch.randint(frames.shape[1], (recipe.batch,), generator=generator)
        batch = augment(frames[cine, frame], generator, recipe)
        loss = F.cross_entropy(model.logits(model(batch)), labels[cine])
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        schedule.step()
        losses.append(float(loss.detach()))
        if step % 250 == 0:
            print(f"step {step} loss {np.mean(losses[-250:]):.3f}", flush=True)
    summary = {"train_patients": len(subjects), "train_cines": len(frames), "final_loss": round(float(np.mean(losses[-100:])), 4),
               "minutes": round((time.perf_counter() - started) / 60, 1), "dataset": dataset_name}
    return model.eval(), summary


def fit_threshold(model: ReidNet, dataset_name: str = "default") -> dict:
    """The held-out threshold: 95th percentile of val cines' best match (ED frame) to any training cine."""
    dataset = load_prepared(dataset_name)
    train_part, val = dataset.split("train"), dataset.split("val")
    reference = model.embed(torch.from_numpy(train_part.cines[:, 0].astype(np.float32) / 255.0))
    scores, _ = best_match(model, val.cines[:, 0].astype(np.float32) / 255.0, reference,
                           train_part.table["subject"].tolist())
    return {"threshold": float(np.percentile(scores, 95)), "threshold_from": "95th percentile of the val cines' "
            f"best match to a training cine ({len(scores)} cines)"}


def main(argv: list[str] | None = None) -> None:
    parser = training_parser(__doc__, CONFIGS, "reid", epochs=False, resume=False, device=False, threads=True)
    run = parse_training_run(parser, CONFIGS, "reid", "train_reid", argv, recipes=REID_RECIPES)
    model, summary = train(run.config, run.recipe, run.args.dataset or "default")
    summary.update(fit_threshold(model, run.args.dataset or "default"))
    model.save_pretrained(run.out, model_card(summary, run.command), extra={**summary, "command": run.command},
                         recipe=run.recipe)
    print(f"re-identification network -> {run.out}")


if __name__ == "__main__":
    main()
