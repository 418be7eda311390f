"""An ECG in, a cine out: the ECGFlowCMR chain (ECG MAE -> one cycle -> rectified flow on the motion code of an
anatomy -> frame autoencoder + motion model).

    pipe = EcgToCine.from_pretrained()                       # the bundled weights/, no network
    out = pipe("record.xml", seed=0)                         # any format cardiosynth.ecg reads, or an Ecg
    request = pipe.analyse("record.xml")                     # read, neurokit2 + ECG MAE, once per request:
    request.cycle                                            # the cycle a cine is made from, before any cine,
    out = pipe(request, seed=0)                              # then cines from it without reading it again
    out.cine.frames                                          # (16, 64, 64), frame 0 = the R peak (~ end-diastole)
    out.cycle                                                # the R-R cycle used: start/end in s, frame times,
                                                             # end-systole (QT / RR) and where its QT came from
    out.conditions["anatomy"]                                # the heart animated: by default a typical healthy one
    pipe("record.xml", phenotypes={"LVEDV": 180})            # the anatomy of a heart with these values
    pipe("record.xml", phenotype_seed=3)                     # ... of a random heart the phenotype VAE draws
    pipe("record.xml", heart=real_slice)                     # ... or of a real heart (pipelines.real_cine)
    pipe.run(pipe.request(request, seed=0))                  # what pipe(...) does: parsed and checked once

What the ECG controls: the heartbeat's motion (the flow draws the motion code) and its timing (the cine is
re-timed so that end-systole follows the ECG's QT / RR, cardiosynth.retime). What it does not: the anatomy. That
comes from a phenotype set (by default the typical healthy heart, :meth:`PhenotypePrior.typical_heart`; or the
``phenotypes`` given, completed by the phenotype VAE; or a set the VAE draws at temperature 1 from
``phenotype_seed``) through the phenotype -> cine generator (its ED frame, in the anatomy + motion space), or
from a real ``heart``. The bundled flow was trained on pseudo-pairs
(cardiosynth.data.pairing): no public data pairs an ECG with the same person's cine.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from cardiosynth import phenotypes as ph
from cardiosynth.cine import Cine
from cardiosynth.device import autocast, resolve_device
from cardiosynth.ecg import Ecg, EcgAnalysis, EcgError, process_ecg, read_ecg
from cardiosynth.models.ecg_flow import EcgFlow
from cardiosynth.models.ecg_mae import (
    EcgMAE,
    find_cycles,
    normalise_leads,
    resample_cycle,
    select_cycle,
)
from cardiosynth.models.frame_ae import encode_frames
from cardiosynth.phenotype_prior import SAMPLED_POPULATION, TYPICAL_HEART
from cardiosynth.pipelines import hub
from cardiosynth.pipelines.phenotype_to_cine import COMPONENTS as ANATOMY_COMPONENTS
from cardiosynth.pipelines.phenotype_to_cine import (
    DEFAULT_MOTION as DEFAULT_ANATOMY_MOTION,
)
from cardiosynth.pipelines.phenotype_to_cine import (
    OPTIONAL_COMPONENTS as OPTIONAL_ANATOMY_COMPONENTS,
)
from cardiosynth.pipelines.phenotype_to_cine import PhenotypeToCine
from cardiosynth.pipelines.rendering import real_heart_motion, strongest_motion_fraction
from cardiosynth.pipelines.requests import (
    SEED_RANGE,
    SLICE_POSITION_RANGE,
    CineRequest,
    Sampling,
    checked_number,
    checked_whole,
)
from cardiosynth.render.fields import motion_positions
from cardiosynth.retime import ES_FRACTION_RANGE, retime, systolic_fraction
from cardiosynth.weights import WEIGHTS_DIR, WeightsError, check_dependency

COMPONENTS = ("ecg_mae", "ecg_flow") + ANATOMY_COMPONENTS  # the anatomy comes from the phenotype -> cine chain
MAX_STEPS = 200  # sampling steps a request may ask for
STEPS_NAME = "Sampling steps"  # what the flow's steps are called where a bad value is refused
MOTIONS = ("exemplar", "flow")  # where a rendered cine's motion comes from (reports/renderer/README.md)
DEFAULT_MOTION = "exemplar"  # val: C2ST 0.65 / 0.77 against the flow's 0.95 / 0.92 (realism first; timing reported)
PSEUDO_PAIRED_NOTE = ("What the ECG controls: the heartbeat's timing; each cine is re-timed so that systole lasts the "
                      "ECG's QT (the dashed line), over the R-R cycle the ECG model found. What it does not: the "
                      "anatomy, and by default the shape of the motion: every frame is a real training slice's pixels "
                      "(an exemplar near the heart's phenotypes, a typical healthy heart's unless another heart is "
                      "chosen), deformed and moved by that slice's own registered motion, scaled to the heart's LVEF. "
                      "The ECG flow that draws the motion from the ECG itself (motion='flow') was trained on "
                      "pseudo-pairs (no public data pairs ECGs with the same person's cine MRI) and reads far less "
                      "real (reports/renderer/README.md); it never shows a patient's own heart.")


@dataclass
class EncodedEcg:
    """The ECG MAE's view of one ECG: token features, predicted phase and the complete cycles it found."""

    features: torch.Tensor  # (tokens, D)
    phase: np.ndarray  # (tokens,) radians, predicted
    cycles: list[tuple[float, float]]  # complete R-R cycles, in fractional tokens
    chosen: int | None  # index of the typical cycle, None when there is none
    patch: int
    fs: int

    def to_samples(self, token: float) -> float:
        """Token position (token centres) -> sample index of the 500 Hz ECG."""
        return token * self.patch + self.patch / 2

    def cycle_seconds(self, k: int) -> tuple[float, float]:
        """Start and end (s) of cycle ``k`` in the recording: R peak to the next R peak."""
        start, end = (float(self.to_samples(t)) / self.fs for t in self.cycles[k])
        return start, end

    def cycle_info(self, k: int) -> dict:
        """Cycle ``k`` for people and files: which of how many, where (s), its RR and heart rate."""
        start, end = self.cycle_seconds(k)
        return {"index": k, "start_s": round(start, 4), "end_s": round(end, 4), "rr_s": round(end - start, 4),
                "heart_rate_bpm": round(60.0 / (end - start), 1), "cycles_found": len(self.cycles)}

    def cycle_features(self, k: int, frames: int) -> torch.Tensor:
        """(frames, D) features of cycle ``k`` resampled to the cine's frames."""
        return resample_cycle(self.features, *self.cycles[k], frames)


