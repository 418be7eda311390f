"""Blinding check: could a script tell real from synthetic case files without looking at the pictures?

Each file is read as a container, never decoded: its byte size, its block layout with the pixel data
blanked (header, palette, extensions, image descriptors and every sub-block length: so the files must be
identical outside the pixels), each frame's stored data size and display time, frame count, duration,
resolution, any comment or application block, the file name pattern and the modification time. A property
that takes different values in the two groups, or a number whose distribution differs (Mann-Whitney
p < 0.05), is reported as exploitable. Files that are not GIFs (e.g. a naive MP4 export) are read by their
raw layout only and fail the check unless identical.

Beside the container, simple pixel statistics that a script could compute after decoding (share of saturated
and of black pixels, black padding at the border, mean and spread of the grey levels) are compared the same
way and reported with their AUC. They are what readers look at, so they do not fail the container check,
but one that separates the groups (AUC beyond 0.25-0.75 with p < 0.05) is named in the report's warnings: a
study whose synthetic cases saturate more, or whose real cases alone carry black padding, is blinded in its
files but not in its pictures.
"""

from __future__ import annotations

import hashlib
import json
import re
import struct
from pathlib import Path

import numpy as np
from scipy import stats

from cardiosynth.review.render import read_frames

CATEGORICAL = ("format", "resolution", "frames", "duration", "frame_delays", "extensions", "container_layout",
               "name_pattern")
NUMERIC = ("size_bytes", "frame_bytes_min", "frame_bytes_mean", "frame_bytes_max", "frame_bytes_std", "mtime")
PIXEL = ("saturated_share", "black_share", "border_black_share", "mean_level", "level_std")
ALPHA = 0.05
PIXEL_AUC_WARNING = 0.25  # |AUC - 0.5| beyond this (and p < ALPHA): the statistic alone separates the groups
BORDER = 4  # pixels: the frame's outer band, where padding of a small field of view shows


def _skip_sub_blocks(data: bytes, at: int, blank: bytearray | None = None) -> tuple[int, int]:
    """Walk data sub-blocks from ``at``; (offset after the terminator, payload bytes). ``blank`` gets the
    payload bytes zeroed (the pixels), keeping every length byte."""
    total = 0
    while at < len(data) and data[at]:
        size = data[at]
        if blank is not None:
            blank[at + 1:at + 1 + size] = bytes(size)
        total += size
        at += 1 + size
    return at + 1, total


def gif_structure(data: bytes) -> dict:
    """Per-frame stored data sizes and delays, extensions, and the file with its pixel data blanked."""
    if data[:6] not in (b"GIF87a", b"GIF89a") or len(data) < 13:
        raise ValueError("not a GIF")
    width, height, flags = struct.unpack_from("<HHB", data, 6)
    at = 13 + (3 * 2 ** ((flags & 7) + 1) if flags & 0x80 else 0)
    blank = bytearray(data)
    frame_bytes, delays, extensions, delay = [], [], [], 0
    while at < len(data) and data[at] != 0x3B:
        if data[at] == 0x21:  # extension: label, then sub-blocks
            label = data[at + 1]
            if label == 0xF9:
                delay = struct.unpack_from("<H", data, at + 4)[0]
            elif label == 0xFF:
                extensions.append(data[at + 3:at + 14].decode("latin-1"))
            else:
                extensions.append(f"extension 0x{label:02x}")
            at, _ = _skip_sub_blocks(data, at + 2)
        elif data[at] == 0x2C:  # image: descriptor, optional local palette, LZW size, pixel sub-blocks
            local = data[at + 9]
            at += 10 + (3 * 2 ** ((local & 7) + 1) if local & 0x80 else 0) + 1
            at, size = _skip_sub_blocks(data, at, blank)
            frame_bytes.append(size)
            delays.append(delay)
        else:
            raise ValueError(f"unexpected GIF block 0x{data[at]:02x}")
    return {"resolution": f"{width}x{height}", "frame_bytes": frame_bytes, "delays": delays,
            "extensions": extensions, "blanked": bytes(blank)}


