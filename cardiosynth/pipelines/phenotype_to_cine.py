"""Phenotypes in, cines out: the CPGG chain (phenotype VAE -> MAR -> decoder of its representation) behind one call.

    pipe = PhenotypeToCine.from_pretrained()                  # the bundled weights/, no network
    result = pipe({"LVEDV": 160, "LVEF": 58}, n=4, seed=0)     # a partial set is completed by the phenotype VAE
    result.cines[0].frames                                     # (16, 64, 64) float32 in [0, 1], frame 0 = ED
    result.conditions                                          # the exact nine phenotypes, position, seed used
    request = pipe.request({"LVEDV": 160}, seed=0)             # parsed and checked once: a CineRequest
    result = pipe.run(request)                                 # what pipe(...) does: run(request(...))

The phenotype VAE resolves every request into one consistent set (EF = 100 SV / EDV; locked values kept
exactly, missing ones set to their conditional mean), so the MAR only ever sees sets the schema allows.

Two representations (the MAR's config says which): ``anatomy_motion`` (the ED frame's latent + a motion code,
decoded by the frame autoencoder and the motion model) and ``vae3d`` (the first rounds' 3D-VAE latents). The
bundled de novo generator (``weights/mar``) is still the 3D-VAE one: the anatomy + motion MAR trained so far
draws worse anatomy (reports/mar/README.md). Editing needs the anatomy + motion space, so a pipeline folder may
also hold ``mar_motion/``: an anatomy + motion MAR used as the editor, which keeps the anatomy channels of
every token and draws only the motion for the edited set:

    cine = prepare_real_slice(read_cine_file("patient_4d.nii.gz"), slice_index=4)   # pipelines.real_cine
    edit = pipe.edit(cine, {"LVEF": 35}, phenotypes=known_values_of_this_heart)
    edit.cines[0]                                              # same ED frame (as the autoencoder decodes it)
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

import numpy as np
import pandas as pd
import torch

from cardiosynth import phenotypes as ph
from cardiosynth.cine import Cine
from cardiosynth.device import autocast, resolve_device
from cardiosynth.export import PLACEMENT_KEYS
from cardiosynth.models.anatomy_motion import AnatomyMotionCodec
from cardiosynth.models.frame_ae import encode_frames
from cardiosynth.models.mar import MAR, standardise_phenotypes
from cardiosynth.models.vae3d import VAE3D, decode_cines
from cardiosynth.phenotype_prior import PhenotypePrior
from cardiosynth.pipelines import hub
from cardiosynth.pipelines.privacy import ReidentificationFilter
from cardiosynth.pipelines.rendering import (
    ExemplarRendering,
    RenderedHeart,
    real_heart_motion,
)
from cardiosynth.pipelines.requests import (
    SEED_RANGE,
    CineRequest,
    PhenotypeRequest,
    Sampling,
    checked_whole,
)
from cardiosynth.render.bank import AnatomyBank
from cardiosynth.render.fields import motion_positions
from cardiosynth.render.renderer import motion_scale
from cardiosynth.weights import WEIGHTS_DIR, WeightsError, read_config

# The sub-folders of a pipeline folder (the bundled ``weights/`` or a Hub snapshot): always these two, and the
# representation's models (``vae3d``, or ``frame_ae`` + ``motion``) plus the editor (``mar_motion``) when present.
COMPONENTS = ("phenotype_vae", "mar")
OPTIONAL_COMPONENTS = ("vae3d", "frame_ae", "motion", "mar_motion", "anatomy_bank", "reid")
BANK = "anatomy_bank"
#: where a rendered cine's motion comes from: the exemplar's own (scaled to the requested LVEF) or the MAR's draw
MOTIONS = ("exemplar", "mar")
DEFAULT_MOTION = "exemplar"  # measured on val: reports/renderer/README.md
EDIT_MOTIONS = ("own", "mar")
EDITOR = "mar_motion"
# What a heart's ED anatomy fixes: an edit keeps these and changes only contraction.
ANATOMY_PHENOTYPES = ("LVEDV", "LVM", "RVEDV")
#: ``progress(stage, fraction of the call done)``: what a waiting user is told (the app's progress bar)
Progress = Callable[[str, float], None]
DRAWN_SHARE = 0.9  # the fraction of a call's time spent drawing codes (measured: ~90 % on 2 cores, K = 16)
STEPS_NAME = "Decoding steps"  # what the MAR's steps are called where a bad value is refused
FAR_FROM_TRAINING_Z = 3.0  # |z| beyond which a requested phenotype is outside what the MAR saw in training


def placement_of(cine: Cine) -> dict:
    """The heart's place in its source's space (:data:`cardiosynth.export.PLACEMENT_KEYS`), for an edit of it:
    the edited cine's pixels lie on the same grid, so its exports overlay the source as the real slice's do."""
    return {key: cine.metadata[key] for key in PLACEMENT_KEYS if key in (cine.metadata or {})}


@dataclass
class PhenotypeToCineOutput:
    cines: list[Cine]
    conditions: pd.DataFrame  # one row per cine: the nine phenotypes, slice_position, seed, sampler settings


class PhenotypeToCine:
    """The phenotype -> cine generator. Deterministic on CPU: the same request and seed give identical cines."""

    def __init__(self, phenotype_prior: PhenotypePrior, mar: MAR, decoder: "AnatomyMotionCodec | Vae3dDecoder",
                 spacing_mm: float, name: str = "cpgg", sha: str = "", editor: "PhenotypeToCine | None" = None,
                 rendering: ExemplarRendering | None = None):
        if tuple(decoder.code_shape) != tuple(mar.config.latent_shape):
            raise ValueError(f"the MAR draws codes {mar.config.latent_shape}, its decoder takes "
                             f"{decoder.code_shape}: they were not trained together")
        self.phenotype_prior, self.mar, self.decoder = phenotype_prior, mar, decoder
        # the anatomy + motion generator that edits real hearts: this one, if it works in that space
        self.editor = self if isinstance(decoder, AnatomyMotionCodec) else editor
        self.spacing_mm = float(spacing_mm)
        self.name, self.sha = name, sha  # sha: fingerprint of the weights, recorded in every cine's source
        # the default path: cines rendered from real exemplars (None: the published path, decoded from latents)
        self.rendering = rendering

    @property
    def device(self) -> torch.device:
        return next(self.mar.parameters()).device

    @property
    def can_edit(self) -> bool:
        """Whether :meth:`edit` can edit a real heart: it needs an anatomy + motion generator."""
        return self.editor is not None

    @property
    def codec(self) -> AnatomyMotionCodec | None:
        """The anatomy + motion representation of this pipeline (its own, or its editor's), None without one."""
        return None if self.editor is None else self.editor.decoder

    # ------------------------------------------------------------------------------------------ loading
    @classmethod
    def from_pretrained(cls, folder_or_hub_id: str | Path = WEIGHTS_DIR, revision: str | None = None,
                        device: str | torch.device = "auto", local_files_only: bool | None = None,
                        decoded: bool = False) -> "PhenotypeToCine":
        """Load from a folder holding ``phenotype_vae/``, ``frame_ae/``, ``motion/`` and ``mar/`` (default: the
        bundled ``weights/``), or from a Hugging Face Hub repo id (``owner/name``) via ``huggingface_hub``. Every
        component's sha256 is checked, and the MAR refuses a representation other than the one it was trained on.
        ``device``: ``auto`` (CUDA when present, else CPU), ``cpu`` or ``cuda``; bf16 autocast on CUDA.

        With an ``anatomy_bank/`` in the folder every cine is rendered from a real exemplar (the default);
        ``decoded=True`` gives the published path instead (every frame decoded from the MAR's latents)."""
        device = resolve_device(device)
        folder = hub.resolve_folder(folder_or_hub_id, COMPONENTS, revision=revision, local_files_only=local_files_only,
                                    optional=OPTIONAL_COMPONENTS)
        phenotype_prior = PhenotypePrior.from_pretrained(folder / "phenotype_vae")
        sha = hub.folder_fingerprint(folder, present_components(folder))
        mar, decoder = _load_generator(folder, "mar")
        editor = None
        if mar.config.representation != "anatomy_motion" and hub.has_component(folder, EDITOR):
            motion_mar, codec = _load_generator(folder, EDITOR)
            editor = cls(phenotype_prior, motion_mar.to(device), codec.to(device), motion_mar.config.spacing_mm,
                         name="cpgg-editor", sha=sha)
        rendering = None
        if not decoded and hub.has_component(folder, BANK):
            bank = AnatomyBank.from_pretrained(folder / BANK)
            privacy = ReidentificationFilter(folder / "reid", bank) if hub.has_component(folder, "reid") else None
            rendering = ExemplarRendering(bank, privacy=privacy)
        return cls(phenotype_prior, mar.to(device), decoder.to(device), mar.config.spacing_mm, sha=sha, editor=editor,
                   name="cpgg" if rendering is None else "cpgg-render", rendering=rendering)

    def push_to_hub(self, repo_id: str, folder: str | Path = WEIGHTS_DIR, private: bool = True, token: str | None = None,
                    commit_message: str = "Upload CardioSynth phenotype-to-cine weights") -> str:
        """Upload the component folders (weights, configs, model cards) to ``repo_id``; returns the commit URL."""
        return hub.push_folder(repo_id, folder, present_components(Path(folder)), private=private, token=token,
                               commit_message=commit_message)

    # ------------------------------------------------------------------------------------------ requests
    @property
    def default_sampling(self) -> Sampling:
        """The MAR's own sampler settings (seed 0): what a call uses for the settings it does not give."""
        s = self.mar.config.sampler
        return Sampling(0, s.num_iter, s.cfg, s.temperature)

    @property
    def max_steps(self) -> int:
        """The most decoding steps the MAR can take: one token per step."""
        return self.mar.config.num_tokens

    def parse_sampling(self, seed=0, steps=None, cfg=None, temperature=None) -> Sampling:
        """The sampler settings checked once, this MAR's defaults in place of what is not given."""
        return Sampling.parse(seed, steps, cfg, temperature, defaults=self.default_sampling, max_steps=self.max_steps,
                              steps_name=STEPS_NAME)

    def drawer(self, motion: str = DEFAULT_MOTION) -> "PhenotypeToCine":
        """The generator whose MAR draws for ``motion``: the anatomy + motion editor when a rendered cine's
        motion is the MAR's (``motion="mar"``), else this one."""
        if self.rendering is None or motion != "mar":
            return self
        if self.editor is None:
            raise WeightsError("motion='mar' needs the anatomy + motion MAR (mar_motion/ beside mar/)")
        return self.editor

    def request(self, phenotypes, n: int = 1, seed: int = 0, steps: int | None = None, cfg: float | None = None,
                slice_position: float | None = 0.5, temperature: float | None = None, clamp: bool = False,
                motion: str = DEFAULT_MOTION, privacy_filter: bool = False) -> CineRequest:
        """A call parsed and checked once (the arguments of :meth:`__call__`), what :meth:`run` takes: every bad
        value is one readable error here, and nothing after it checks again."""
        check_count(n)
        if self.rendering is not None and motion not in MOTIONS:
            raise ValueError(f"motion must be one of {', '.join(MOTIONS)}; got {motion!r}")
        sampling = self.drawer(motion).parse_sampling(seed, steps, cfg, temperature)
        asked = PhenotypeRequest.parse(phenotypes, slice_position, clamp)
        return CineRequest(self.resolve_conditions(asked), int(n), sampling, motion, bool(privacy_filter), asked)

    def resolve_conditions(self, phenotypes, slice_position: float | None = 0.5, clamp: bool = False) -> pd.DataFrame:
        """A dict (one set), a table (one set per row; schema names, aliases or UK Biobank columns) or a
        :class:`PhenotypeRequest` already parsed -> the full, consistent phenotype sets the MAR will see, one row
        per set, with ``completed`` naming the phenotypes the VAE filled in. Out-of-range values are a
        PhenotypeError naming the phenotype and its plausible range, or with ``clamp=True`` are moved to the
        range's edge with a warning."""
        request = (phenotypes if isinstance(phenotypes, PhenotypeRequest)
                   else PhenotypeRequest.parse(phenotypes, slice_position, clamp))
        full = self.phenotype_prior.complete_checked(request.rows)
        full = full[list(ph.NAMES)]
        full["slice_position"] = request.slice_position
        full["completed"] = ", ".join(request.missing)
        self._warn_far_from_training(full)
        return full

    def _warn_far_from_training(self, full: pd.DataFrame) -> None:
        c = self.mar.config
        z = standardise_phenotypes(full[list(c.phenotypes)].to_numpy(float), c)
        far = sorted({c.phenotypes[j] for j in np.nonzero(np.abs(z) > FAR_FROM_TRAINING_Z)[1]})
        if far:
            warnings.warn(f"Requested {', '.join(far)}: more than {FAR_FROM_TRAINING_Z:g} SD from the training data "
                          "the generator saw; the cines extrapolate and may not show these values", stacklevel=3)

    # ------------------------------------------------------------------------------------------ generation
    @torch.no_grad()
    def __call__(self, phenotypes, n: int = 1, seed: int = 0, steps: int | None = None, cfg: float | None = None,
                 slice_position: float | None = 0.5, temperature: float | None = None, clamp: bool = False,
                 batch_size: int = 16, progress: Progress | None = None,
                 motion: str = DEFAULT_MOTION, privacy_filter: bool = False) -> PhenotypeToCineOutput:
        """``n`` cines per phenotype set (a dict, or one per table row). Rendered from the anatomy bank when the
        pipeline has one: ``motion`` ``exemplar`` (the exemplar's own, scaled to the requested LVEF) or ``mar``
        (drawn by the MAR for the new heart's anatomy); ``privacy_filter`` redraws any heart the re-identification
        network matches to a training patient above the held-out threshold. ``steps`` = MAR decoding steps K,
        ``cfg`` = guidance scale, ``slice_position`` 0 base ... 1 apex (a table's ``slice_position`` column wins).
        Defaults come from the MAR's config. The whole call is seeded by ``seed``. ``progress(stage, fraction)``
        hears each decoding step and the decode to frames (it does not change the cines).
        The same as ``run(request(...))``."""
        return self.run(self.request(phenotypes, n, seed, steps, cfg, slice_position, temperature, clamp, motion,
                                     privacy_filter), batch_size, progress)

    @torch.no_grad()
    def run(self, request: CineRequest, batch_size: int = 16,
            progress: Progress | None = None) -> PhenotypeToCineOutput:
        """The cines of a request :meth:`request` parsed and checked."""
        if self.rendering is not None:
            return self._render(request, batch_size, progress)
        return self._generate_from(request, batch_size, progress=progress)

    def _generate_from(self, request: CineRequest, batch_size: int = 16, known: torch.Tensor | None = None,
                       known_channels: int = 0, progress: Progress | None = None) -> PhenotypeToCineOutput:
        conditions = sampled_conditions(request)
        codes = self._draw(conditions, request.sampling, batch_size, known, known_channels, progress=progress)
        if progress is not None:
            progress("Decoding the anatomy and motion into frames", DRAWN_SHARE)
        frames = self.decoder.decode_codes(codes).numpy()
        if progress is not None:
            progress("Frames decoded", 1.0)
        seed = request.sampling.seed
        cines = [Cine(f, (self.spacing_mm, self.spacing_mm), float(p), source=f"synthetic:{self.name}@{self.sha[:12]}",
                      metadata={"seed": seed, "sample": int(s)})
                 for f, p, s in zip(frames, conditions["slice_position"], conditions["sample"])]
        return PhenotypeToCineOutput(cines, conditions)

    def _render(self, request: CineRequest, batch_size: int, progress: Progress | None) -> PhenotypeToCineOutput:
        """The default path: each cine an exemplar of the bank, deformed toward its set and moved."""
        motion, sampling, seed = request.motion, request.sampling, request.sampling.seed
        conditions = request.conditions()
        conditions["seed"], conditions["motion"] = seed, motion
        # recorded as resolved; only motion="mar" draws with them
        conditions["steps"], conditions["cfg"] = sampling.steps, sampling.cfg
        conditions["temperature"] = sampling.temperature
        if progress is not None:
            progress("Choosing real exemplars and deforming their anatomy", 0.05)
        hearts = self.rendering.hearts(conditions, seed)
        if request.privacy_filter:
            hearts, redraws, scores = self.rendering.filtered(hearts, conditions, seed)
            conditions["privacy_redraws"], conditions["reid_score"] = redraws, np.round(scores, 4)
            conditions["reid_matched"] = scores > self.rendering.privacy.threshold
        if motion == "mar":
            controls = self._drawn_motion(hearts, conditions, sampling, batch_size, progress)
            scales = [None] * len(hearts)
        else:
            controls, scales = zip(*(self.rendering.exemplar_motion(h, float(lvef))
                                     for h, lvef in zip(hearts, conditions["LVEF"])))
        if progress is not None:
            progress("Rendering the frames from the exemplars' real pixels", DRAWN_SHARE)
        source = f"synthetic:{self.name}@{self.sha[:12]}"
        cines = [self.rendering.render(heart, control, "exemplar" if motion == "exemplar" else "new", self.spacing_mm,
                                       float(row.slice_position), source,
                                       {"seed": seed, "sample": int(row.sample), "motion": motion,
                                        **({} if scale is None else {"motion_scale": round(float(scale), 4)})})
                 for heart, control, scale, row in zip(hearts, controls, scales, conditions.itertuples())]
        conditions["exemplar"] = [c.metadata["exemplar"] for c in cines]
        if request.privacy_filter:
            for cine, redraws, score in zip(cines, conditions["privacy_redraws"], conditions["reid_score"]):
                cine.metadata.update(privacy_redraws=int(redraws), reid_score=float(score),
                                     reid_matched=bool(score > self.rendering.privacy.threshold))
        if progress is not None:
            progress("Frames rendered", 1.0)
        return PhenotypeToCineOutput(cines, conditions)

    def _drawn_motion(self, hearts: list[RenderedHeart], conditions: pd.DataFrame, sampling: Sampling,
                      batch_size: int, progress: Progress | None) -> list[torch.Tensor]:
        """The MAR's motion for each new heart: its ED frame encoded (anatomy channels kept), motion drawn."""
        codec = self.codec
        anatomy = encode_frames(codec.frame_ae, torch.from_numpy(self.rendering.ed_frames(hearts)))
        known = codec.pack(anatomy, torch.zeros(len(hearts), *codec.motion.config.code_shape))
        codes = self.editor._draw(conditions, sampling, batch_size, known=known,
                                  known_channels=codec.anatomy_channels, progress=progress)
        _, motion_codes = codec.unpack(codes)
        return list(codec.motion.control(motion_codes.to(codec.motion.mean_field.device)).cpu().double())

    @torch.no_grad()
    def draw_codes(self, phenotypes, n: int = 1, seed: int = 0, steps: int | None = None, cfg: float | None = None,
                   temperature: float | None = None, clamp: bool = False, slice_position: float | None = 0.5,
                   batch_size: int = 16, known: torch.Tensor | None = None, known_channels: int = 0,
                   progress: Progress | None = None) -> tuple[torch.Tensor, pd.DataFrame]:
        """The MAR's packed anatomy + motion codes (N, C, 1, g, g) on the CPU for the request, and the
        conditions table; what ``__call__`` decodes (:meth:`draw_request_codes` for a request already parsed)."""
        return self.draw_request_codes(self.request(phenotypes, n, seed, steps, cfg, slice_position, temperature,
                                                    clamp), batch_size, known, known_channels, progress)

    def draw_request_codes(self, request: CineRequest, batch_size: int = 16, known: torch.Tensor | None = None,
                           known_channels: int = 0,
                           progress: Progress | None = None) -> tuple[torch.Tensor, pd.DataFrame]:
        """:meth:`draw_codes` for a request already parsed: its codes and conditions table (the ECG pipeline
        takes the anatomy channels from here)."""
        conditions = sampled_conditions(request)
        if known is not None:
            known = known.repeat_interleave(request.n, dim=0) if len(known) == len(request.sets) else known
        return self._draw(conditions, request.sampling, batch_size, known, known_channels, progress), conditions

    def _draw(self, conditions: pd.DataFrame, sampling: Sampling, batch_size: int = 16,
              known: torch.Tensor | None = None, known_channels: int = 0,
              progress: Progress | None = None) -> torch.Tensor:
        """The MAR's codes for each row of ``conditions`` (checked sets), drawn with ``sampling``, on the CPU."""
        c = self.mar.config
        generator = torch.Generator().manual_seed(sampling.seed)  # on the CPU: the same draws on every device
        phenotypes = conditions[list(c.phenotypes)].to_numpy(np.float64)  # the request, as the MAR's tensors
        positions = conditions["slice_position"].to_numpy(np.float64)
        starts = range(0, len(conditions), batch_size)

        def on_step(batch: int):
            if progress is None:
                return None
            where = f" (batch {batch + 1} of {len(starts)})" if len(starts) > 1 else ""
            return lambda k, total: progress(f"MAR decoding step {k} of {total}{where}",
                                             DRAWN_SHARE * (batch + k / total) / len(starts))

        with autocast(self.device):
            latents = [self.mar.generate(phenotypes[i:i + batch_size], positions[i:i + batch_size],
                                         num_iter=sampling.steps, cfg=sampling.cfg,
                                         temperature=sampling.temperature, generator=generator,
                                         known=None if known is None else known[i:i + batch_size],
                                         known_channels=known_channels, on_step=on_step(b))
                       for b, i in enumerate(starts)]
        return torch.cat(latents).float().cpu()

    @torch.no_grad()
    def edit(self, cine: Cine, changes: Mapping[str, float], phenotypes: Mapping[str, float] | None = None,
             n: int = 1, seed: int = 0, steps: int | None = None, cfg: float | None = None,
             temperature: float | None = None, motion: str | None = None) -> PhenotypeToCineOutput:
        """The same heart with the motion of new values: ``changes`` (e.g. ``{"LVEF": 35}`` or
        ``{"LVESV": 90}``) applied to the heart's ``phenotypes`` (what is known of it: its report, or what
        ``cardiosynth.measure.CineMeasurer`` reads off it; the phenotype VAE completes the rest). The ED
        volumes and mass stay those of the heart, only contraction changes; the result's first row of
        ``conditions`` is the edited set. ``cine`` is a prepared slice (:mod:`cardiosynth.pipelines.real_cine`).

        With an anatomy bank (the default) every frame is the heart's own real ED frame, warped: by the heart's
        own registered motion scaled to the new LVEF (``motion="own"``: it needs the heart's current LVEF in
        ``phenotypes``), or by the motion the anatomy + motion MAR draws for the new values (``motion="mar"``;
        measured worse on val, reports/renderer/README.md). Default: ``own`` when the LVEF is known, else ``mar``.
        Without one, the published path decodes the ED frame through the frame autoencoder."""
        if not isinstance(cine, Cine):
            raise TypeError("edit needs a Cine: read a file with cardiosynth.pipelines.real_cine first")
        if self.editor is None:
            raise WeightsError("This pipeline cannot edit real hearts: it has no anatomy + motion generator "
                               f"(a {EDITOR}/ folder beside mar/)")
        if self.rendering is None and self.editor is not self:
            return self.editor.edit(cine, changes, phenotypes, n, seed, steps, cfg, temperature)
        expected = self.codec.cine_shape
        if cine.shape != expected or not np.allclose(cine.spacing_mm, self.spacing_mm, rtol=0.02):
            raise ValueError(f"The cine is {cine.shape} at {cine.spacing_mm} mm; the generator edits {expected} "
                             f"at {self.spacing_mm} mm cines: prepare it with cardiosynth.pipelines.real_cine")
        request = edit_request(changes, phenotypes)
        table = pd.DataFrame([{**request, "slice_position": cine.slice_position}])
        if self.rendering is not None:
            known = dict(phenotypes or {})
            motion = motion or ("own" if "LVEF" in known else "mar")
            return self._render_edit(cine, table, known, n, seed, steps, cfg, temperature, motion)
        codes = self.codec.encode_anatomy_codes(torch.from_numpy(cine.frames[None]))
        result = self._generate_from(self.request(table, n, seed, steps, cfg, None, temperature),
                                     known=codes, known_channels=self.codec.anatomy_channels)
        for out in result.cines:
            out.valid = cine.valid.copy()
            out.frames[:, ~cine.valid] = 0.0
            out.metadata.update(edited_from=cine.source, **placement_of(cine))
        return result

    def _render_edit(self, cine: Cine, table: pd.DataFrame, known: dict, n: int, seed: int, steps, cfg,
                     temperature, motion: str) -> PhenotypeToCineOutput:
        """An edit rendered from the heart's own ED frame (no autoencoder round trip)."""
        if motion not in EDIT_MOTIONS:
            raise ValueError(f"motion must be one of {', '.join(EDIT_MOTIONS)}; got {motion!r}")
        check_count(n)
        codec = self.codec
        if motion == "mar":
            known_codes = codec.encode_anatomy_codes(torch.from_numpy(cine.frames[None]))
            codes, conditions = self.editor.draw_codes(table, n, seed, steps, cfg, temperature, known=known_codes,
                                                       known_channels=codec.anatomy_channels)
            controls = list(codec.motion.control(codec.unpack(codes)[1].to(codec.motion.mean_field.device))
                            .cpu().double())
        else:
            if "LVEF" not in known:
                raise ph.PhenotypeError("Editing with the heart's own motion needs its current LVEF (give it in "
                                        "phenotypes, or measure it first)")
            seed = checked_whole(seed, "Seed", *SEED_RANGE)  # the only setting the heart's own motion uses
            conditions = self.resolve_conditions(table, None)
            conditions = conditions.loc[conditions.index.repeat(int(n))].reset_index(drop=True)
            conditions["sample"], conditions["seed"] = np.arange(int(n)), int(seed)
            own = real_heart_motion(cine, codec.motion)
            scale = motion_scale(float(known["LVEF"]), float(conditions["LVEF"].iloc[0]), None)
            controls = [own * scale] * int(n)
        conditions["motion"] = motion
        generator = torch.Generator().manual_seed(int(seed))
        source = f"synthetic:{self.name}@{self.sha[:12]}"
        cines = []
        for sample, control in enumerate(controls):
            positions = motion_positions(control, codec.motion.config.size)
            frames = self.rendering.renderer.render(cine.frames[0], cine.valid, positions, generator)
            cines.append(Cine(frames, cine.spacing_mm, cine.slice_position, cine.valid.copy(),
                              source=f"{source}; edited from {cine.source}",
                              metadata={"seed": int(seed), "sample": sample, "motion": motion,
                                        "edited_from": cine.source, **placement_of(cine)}))
        return PhenotypeToCineOutput(cines, conditions)

    # The evaluator's generator contract: conditions table in (one row per cine), cines out.
    def generate(self, conditions: pd.DataFrame, steps: int | None = None, cfg: float | None = None,
                 temperature: float | None = None, motion: str = DEFAULT_MOTION,
                 privacy_filter: bool = False) -> list[Cine]:
        """One cine per row, in row order. The seed contract: a call's ``seed`` seeds every draw of that call, so
        the rows that share a ``seed`` value are drawn together as one call (in table order), and rows with
        another seed are another call; without a ``seed`` column every row is seed 0."""
        columns = [n for n in ph.NAMES if n in conditions] + ["slice_position"]
        seeds = conditions["seed"].to_numpy(int) if "seed" in conditions else np.zeros(len(conditions), int)
        cines: list[Cine | None] = [None] * len(conditions)
        for seed in dict.fromkeys(seeds.tolist()):
            rows = np.flatnonzero(seeds == seed)
            drawn = self(conditions[columns].iloc[rows].reset_index(drop=True), n=1, seed=int(seed), steps=steps,
                         cfg=cfg, temperature=temperature, motion=motion, privacy_filter=privacy_filter).cines
            for row, cine in zip(rows, drawn):
                cines[row] = cine
        return cines


def edit_request(changes: Mapping[str, float], phenotypes: Mapping[str, float] | None) -> dict:
    """The set an edit asks for: the heart's known ED anatomy (LVEDV, LVM, RVEDV) and the contraction changes.
    Anatomy in ``changes`` or unknown names are a PhenotypeError."""
    if not changes:
        raise ph.PhenotypeError("Say what to change, e.g. {'LVEF': 35}")
    mapping, unknown = ph.map_columns([str(k) for k in changes])
    if unknown:
        raise ph.PhenotypeError(f"Unknown phenotype(s) {', '.join(unknown)}; editable are LVEF, LVESV, LVSV, "
                                "RVEF, RVESV, RVSV (the ED volumes and mass belong to the anatomy)")
    changes = {mapping[str(k)]: float(v) for k, v in changes.items()}
    fixed = [name for name in changes if name in ANATOMY_PHENOTYPES]
    if fixed:
        raise ph.PhenotypeError(f"{', '.join(fixed)} belong to the heart's ED anatomy, which editing keeps; "
                                "change contraction instead (LVEF, LVESV, LVSV, RVEF, RVESV, RVSV)")
    known = {name: float(v) for name, v in dict(phenotypes or {}).items() if name in ANATOMY_PHENOTYPES}
    return {**known, **changes}


def sampled_conditions(request: CineRequest) -> pd.DataFrame:
    """One row per cine with the sampler settings it was drawn with (the MAR's draws)."""
    conditions, s = request.conditions(), request.sampling
    conditions["seed"], conditions["steps"], conditions["cfg"] = s.seed, s.steps, s.cfg
    conditions["temperature"] = s.temperature
    return conditions


def check_count(n) -> None:
    if isinstance(n, bool) or int(n) != n or n < 1:
        raise ValueError(f"n must be a positive whole number of cines; got {n!r}")


# ---------------------------------------------------------------------------------------------- loading
class Vae3dDecoder:
    """The first rounds' representation behind the decoder interface: 3D-VAE latents -> cines (cannot edit)."""

    def __init__(self, vae: VAE3D):
        self.vae = vae

    @property
    def code_shape(self) -> tuple[int, ...]:
        return tuple(self.vae.config.latent_shape)

    def decode_codes(self, latents: torch.Tensor) -> torch.Tensor:
        return decode_cines(self.vae, latents)

    def to(self, device) -> "Vae3dDecoder":
        self.vae.to(device)
        return self


def present_components(folder: Path) -> tuple[str, ...]:
    return COMPONENTS + tuple(c for c in OPTIONAL_COMPONENTS if hub.has_component(folder, c))


def _load_generator(folder: Path, name: str) -> tuple[MAR, "AnatomyMotionCodec | Vae3dDecoder"]:
    """The MAR in ``folder/name`` and the decoder of its representation, each refusing the other's mismatch."""
    representation = read_config(folder / name)["config"].get("representation", "anatomy_motion")
    needs = ("vae3d",) if representation == "vae3d" else ("frame_ae", "motion")
    missing = [c for c in needs if not hub.has_component(folder, c)]
    if missing:
        raise WeightsError(f"{folder} lacks {', '.join(missing)}, which {name}/ ({representation} representation) "
                           "decodes with; see training/reproduce_all.py")
    mar = MAR.from_pretrained(folder / name, **{c: folder / c for c in needs})  # sha256 of what it was trained with
    if needs == ("vae3d",):
        return mar, Vae3dDecoder(VAE3D.from_pretrained(str(folder / "vae3d")))
    return mar, AnatomyMotionCodec.from_pretrained(str(folder / "frame_ae"), str(folder / "motion"))
