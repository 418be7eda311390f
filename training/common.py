"""What every training script shares: its command line, seeding, device, torchrun (DDP), a JSONL log, and
resumable checkpoints.

Checkpoints hold model and optimizer tensors in safetensors and the scalar optimizer state in JSON, so
resuming never unpickles anything.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import math
import os
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from cardiosynth.device import resolve_device
from cardiosynth.weights import CONFIG_FILE, WEIGHTS_FILE, quantize_int8, sha256_of


def training_parser(doc: str, configs: dict, weights_name: str, *, dataset: bool = True, epochs: bool = True,
                    resume: bool = True, device: bool = True, max_steps: bool = False, max_minutes: bool = False,
                    threads: bool = False, out_help: str | None = None) -> argparse.ArgumentParser:
    """The flags every ``python -m training.<model>`` shares, spelled and explained the same way in each; the
    trainer adds its own (the models it depends on, ``--evaluate``, ...) to the parser it gets back."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", choices=sorted(configs), default="default")
    if dataset:
        parser.add_argument("--dataset", default=None, help="prepared dataset name or folder (default: the config's)")
    parser.add_argument("--out", help=out_help or f"weights folder (default weights/{weights_name}, or "
                                                  f"weights/{weights_name}_<config>)")
    if epochs:
        parser.add_argument("--epochs", type=int, help="override the recipe's epochs")
    if max_steps:
        parser.add_argument("--max-steps", type=int, help="stop after this many optimizer steps (smoke runs)")
    if max_minutes:
        parser.add_argument("--max-minutes", type=float, help="stop after this much training time (a lent GPU)")
    if resume:
        parser.add_argument("--resume", action="store_true", help="continue from the run's last checkpoint")
    if device:
        parser.add_argument("--device", default="auto", help="auto (CUDA when present, else CPU), cpu or cuda")
    if threads:
        parser.add_argument("--threads", type=int, help="CPU threads (results are bit-reproducible for a fixed "
                            "count; 1 thread is much faster than 2 when another job shares the cores)")
    return parser


@dataclass
class TrainingRun:
    """A parsed training command: its arguments, the model config and the training recipe they select (the
    recipe is ``None`` for a trainer without one), where the weights go, and the command line that reproduces the
    run (without ``--resume``), for the model card."""

    args: argparse.Namespace
    config: Any
    out: Path
    command: str
    recipe: Any = None


def config_suffix(config_name: str) -> str:
    """``""`` for the default config, ``"_<name>"`` otherwise: how weight folders of other configs are named."""
    return "" if config_name == "default" else f"_{config_name}"


def parse_training_run(parser: argparse.ArgumentParser, configs: dict, weights_name: str, module: str,
                       argv: list[str] | None = None,
                       default_out: Callable[[argparse.Namespace], str | Path] | None = None,
                       recipes: dict | None = None) -> TrainingRun:
    """Parse, set the CPU threads (``--threads``), select the model config and the training recipe of the same
    name (``--epochs`` overrides the recipe's epochs) and the weights folder (``--out``, else
    ``default_out(args)``, else ``weights/<weights_name>[_<config>]``)."""
    args = parser.parse_args(argv)
    if getattr(args, "threads", None):
        torch.set_num_threads(args.threads)
    config = configs[args.config]
    recipe = None if recipes is None else recipes[args.config]
    if getattr(args, "epochs", None):
        if recipe is None:
            raise ValueError(f"{module} has no training recipe whose epochs --epochs could set")
        recipe = with_epochs(recipe, args.epochs)
    if args.out:
        out = Path(args.out)
    else:
        out = Path(default_out(args) if default_out else f"weights/{weights_name}{config_suffix(args.config)}")
    words = sys.argv[1:] if argv is None else argv
    command = f"python -m training.{module} " + " ".join(word for word in words if word != "--resume")
    return TrainingRun(args, config, out, command.strip(), recipe)


def with_epochs(recipe, epochs: int):
    """The training recipe (a dataclass of training.recipes) with another number of epochs."""
    return dataclasses.replace(recipe, epochs=epochs)


