"""Run a tiny training loop under torchrun (two Gloo CPU processes) and check that DDP really synchronised it:
each rank takes half of every epoch and gradients are averaged, so both ranks end with the same EMA weights, and
only rank 0 logs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent

PREAMBLE = """
import dataclasses, pathlib, sys, torch
import torch.distributed as dist
from safetensors.torch import save_file
sys.path.insert(0, {repo!r}); sys.path.insert(0, {tests!r})
torch.set_num_threads(1)
RUN = pathlib.Path({run!r})
"""

EPILOGUE = """
save_file({{k: v.contiguous() for k, v in ema.state_dict().items()}}, str(RUN / f"rank{{dist.get_rank()}}.safetensors"))
dist.destroy_process_group()
"""


def run_two_ranks(body: str, tmp_path: Path) -> list[dict]:
    """Run ``body`` (which trains into ``RUN`` and leaves the returned EMA model in ``ema``) on two ranks; assert
    both ranks hold identical weights; return rank 0's log records."""
    from safetensors.torch import load_file

    run = tmp_path / "run"
    script = tmp_path / "ddp.py"
    script.write_text(PREAMBLE.format(repo=str(REPO), tests=str(REPO / "tests"), run=str(run)) + body
                      + EPILOGUE.format())
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                           str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    a, b = (load_file(str(run / f"rank{r}.safetensors")) for r in (0, 1))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    return [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines() if line]
