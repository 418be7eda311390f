"""Blinding check: could a script tell real from synthetic case files without looking at the pictures?

Each file is probed for everything but the pixels: byte size, per-frame packet sizes, frame count, duration,
codec, profile, pixel format, resolution, frame rate, container metadata tags, the container header (MP4
``moov`` box, which holds every table: sample sizes, keyframes, timing), the top-level box layout, the file
name pattern and the modification time. A property that takes different values in the two groups, or a
number whose distribution differs (Mann-Whitney p < 0.05), is reported as exploitable.
"""

from __future__ import annotations

import hashlib
import json
import re
import struct
import subprocess
from pathlib import Path

import numpy as np
from scipy import stats

from cardiosynth.review.render import ffmpeg_exe

CATEGORICAL = ("codec", "profile", "pix_fmt", "resolution", "fps", "duration", "frames", "metadata",
               "container_header", "box_layout", "name_pattern")
NUMERIC = ("size_bytes", "packet_min", "packet_mean", "packet_max", "packet_std", "mtime")
ALPHA = 0.05
_STREAM = re.compile(r"Video: (?P<codec>\w+)(?: \((?P<profile>[^)]*)\))?.*?, (?P<pix_fmt>\w+)(?:\([^)]*\))?, "
                     r"(?P<width>\d+)x(?P<height>\d+).*?, (?P<fps>[\d.]+) fps")


def mp4_boxes(data: bytes) -> list[tuple[str, int, int]]:
    """Top-level MP4 boxes as (type, offset, size)."""
    boxes, offset = [], 0
    while offset + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[offset:offset + 8])
        if size == 1:
            size = struct.unpack(">Q", data[offset + 8:offset + 16])[0]
        elif size == 0:
            size = len(data) - offset
        if size < 8:
            break
        boxes.append((kind.decode("latin-1"), offset, size))
        offset += size
    return boxes


def _metadata_tags(text: str) -> dict:
    """Every "key : value" line of every ``Metadata:`` block in ffmpeg's description of a file."""
    tags, indent = {}, None
    for line in text.splitlines():
        depth = len(line) - len(line.lstrip())
        if line.strip() == "Metadata:":
            indent = depth
        elif indent is not None and depth > indent and ":" in line:
            key, value = line.split(":", 1)
            tags[key.strip()] = value.strip()
        else:
            indent = None
    return tags


def probe(path: str | Path) -> dict:
    """Everything about one case file that is not its pixels."""
    path = Path(path)
    data = path.read_bytes()
    boxes = mp4_boxes(data)
    moov = next((data[o:o + s] for kind, o, s in boxes if kind == "moov"), b"")
    described = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True, text=True).stderr
    stream = _STREAM.search(described)
    duration = re.search(r"Duration: ([\d:.]+)", described)
    packets = subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-i", str(path), "-map", "0:v",
                              "-c", "copy", "-f", "framemd5", "-"], capture_output=True, text=True).stdout
    sizes = np.array([int(line.split(",")[4]) for line in packets.splitlines() if line and not line.startswith("#")])
    if not len(sizes):
        sizes = np.zeros(1)
    return {
        "codec": stream["codec"] if stream else "unreadable",
        "profile": (stream["profile"] or "") if stream else "",
        "pix_fmt": stream["pix_fmt"] if stream else "",
        "resolution": f"{stream['width']}x{stream['height']}" if stream else "",
        "fps": stream["fps"] if stream else "",
        "duration": duration[1] if duration else "",
        "frames": str(len(sizes) if packets else 0),
        "metadata": json.dumps(_metadata_tags(described), sort_keys=True),
        "container_header": hashlib.sha256(moov).hexdigest()[:16],
        "box_layout": " ".join(f"{kind}:{size}" for kind, _, size in boxes),
        "name_pattern": re.sub(r"[0-9a-f]", "x", path.stem) + path.suffix,
        "size_bytes": float(len(data)),
        "packet_min": float(sizes.min()),
        "packet_mean": float(sizes.mean()),
        "packet_max": float(sizes.max()),
        "packet_std": float(sizes.std()),
        "mtime": float(path.stat().st_mtime),
    }


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
    return {"n_real": len(probes["real"]), "n_synthetic": len(probes["synthetic"]), "features": features,
            "exploitable": exploitable, "blinded": not exploitable}