def seed_everything(seed: int) -> torch.Generator:
    """Seed every generator; also flush denormals, which otherwise make CPU conv backward passes 5-10x slower."""
    torch.set_flush_denormal(True)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def init_distributed(device: torch.device) -> tuple[int, int, torch.device]:
    """Under ``torchrun`` (WORLD_SIZE > 1): join the process group (NCCL on GPUs, Gloo on CPU) and return
    ``(rank, world_size, this process's device)``; run plainly, ``(0, 1, device)``."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1, device
    import torch.distributed as dist

    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return dist.get_rank(), dist.get_world_size(), device


def main_process_first(rank: int, world: int, build):
    """``build()`` on rank 0 first, then (after a barrier) on the other ranks: a cache that rank 0 writes is only
    read by the others. Run plainly, just ``build()``."""
    if rank == 0:
        result = build()
    barrier(world)
    return result if rank == 0 else build()


def barrier(world: int) -> None:
    """Under torchrun, wait for every rank (e.g. until rank 0's checkpoint is on disk); run plainly, nothing."""
    if world > 1:
        import torch.distributed as dist

        dist.barrier()


class LossForward(torch.nn.Module):
    """Routes ``forward`` to ``model.loss``: DistributedDataParallel synchronises gradients through ``forward``."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, *args, **kwargs):
        return self.model.loss(*args, **kwargs)


def distributed_trainer(model: torch.nn.Module, device: torch.device, world: int) -> torch.nn.Module:
    """What a training step calls: ``model.loss`` itself, or under torchrun a DDP wrapper of it."""
    if world == 1:
        return LossForward(model)
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(LossForward(model), device_ids=[device.index] if device.type == "cuda" else None)


def rank_share(order: torch.Tensor, generator: torch.Generator, rank: int, world: int,
               seed: int) -> tuple[torch.Tensor, torch.Generator]:
    """This rank's disjoint share of an epoch's shuffled ``order`` (the same length on every rank, as DDP needs)
    and the generator for the rest of its randomness: rank 0 keeps ``generator`` (so one process reproduces a
    plain run), the others get their own from ``seed``."""
    if world == 1:
        return order, generator
    order = order[:len(order) // world * world][rank::world]
    return order, (generator if rank == 0 else torch.Generator().manual_seed(seed + 7919 * rank))


def cosine_lr(step: int, total_steps: int, lr: float, warmup_steps: int, min_ratio: float = 0.0) -> float:
    """Linear warmup, then cosine decay to ``lr * min_ratio``."""
    if step < warmup_steps:
        return lr * (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return lr * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def adamw(model: torch.nn.Module, lr: float, weight_decay: float, betas=(0.9, 0.999)) -> torch.optim.AdamW:
    """AdamW without weight decay on biases and norms (1-d parameters), as LTH14 and DiT."""
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=lr, betas=betas)


def ema_update(ema: torch.nn.Module, model: torch.nn.Module, decay: float, step: int) -> None:
    """EMA of the weights; early in short runs the decay is lowered so the EMA catches up."""
    decay = min(decay, (1 + step) / (10 + step))
    with torch.no_grad():
        torch._foreach_lerp_(list(ema.parameters()), list(model.parameters()), 1 - decay)


class Budget:
    """When a run stops early: after ``max_steps`` optimizer steps (smoke runs) or ``max_minutes`` of wall time
    (a GPU lent for minutes; single process: ranks of a DDP run could disagree on the clock)."""

    def __init__(self, max_steps: int | None = None, max_minutes: float | None = None):
        self.max_steps, self.max_minutes = max_steps, max_minutes
        self.started = time.perf_counter()

    def spent(self, step: int) -> bool:
        return ((self.max_steps is not None and step >= self.max_steps)
                or (self.max_minutes is not None and time.perf_counter() - self.started >= 60 * self.max_minutes))


def pick_device(requested: str = "auto") -> torch.device:
    return resolve_device(requested)


class JsonlLog:
    """Append one JSON object per line (step, losses, metrics, seconds since start)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.started = time.perf_counter()

    def write(self, **record) -> None:
        record["elapsed_s"] = round(time.perf_counter() - self.started, 2)
        with self.path.open("a") as handle:
            handle.write(json.dumps(record) + "\n")


def run_minutes(log_path: str | Path) -> float:
    """Training minutes recorded in a run's JSONL log, summed over resumed segments (elapsed_s restarts at 0)."""
    total, last = 0.0, 0.0
    for line in Path(log_path).read_text().splitlines():
        elapsed = json.loads(line).get("elapsed_s", 0.0)
        if elapsed < last:  # a new process appended to the log
            total += last
        last = elapsed
    return (total + last) / 60


def save_checkpoint(path: str | Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, step: int,
                    extra: dict | None = None) -> None:
    """Atomically write ``path.safetensors`` + ``path.json``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    opt = optimizer.state_dict()
    scalars: dict[str, dict] = {}
    for pid, state in opt["state"].items():
        for key, value in state.items():
            if torch.is_tensor(value):
                tensors[f"optim.{pid}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(pid), {})[key] = value
    tmp = path.with_suffix(".tmp")
    save_file(tensors, str(tmp))
    meta = {"step": step, "param_groups": opt["param_groups"], "optim_scalars": scalars, "extra": extra or {}}
    path.with_suffix(".json").write_text(json.dumps(meta))
    tmp.replace(path.with_suffix(".safetensors"))


def load_checkpoint(path: str | Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None = None) -> dict:
    """Restore model (and optimizer) from :func:`save_checkpoint`; returns its metadata (``step``, ``extra``)."""
    path = Path(path)
    tensors = load_file(str(path.with_suffix(".safetensors")))
    meta = json.loads(path.with_suffix(".json").read_text())
    model.load_state_dict({k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")})
    if optimizer is not None:
        state: dict[int, dict] = {}
        for key, value in tensors.items():
            if key.startswith("optim."):
                _, pid, name = key.split(".", 2)
                state.setdefault(int(pid), {})[name] = value
        for pid, values in meta["optim_scalars"].items():
            state.setdefault(int(pid), {}).update(values)
        optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    return meta


def start_run(model: torch.nn.Module, optimizer: torch.optim.Optimizer, run_dir: Path, resume: bool,
              best: dict) -> tuple[torch.nn.Module, torch.nn.ModuleDict, int, int, dict]:
    """An EMA copy of ``model`` and, with ``resume``, the state of ``run_dir/last``: returns ``(ema, both,
    start_epoch, step, best)``, ``both`` being what every checkpoint of the run holds (model and EMA)."""
    ema = copy.deepcopy(model).eval().requires_grad_(False)
    both = torch.nn.ModuleDict({"model": model, "ema": ema})
    start_epoch, step = 0, 0
    if resume and checkpoint_exists(run_dir / "last"):
        meta = load_checkpoint(run_dir / "last", both, optimizer)
        start_epoch, step, best = meta["extra"]["epoch"] + 1, meta["extra"]["step"], meta["extra"]["best"]
    return ema, both, start_epoch, step, best


def end_epoch(run_dir: Path, both: torch.nn.Module, optimizer: torch.optim.Optimizer, log: "JsonlLog", record: dict,
              best: dict, key: str, scores: dict | None = None) -> dict:
    """Log the epoch's ``record``; when it was validated (``scores``) and its ``key`` (lower is better) beats
    ``best``, save it as "best"; always save "last" (what ``--resume`` continues). Returns the best so far."""
    epoch, step = record["epoch"], record["step"]
    if scores is not None and scores[key] < best[key]:
        best = {**scores, "epoch": epoch, "step": step}
        save_checkpoint(run_dir / "best", both, optimizer, step, extra={"epoch": epoch, "step": step, "best": best})
    log.write(**record)
    save_checkpoint(run_dir / "last", both, optimizer, step, extra={"epoch": epoch, "step": step, "best": best})
    return best


@dataclass
class EpochLoop:
    """The epoch loop every EMA-selected trainer shares (the MAR, the ECG flow, the ECG MAE): what differs between
    them is the batch loss (:attr:`step_loss`) and the validation (:attr:`validate`); the rest is here once, set
    by the trainer's ``recipe``.

    Each epoch draws its own generator from ``recipe.seed`` and the epoch number (so a resumed run continues the
    same run), a permutation of the ``n`` training items and, with ``versions``, which augmented version of each
    item it sees, then takes each rank's share (DDP). Each step sets the cosine learning rate, steps the
    optimizer on ``step_loss(idx, version, generator)`` (a dict of scalar tensors whose ``"loss"`` is
    minimised, the rest logged), clips the gradient and updates the EMA. Every ``recipe.eval_every`` epochs, at
    the last one and when the budget is spent, rank 0 calls ``validate(ema)`` -> (fields for the log, the scores
    whose ``key`` (lower is better) selects the checkpoint) and saves "best" and "last"."""

    model: torch.nn.Module
    trainer: torch.nn.Module  # the model, or its DistributedDataParallel wrapper
    optimizer: torch.optim.Optimizer
    run_dir: Path
    key: str
    n: int
    recipe: Any  # the trainer's recipe (training.recipes): batch_size, epochs, seed, grad_clip, ema_decay, eval_every
    lr: Callable[[int, int], float]  # (step, total_steps) -> learning rate
    step_loss: Callable[[torch.Tensor, torch.Tensor | None, torch.Generator], dict]
    validate: Callable[[torch.nn.Module], tuple[dict, dict]]
    versions: int = 0
    rank: int = 0
    world: int = 1
    desc: str = "train"

    def run(self, resume: bool = False, budget: Budget | None = None, progress: bool = True
            ) -> tuple[torch.nn.Module, dict]:
        """Train (from ``run_dir/last`` with ``resume``); the EMA of the best validated epoch, on the CPU, and its
        scores with ``epoch`` and ``step``."""
        budget = budget or Budget()
        main_process = self.rank == 0
        steps_per_epoch = math.ceil(self.n // self.world / self.recipe.batch_size)  # the same on every rank (DDP)
        total_steps = self.recipe.epochs * steps_per_epoch
        log = JsonlLog(self.run_dir / "log.jsonl") if main_process else None
        ema, both, start_epoch, step, best = start_run(self.model, self.optimizer, self.run_dir, resume,
                                                       {self.key: float("inf")})
        self.model.train()
        bar = tqdm(range(start_epoch, self.recipe.epochs), desc=self.desc, unit="epoch", disable=not (progress and main_process))
        for epoch in bar:
            epoch_seed = self.recipe.seed * 100_003 + epoch
            generator = torch.Generator().manual_seed(epoch_seed)
            order = torch.randperm(self.n, generator=generator)
            version = torch.randint(0, self.versions, (self.n,), generator=generator) if self.versions else None
            order, generator = rank_share(order, generator, self.rank, self.world, epoch_seed)
            losses, started = [], time.perf_counter()
            for k in range(steps_per_epoch):
                idx = order[k * self.recipe.batch_size:(k + 1) * self.recipe.batch_size]
                for group in self.optimizer.param_groups:
                    group["lr"] = self.lr(step, total_steps)
                out = self.step_loss(idx, version, generator)
                self.optimizer.zero_grad(set_to_none=True)
                out["loss"].backward()
                grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.recipe.grad_clip)
                self.optimizer.step()
                ema_update(ema, self.model, self.recipe.ema_decay, step)
                step += 1
                losses.append({name: value.item() for name, value in out.items()})
                if budget.spent(step):
                    break
            stop = budget.spent(step)
            if main_process:  # rank 0 validates, logs and checkpoints; the others wait at the next all-reduce
                record = {"epoch": epoch, "step": step, **{name: float(np.mean([l[name] for l in losses]))
                                                           for name in losses[0]},
                          "grad_norm": float(grad_norm), "lr": self.optimizer.param_groups[0]["lr"],
                          "s_per_step": (time.perf_counter() - started) / len(losses)}
                scores = None
                if (epoch + 1) % self.recipe.eval_every == 0 or epoch == self.recipe.epochs - 1 or stop:
                    fields, scores = self.validate(ema)
                    record.update(fields)
                best = end_epoch(self.run_dir, both, self.optimizer, log, record, best, self.key, scores)
                bar.set_postfix(loss=f"{record['loss']:.3f}", best=f"{best[self.key]:.3f}")
            if stop:
                break
        barrier(self.world)  # rank 0's last checkpoint is on disk before any rank reads "best"
        if checkpoint_exists(self.run_dir / "best"):
            load_checkpoint(self.run_dir / "best", both)
        return ema.cpu().eval(), best


def one_cine_per_patient(table, n: int, near: float = 0.5) -> list[int]:
    """Rows of ``table`` for a reconstruction sheet: ``n`` cines of ``n`` different patients, those nearest the
    slice position ``near`` (mid-ventricle) first."""
    order = np.argsort(np.abs(table["slice_position"].to_numpy() - near), kind="stable")
    chosen, seen = [], set()
    for i in order:
        if table["subject"].iloc[i] not in seen:
            chosen.append(int(i))
            seen.add(table["subject"].iloc[i])
        if len(chosen) == n:
            break
    return chosen


def checkpoint_exists(path: str | Path) -> bool:
    path = Path(path)
    return path.with_suffix(".safetensors").is_file() and path.with_suffix(".json").is_file()


def store_compact(folder: str | Path) -> None:
    """Rewrite a saved weights folder compactly (large weight matrices as int8 rows with a scale each, other
    floating-point tensors as float16; ``cardiosynth.weights.load_state`` restores float32) and update its
    sha256. Metrics measured afterwards are for exactly these weights."""
    folder = Path(folder)
    save_file(quantize_int8(load_file(str(folder / WEIGHTS_FILE))), str(folder / WEIGHTS_FILE))
    payload = json.loads((folder / CONFIG_FILE).read_text())
    payload["sha256"] = sha256_of(folder / WEIGHTS_FILE)
    payload.setdefault("extra", {})["weights_dtype"] = ("int8 weight matrices with a float16 scale per row, float16 "
                                                        "elsewhere (float32 on load)")
    (folder / CONFIG_FILE).write_text(json.dumps(payload, indent=2))