def encode_ecg(mae: EcgMAE, ecg: Ecg) -> EncodedEcg:
    """Normalise the leads, run the MAE unmasked, and find the complete cycles in its predicted phase."""
    c = mae.config
    if ecg.signal.shape != (c.leads, c.samples) or ecg.fs != c.fs:
        raise EcgError(f"The ECG model expects {c.leads} leads x {c.samples} samples at {c.fs} Hz; this recording is "
                       f"{ecg.signal.shape[0]} x {ecg.signal.shape[1]} at {ecg.fs} Hz")
    x = normalise_leads(ecg.signal, ecg.valid_samples)[None].to(next(mae.parameters()).device)
    features, phase = mae.encode(x)
    phase = phase[0].cpu().numpy()
    cycles = find_cycles(phase, ecg.valid_samples // c.patch, c.token_seconds)
    chosen = select_cycle(cycles)
    return EncodedEcg(features[0].cpu(), phase, cycles, None if chosen is None else cycles.index(chosen), c.patch, c.fs)


#: Who chose an :class:`AnalysedEcg`'s cycle: the ECG MAE when a model read the ECG, else neurokit2.
CYCLE_DETECTORS = ("ecg_mae", "neurokit2")
NO_HEARTBEAT = ("No complete heartbeat (R peak to R peak, 0.25-2.5 s) could be found in this ECG, so there is no "
                "cycle to animate: check that the recording shows regular QRS complexes (not a flat line, noise or a "
                "paced-only strip), or try another recording.")


@dataclass(frozen=True, eq=False)
class AnalysedEcg:
    """One ECG read and analysed for one request: neurokit2's analysis (R peaks, quality, the QT that times the
    cine's end-systole) and the ECG MAE's encoding (``encoded``; None where no model read it). Made by
    :func:`analyse_ecg` / :meth:`EcgToCine.analyse` and handed to :meth:`EcgToCine.__call__` as the ECG, so a
    screen that shows the cycle and then generates reads and encodes the ECG once; the pipeline keeps nothing.

    It has one cycle, :attr:`cycle`, chosen by one detector (:attr:`cycle_detector`): the ECG MAE's typical cycle
    in its predicted phase (:func:`cardiosynth.models.ecg_mae.select_cycle`), the one a cine is generated from,
    when a model read the ECG; neurokit2's typical beat (``analysis.cycle``) otherwise."""

    ecg: Ecg
    analysis: EcgAnalysis
    encoded: EncodedEcg | None = field(default=None, repr=False)

    @property
    def cycle_detector(self) -> str:
        """Who chose :attr:`cycle`: one of :data:`CYCLE_DETECTORS`."""
        return CYCLE_DETECTORS[0] if self.encoded is not None else CYCLE_DETECTORS[1]

    @property
    def cycle(self) -> dict | None:
        """The cycle, None when the detector found no complete heartbeat. The ECG MAE's: as
        :meth:`EncodedEcg.cycle_info` (index, start_s, end_s, rr_s, heart_rate_bpm, cycles_found); neurokit2's:
        start_s, end_s, rr_s."""
        if self.encoded is not None:
            chosen = self.encoded.chosen
            return None if chosen is None else self.encoded.cycle_info(chosen)
        if self.analysis.cycle is None:
            return None
        start, end = (c / self.ecg.fs for c in self.analysis.cycle)
        return {"start_s": start, "end_s": end, "rr_s": end - start}


def analyse_ecg(ecg, mae: EcgMAE | None = None) -> AnalysedEcg:
    """Read ``ecg`` (a path, or an :class:`Ecg`) and analyse it: neurokit2 always, the ECG ``mae`` when given (its
    cycle is then the one a cine is generated from). Finding no heartbeat is not an error here (``cycle`` None)."""
    if isinstance(ecg, (str, Path)):
        ecg = read_ecg(ecg)
    if not isinstance(ecg, Ecg):
        raise EcgError(f"Expected an ECG file or a cardiosynth.ecg.Ecg, got {type(ecg).__name__}")
    encoded = None if mae is None else encode_ecg(mae, ecg)
    return AnalysedEcg(ecg, process_ecg(ecg), encoded)


@dataclass
class EcgToCineOutput:
    cine: Cine
    cycle: dict  # start_s, end_s, rr_s, heart_rate_bpm, frame_times_s (one per cine frame), cycles_found, and
    # when the flow re-times: es_fraction, es_s (end-systole after the R peak), qt_s, timing_source
    conditions: dict  # seed, steps, cfg, slice_position, model fingerprint, source ECG
    encoded: EncodedEcg = field(repr=False)


@dataclass(frozen=True, eq=False)
class EcgCineRequest:
    """One ECG -> cine call, parsed and checked once (:meth:`EcgToCine.request`) and carried down as it is: the
    analysed ECG and the ECG MAE's view of it, the cycle to animate, the sampler settings, the slice position,
    the motion, and the heart: a real ``heart`` (a prepared slice), or the full phenotype set its anatomy is
    drawn for (``anatomy``, one row) with which heart that is (``heart_info``)."""

    ecg: AnalysedEcg
    encoded: EncodedEcg
    cycle: int
    sampling: Sampling
    slice_position: float
    motion: str
    heart: Cine | None = None
    anatomy: pd.DataFrame | None = None
    heart_info: dict = field(default_factory=dict)


class EcgToCine:
    """The ECG -> cine generator. Deterministic on CPU: the same ECG, settings and seed give identical cines."""

    def __init__(self, mae: EcgMAE, flow: EcgFlow, anatomy: PhenotypeToCine, spacing_mm: float,
                 name: str = "ecg_flow", sha: str = ""):
        self.mae, self.flow, self.anatomy = mae, flow, anatomy
        self.spacing_mm, self.name, self.sha = float(spacing_mm), name, sha
        if flow.config.ecg_dim != mae.config.width:
            raise WeightsError(f"The ECG flow expects ECG features of {flow.config.ecg_dim}, the ECG MAE gives "
                               f"{mae.config.width}: these models were not trained together")
        if anatomy.codec is None:
            raise WeightsError("The ECG flow draws motion for an anatomy + motion code, but the phenotype -> cine "
                               "pipeline has no anatomy + motion representation (frame_ae/, motion/, mar_motion/)")
        if tuple(flow.config.latent_shape) != tuple(anatomy.codec.code_shape):
            raise WeightsError(f"The ECG flow draws codes {flow.config.latent_shape}, the representation packs "
                               f"{anatomy.codec.code_shape}: these models were not trained together")

    @classmethod
    def from_pretrained(cls, folder_or_hub_id: str | Path = WEIGHTS_DIR, revision: str | None = None,
                        device: str | torch.device = "auto", local_files_only: bool | None = None,
                        anatomy: PhenotypeToCine | None = None) -> "EcgToCine":
        """Load ``ecg_mae/``, ``ecg_flow/`` and the phenotype -> cine components (the anatomy) from a folder
        (default: the bundled ``weights/``) or a Hugging Face Hub repo id. sha256 checked; the flow refuses an
        ECG MAE or a representation it was not trained with. ``device``: ``auto`` (CUDA when present), ``cpu``
        or ``cuda``; bf16 autocast on CUDA. ``anatomy``: a phenotype -> cine pipeline already loaded from the
        same folder (the app shares its own instead of loading the models twice)."""
        device = resolve_device(device)
        folder = hub.resolve_folder(folder_or_hub_id, COMPONENTS, revision=revision, local_files_only=local_files_only,
                                    optional=OPTIONAL_ANATOMY_COMPONENTS)
        mae = EcgMAE.from_pretrained(str(folder / "ecg_mae"))
        flow = EcgFlow.from_pretrained(str(folder / "ecg_flow"))
        for name in ("ecg_mae", "frame_ae", "motion"):  # the flow refuses models it was not trained with
            check_dependency({"depends_on": flow.depends_on}, name, folder / name)
        anatomy = anatomy or PhenotypeToCine.from_pretrained(folder, device=device)
        components = COMPONENTS + tuple(c for c in OPTIONAL_ANATOMY_COMPONENTS if hub.has_component(folder, c))
        return cls(mae.to(device), flow.to(device), anatomy, flow.config.spacing_mm,
                   sha=hub.folder_fingerprint(folder, components))

    def push_to_hub(self, repo_id: str, folder: str | Path = WEIGHTS_DIR, private: bool = True, token: str | None = None,
                    commit_message: str = "Upload CardioSynth ECG-to-cine weights") -> str:
        components = COMPONENTS + tuple(c for c in OPTIONAL_ANATOMY_COMPONENTS if hub.has_component(Path(folder), c))
        return hub.push_folder(repo_id, folder, components, private=private, token=token, commit_message=commit_message)

    @property
    def frames(self) -> int:
        return self.flow.config.ecg_frames

    @torch.no_grad()
    def analyse(self, ecg) -> AnalysedEcg:
        """Read and analyse ``ecg`` (a path or an :class:`Ecg`) with this pipeline's ECG MAE: its ``cycle`` is
        the one a cine is generated from by default, known before any cine exists (None: no complete
        heartbeat). Pass the result to :meth:`__call__` to generate from it without reading it again."""
        return analyse_ecg(ecg, self.mae)

    def anatomy_codes(self, request: EcgCineRequest) -> tuple[torch.Tensor, dict]:
        """Packed codes (1, C, 1, g, g) whose anatomy channels the flow keeps, and where the anatomy came from (the
        published path, where frames are decoded)."""
        heart, anatomy = request.heart, self.anatomy
        if heart is not None:
            return anatomy.codec.encode_anatomy_codes(torch.from_numpy(heart.frames[None])), {"source": heart.source}
        drawn = CineRequest(request.anatomy, 1, replace(anatomy.default_sampling, seed=request.sampling.seed),
                            DEFAULT_ANATOMY_MOTION)
        heart_info = dict(request.heart_info)
        if anatomy.editor is anatomy:  # its MAR draws packed codes: take their anatomy channels
            codes, _ = anatomy.draw_request_codes(drawn)
        else:  # a cine from the de novo generator, its ED frame encoded into the anatomy + motion space
            result = anatomy.run(drawn)
            codes = anatomy.codec.encode_anatomy_codes(torch.from_numpy(result.cines[0].frames[None]))
            heart_info = {**{k: v for k, v in heart_info.items() if k not in ph.NAMES},
                          "anatomy": "the ED frame the phenotype \u2192 cine generator made for them",
                          **{k: v for k, v in heart_info.items() if k in ph.NAMES}}  # the order it always had
        return codes, heart_info

    def _render(self, request: EcgCineRequest, features: torch.Tensor, cycle_info: dict,
                timing: dict) -> EcgToCineOutput:
        """The default path: real pixels (an exemplar deformed, or the real heart) moved for this heartbeat."""
        rendering, codec, c = self.anatomy.rendering, self.anatomy.codec, self.flow.config
        ecg, encoded, heart, motion = request.ecg.ecg, request.encoded, request.heart, request.motion
        seed, steps, cfg, slice_position = (request.sampling.seed, request.sampling.steps, request.sampling.cfg,
                                            request.slice_position)
        generator = torch.Generator().manual_seed(seed)
        if heart is not None:
            slice_position, ed, valid = heart.slice_position, heart.frames[0], heart.valid
            anatomy_source, hearts = {"source": heart.source}, None
        else:
            conditions, anatomy_source = request.anatomy, dict(request.heart_info)
            hearts, ed = rendering.hearts(conditions, seed), None  # the ED frame: only the flow needs it
            anatomy_source["exemplar"] = rendering.bank.exemplar_id(hearts[0].exemplar)
        if motion == "flow":
            ed = rendering.ed_frames(hearts)[0] if ed is None else ed
            known = codec.pack(encode_frames(codec.frame_ae, torch.from_numpy(ed[None])),
                               torch.zeros(1, *codec.motion.config.code_shape))
            with autocast(self.flow.template.device):
                codes = self.flow.sample(features, torch.tensor([float(slice_position)]), int(steps), float(cfg),
                                         generator, known=known).float()
            control = codec.motion.control(codec.unpack(codes.cpu())[1])[0].double()
            from_fraction, motion_in = c.canonical_es_fraction, "new"
        elif heart is not None:
            control = real_heart_motion(heart, codec.motion)
            from_fraction, motion_in = strongest_motion_fraction(control), "new"
        else:
            control, _ = rendering.exemplar_motion(hearts[0], float(conditions["LVEF"].iloc[0]))
            # the exemplar's expert end-systole (measured on val: where its motion makes the LV smallest, read
            # worse: r -0.44 against 0.50; on a weakly contracting heart that minimum is noise)
            es_frame = int(rendering.bank.es_frame[hearts[0].exemplar])
            from_fraction = float(np.clip(es_frame / self.frames, *ES_FRACTION_RANGE))
            motion_in = "exemplar"
        if from_fraction is not None:
            control = retime(control, timing["fraction"], from_fraction)
            rr = cycle_info["rr_s"]
            cycle_info.update(es_fraction=round(timing["fraction"], 4), es_s=round(timing["fraction"] * rr, 4),
                              qt_s=timing["qt_s"], timing_source=timing["source"])
        source = f"synthetic:{self.name}@{self.sha[:12]}"
        metadata = {"seed": int(seed), "motion": motion, **cycle_info, **_heart_metadata(anatomy_source)}
        if hearts is not None:
            cine = rendering.render(hearts[0], control, motion_in, self.spacing_mm, slice_position, source, metadata)
        else:
            positions = motion_positions(control, codec.motion.config.size)
            frames = rendering.renderer.render(ed, valid, positions, generator)
            cine = Cine(frames, (self.spacing_mm, self.spacing_mm), float(slice_position), valid.copy(),
                        source=f"{source}; heart {heart.source}", metadata={**metadata, "heart": heart.source})
        note = ("trained on pseudo-pairs; the ECG sets the timing" + (" and the motion" if motion == "flow" else
                "; the motion is the exemplar's own") + "; the pixels are a real exemplar's")
        conditions = self._conditions(ecg, seed, steps, cfg, slice_position, anatomy_source, note)
        return EcgToCineOutput(cine, cycle_info, {**conditions, "motion": motion}, encoded)

    def _conditions(self, ecg: Ecg, seed: int, steps: int, cfg: float, slice_position: float, anatomy_source: dict,
                    note: str) -> dict:
        """What made a cine (settings, model, source ECG, anatomy): its JSON and the app's settings line."""
        return {"seed": int(seed), "steps": int(steps), "sampler": self.flow.config.sampler.method, "cfg": float(cfg),
                "slice_position": float(slice_position), "model": f"{self.name}@{self.sha[:12]}",
                "ecg_format": ecg.source_format, "anatomy": anatomy_source, "note": note}

    def _requested_set(self, phenotypes: dict | None, phenotype_seed: int | None) -> tuple[dict, dict]:
        """The phenotypes the anatomy follows and which heart that is: ``{"choice": "requested" | "random" |
        "typical", "source": the words for it}``. The given ones (completed later by the phenotype VAE), else a
        phenotype VAE draw at temperature 1 from ``phenotype_seed``, else the typical healthy heart."""
        if phenotypes is not None:
            return phenotypes, {"choice": "requested", "source": "the heart with the phenotypes asked for, the rest "
                                                                "completed by the phenotype model"}
        prior = self.anatomy.phenotype_prior
        if phenotype_seed is not None:
            phenotype_seed = checked_whole(phenotype_seed, "The heart seed", *SEED_RANGE)
            sampled = prior.sample(1, temperature=1.0, seed=int(phenotype_seed)).iloc[0].to_dict()
            return ({n: float(sampled[n]) for n in ph.INDEPENDENT},
                    {"choice": "random", "phenotype_seed": int(phenotype_seed),
                     "source": f"a random heart drawn from the phenotype model (temperature 1, heart seed "
                               f"{int(phenotype_seed)}), like {SAMPLED_POPULATION}"})
        typical = prior.typical_heart()
        return {n: float(typical[n]) for n in ph.INDEPENDENT}, {"choice": "typical", "source": TYPICAL_HEART}

    def anatomy_set(self, phenotypes: dict | None = None, phenotype_seed: int | None = None,
                    slice_position: float = 0.5) -> tuple[pd.DataFrame, dict]:
        """The full phenotype set the anatomy is drawn for, as a one-row table, and which heart it is (see
        :meth:`_requested_set`; its values rounded to 0.01): what a cine would animate, without generating."""
        phenotypes, heart_info = self._requested_set(phenotypes, phenotype_seed)
        conditions = self.anatomy.resolve_conditions(phenotypes, slice_position)
        row = conditions.iloc[0]
        return conditions, {**heart_info, **{n: round(float(row[n]), 2) for n in ph.NAMES}}

    @property
    def default_sampling(self) -> Sampling:
        """The flow's own sampler settings (seed 0): what a call uses for the settings it does not give."""
        s = self.flow.config.sampler
        return Sampling(0, s.sampling_steps, s.cfg)

    def request(self, ecg, seed: int = 0, steps: int | None = None, cfg: float | None = None,
                slice_position: float = 0.5, cycle: int | None = None, phenotypes: dict | None = None,
                heart: Cine | None = None, motion: str = DEFAULT_MOTION,
                phenotype_seed: int | None = None) -> EcgCineRequest:
        """A call parsed and checked once (the arguments of :meth:`__call__`), what :meth:`run` takes: the settings,
        the ECG (read and analysed here unless it is an :class:`AnalysedEcg` already), its cycle and the heart.
        Every bad value is one readable error here, and nothing after it checks again."""
        sampling = Sampling.parse(seed, steps, cfg, defaults=self.default_sampling, max_steps=MAX_STEPS,
                                  steps_name=STEPS_NAME)
        slice_position = checked_number(slice_position, "Slice position", *SLICE_POSITION_RANGE)
        if self.anatomy.rendering is not None and motion not in MOTIONS:
            raise ValueError(f"motion must be one of {', '.join(MOTIONS)}; got {motion!r}")
        if heart is not None and (not isinstance(heart, Cine) or heart.shape != self.anatomy.codec.cine_shape):
            raise ValueError(f"heart must be a prepared {self.anatomy.codec.cine_shape} Cine "
                             "(cardiosynth.pipelines.real_cine)")
        analysed = ecg if isinstance(ecg, AnalysedEcg) else self.analyse(ecg)
        encoded = analysed.encoded
        if encoded is None:  # analysed without a model (neurokit2 only): the flow needs the MAE's view
            encoded = encode_ecg(self.mae, analysed.ecg)
        if encoded.chosen is None:
            raise EcgError(NO_HEARTBEAT)
        k = encoded.chosen if cycle is None else checked_whole(cycle, "cycle", 0, len(encoded.cycles) - 1)
        anatomy, heart_info = (None, {}) if heart is not None else self.anatomy_set(phenotypes, phenotype_seed,
                                                                                   slice_position)
        return EcgCineRequest(analysed, encoded, k, sampling, slice_position, motion, heart, anatomy, heart_info)

    @torch.no_grad()
    def __call__(self, ecg, seed: int = 0, steps: int | None = None, cfg: float | None = None,
                 slice_position: float = 0.5, cycle: int | None = None,
                 phenotypes: dict | None = None, heart: Cine | None = None,
                 motion: str = DEFAULT_MOTION, phenotype_seed: int | None = None) -> EcgToCineOutput:
        """One cine for ``ecg`` (a path, an :class:`Ecg`, or the :class:`AnalysedEcg` :meth:`analyse` made of
        it: then it is not read nor analysed again). ``cycle`` picks one of the complete cycles the ECG MAE found
        (default: the typical one, ``analyse(ecg).cycle``); ``steps`` sampling steps (the flow's sampler) and
        ``cfg`` guidance default to the flow's config. The QT that times end-systole is neurokit2's. The
        anatomy: a real ``heart`` (a prepared slice, whose slice position is then used), else the MAR's for
        ``phenotypes`` (completed by the phenotype VAE), else for a set the phenotype VAE draws at temperature 1
        from ``phenotype_seed`` (a random heart), else for the typical healthy heart
        (:meth:`PhenotypePrior.typical_heart`, the phenotype explorer's start). The ECG does not choose the heart.
        ``conditions["anatomy"]`` and the cine's metadata say which heart it is.

        With an anatomy bank (the default) the frames are rendered from real pixels: the heart is an exemplar of
        the bank deformed toward the set (or the real ``heart``'s own ED frame), and its motion is the exemplar's
        own registered motion scaled to the set's LVEF (``motion="exemplar"``, the default; a real heart's own
        registration) or is drawn by the flow for that anatomy from the beat's ECG features (``motion="flow"``);
        either is re-timed so end-systole falls at the ECG's QT / RR. The same as ``run(request(...))``."""
        return self.run(self.request(ecg, seed, steps, cfg, slice_position, cycle, phenotypes, heart, motion,
                                     phenotype_seed))

    @torch.no_grad()
    def run(self, request: EcgCineRequest) -> EcgToCineOutput:
        """The cine of a request :meth:`request` parsed and checked."""
        c = self.flow.config
        ecg, analysis, encoded, k = request.ecg.ecg, request.ecg.analysis, request.encoded, request.cycle
        features = encoded.cycle_features(k, self.frames)[None]
        start, end = encoded.cycle_seconds(k)
        cycle_info = {**encoded.cycle_info(k),
                      "frame_times_s": [round(start + (end - start) * f / self.frames, 4) for f in range(self.frames)]}
        device_qt_ms = ecg.metadata.get("device_qt_ms")
        timing = systolic_fraction(analysis.qt_s, end - start, analysis.qt_doubts,
                                   None if device_qt_ms is None else device_qt_ms / 1000)
        if self.anatomy.rendering is not None:
            return self._render(request, features, cycle_info, timing)
        seed, steps, cfg = request.sampling.seed, request.sampling.steps, request.sampling.cfg
        known, anatomy_source = self.anatomy_codes(request)
        slice_position = request.slice_position if request.heart is None else request.heart.slice_position
        generator = torch.Generator().manual_seed(seed)
        with autocast(self.flow.template.device):
            codes = self.flow.sample(features, torch.tensor([float(slice_position)]), int(steps), float(cfg),
                                     generator, known=known).float()
        frames = self.anatomy.codec.decode_codes(codes.cpu())[0]
        if c.canonical_es_fraction is not None:  # the flow's cines end systole at one fraction: move it to the ECG's
            frames = retime(frames, timing["fraction"], c.canonical_es_fraction)
            cycle_info.update(es_fraction=round(timing["fraction"], 4), es_s=round(timing["fraction"] * (end - start), 4),
                              qt_s=timing["qt_s"], timing_source=timing["source"])
        frames = frames.numpy()
        conditions = self._conditions(ecg, seed, steps, cfg, slice_position, anatomy_source,
                                      "trained on pseudo-pairs; the ECG sets motion and timing, not the anatomy")
        cine = Cine(frames, (self.spacing_mm, self.spacing_mm), float(slice_position),
                    source=f"synthetic:{self.name}@{self.sha[:12]}",
                    metadata={"seed": int(seed), **cycle_info, **_heart_metadata(anatomy_source)})
        return EcgToCineOutput(cine, cycle_info, conditions, encoded)


def _heart_metadata(anatomy_source: dict) -> dict:
    """What a cine's metadata says about the heart it animates: which one, in words, and its phenotypes."""
    if "choice" not in anatomy_source:  # a real heart: its cine's metadata names it
        return {}
    return {"heart": anatomy_source["source"],
            "phenotypes": {n: anatomy_source[n] for n in ph.NAMES if n in anatomy_source}}
