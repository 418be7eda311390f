"""A contact sheet of prepared cines (ED and ES frames with the expert masks outlined), to check crops by eye."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from cardiosynth.data.dataset import PreparedDataset
from cardiosynth.data.labels import LV, MYO, RV

OUTLINES = ((MYO, "lime"), (RV, "deepskyblue"), (LV, "red"))  # LV last: its edge stays visible


def pick_rows(dataset: PreparedDataset, n: int, seed: int = 0) -> list[int]:
    """Spread the picks over groups and from base to apex, so every kind of crop is seen."""
    rng = np.random.default_rng(seed)
    table = dataset.table
    groups = sorted(table["group"].unique())
    picks: list[int] = []
    per_group = max(1, n // len(groups))
    for group in groups:
        rows = table[table["group"] == group].sort_values("slice_position")
        bins = np.array_split(rows.index.to_numpy(), per_group)
        picks += [int(rng.choice(b)) for b in bins if len(b)]
    return picks[:n]


def _panel(ax, image: np.ndarray, mask: np.ndarray, valid: np.ndarray, title: str) -> None:
    ax.imshow(image, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    tint = np.zeros(image.shape + (4,))
    tint[~valid] = (1.0, 0.55, 0.0, 0.45)  # orange over padding
    ax.imshow(tint, interpolation="nearest")
    for label, colour in OUTLINES:
        if (mask == label).any():
            ax.contour(mask == label, levels=[0.5], colors=colour, linewidths=0.7)
    ax.set_title(title, fontsize=6)
    ax.set_axis_off()


def write_contact_sheet(dataset: PreparedDataset, path: str | Path, n: int = 20, columns: int = 4) -> Path:
    """ED | ES pairs for ``n`` cines; red LV, green myocardium, blue RV; padding tinted orange."""
    rows = pick_rows(dataset, n)
    n_rows = int(np.ceil(len(rows) / columns))
    fig = Figure(figsize=(2 * columns * 1.3, n_rows * 1.45), dpi=130)
    axes = fig.subplots(n_rows, 2 * columns)
    axes = np.atleast_2d(axes)
    for ax in axes.flat:
        ax.set_axis_off()
    for k, i in enumerate(rows):
        row = dataset.table.iloc[i]
        label = f"{row['subject'][-3:]} {row['group']} z={row['slice_position']:.2f}"
        r, c = divmod(k, columns)
        _panel(axes[r, 2 * c], dataset.frames(i)[0], dataset.ed_masks[i], dataset.valid[i], f"{label} ED")
        _panel(axes[r, 2 * c + 1], dataset.es_images[i] / 255.0, dataset.es_masks[i], dataset.valid[i],
               f"ES (frame {row['es_frame_float']:.1f})")
    cfg = dataset.config
    fig.suptitle(f"Prepared ACDC '{cfg.name}': {cfg.frames} frames, {cfg.size}x{cfg.size} px at {cfg.spacing_mm} mm/px, "
                 f"centre={cfg.centre}  (red LV, green MYO, blue RV, orange = padding)", fontsize=7)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path