def probe(path: str | Path) -> dict:
    """Everything about one case file that is not its pixels."""
    path = Path(path)
    data = path.read_bytes()
    try:
        gif = gif_structure(data)
        fmt, blanked = "gif", gif["blanked"]
    except (ValueError, struct.error, IndexError):
        gif = {"resolution": "", "frame_bytes": [], "delays": [], "extensions": []}
        fmt, blanked = path.suffix.lower().lstrip(".") or "unknown", data
    sizes = np.array(gif["frame_bytes"] or [0], dtype=float)
    return {
        "format": fmt,
        "resolution": gif["resolution"],
        "frames": str(len(gif["frame_bytes"])),
        "duration": f"{sum(gif['delays']) / 100:g} s",
        "frame_delays": " ".join(map(str, sorted(set(gif["delays"])))),
        "extensions": json.dumps(gif["extensions"]),
        "container_layout": hashlib.sha256(blanked).hexdigest()[:16],
        "name_pattern": re.sub(r"[0-9a-f]", "x", path.stem) + path.suffix,
        "size_bytes": float(len(data)),
        "frame_bytes_min": float(sizes.min()),
        "frame_bytes_mean": float(sizes.mean()),
        "frame_bytes_max": float(sizes.max()),
        "frame_bytes_std": float(sizes.std()),
        "mtime": float(path.stat().st_mtime),
    }


def pixel_statistics(path: str | Path) -> dict:
    """What a script could read off the decoded frames without any model."""
    frames = read_frames(path)
    border = np.ones(frames.shape[1:], bool)
    border[BORDER:-BORDER, BORDER:-BORDER] = False
    return {"saturated_share": float((frames == 255).mean()), "black_share": float((frames == 0).mean()),
            "border_black_share": float((frames[:, border] == 0).mean()), "mean_level": float(frames.mean()),
            "level_std": float(frames.std())}


def _categorical(real: list, synthetic: list) -> dict:
    only_real, only_synthetic = sorted(set(real) - set(synthetic)), sorted(set(synthetic) - set(real))
    return {"values": sorted(set(real) | set(synthetic))[:5], "only_real": only_real[:5],
            "only_synthetic": only_synthetic[:5], "exploitable": bool(only_real or only_synthetic)}


def _numeric(real: np.ndarray, synthetic: np.ndarray) -> dict:
    out = {"real_range": [float(real.min()), float(real.max())],
           "synthetic_range": [float(synthetic.min()), float(synthetic.max())]}
    if np.ptp(np.concatenate([real, synthetic])) == 0:
        return {**out, "identical": True, "auc": 0.5, "p_value": 1.0, "exploitable": False}
    test = stats.mannwhitneyu(synthetic, real, alternative="two-sided")
    auc = float(test.statistic / (len(real) * len(synthetic)))  # P(synthetic value > real value)
    return {**out, "identical": False, "auc": auc, "p_value": float(test.pvalue),
            "exploitable": bool(test.pvalue < ALPHA)}


def blinding_check(cases: list[tuple[str | Path, str]]) -> dict:
    """Compare real and synthetic case files, given as (path, "real" | "synthetic") pairs."""
    probes = {"real": [], "synthetic": []}
    for path, truth in cases:
        probes[truth].append(probe(path))
    if not probes["real"] or not probes["synthetic"]:
        raise ValueError("The blinding check needs at least one real and one synthetic case file")
    features = {}
    for name in CATEGORICAL:
        features[name] = _categorical([p[name] for p in probes["real"]], [p[name] for p in probes["synthetic"]])
    for name in NUMERIC:
        features[name] = _numeric(np.array([p[name] for p in probes["real"]]),
                                  np.array([p[name] for p in probes["synthetic"]]))
    exploitable = [name for name, result in features.items() if result["exploitable"]]
    # one layout for every file, not just one per group: a property no file shares is exploitable in principle
    layouts = {p["container_layout"] for group in probes.values() for p in group}
    pixels = {"real": [], "synthetic": []}
    for path, truth in cases:
        pixels[truth].append(pixel_statistics(path))
    pixel_features = {name: _numeric(np.array([p[name] for p in pixels["real"]]),
                                     np.array([p[name] for p in pixels["synthetic"]])) for name in PIXEL}
    separating = [name for name, result in pixel_features.items()
                  if result["exploitable"] and abs(result["auc"] - 0.5) > PIXEL_AUC_WARNING]
    return {"n_real": len(probes["real"]), "n_synthetic": len(probes["synthetic"]), "features": features,
            "one_layout_for_all_files": len(layouts) == 1, "exploitable": exploitable, "blinded": not exploitable,
            "pixel_statistics": pixel_features, "pixel_statistics_separating": separating}
