"""Texts shown in the app (kept here so the layout code stays short)."""

from cardiosynth.ecg import SUPPORTED_FORMATS
from cardiosynth.review.service import default_db

CINE_NOTE_PHENOTYPE = (
    "Set or sample a phenotype set on the left, then press **Generate cine** below: one short-axis slice cine with "
    "these values, **made of real pixels**: a real training slice (ACDC) near these values is deformed toward them "
    "and moved through a cycle whose contraction follows the LVEF; the cine names the slice it came from. Keep "
    "the seed and change a value to see what that value does; the previous cine stays beside the new one. "
    "Without the generator weights the tab still samples, completes and scores phenotype sets."
)

CINE_NOTE_ECG = (
    "Upload an ECG or pick a bundled example: the tab reads and analyses it (R peaks, heart rate, quality, QT/RR, "
    "cardiac phase). Then press **Generate cine from this ECG** below: the bundled ECGFlowCMR model (ECG masked "
    "autoencoder) finds one heartbeat in the ECG and makes a short-axis cine of it, shown beside that beat's lead II "
    "with a cursor at each frame's time. The ECG sets the timing (end-systole at its QT / RR); the pixels are a real "
    "training slice near the phenotypes of the heart chosen under **Heart to animate** (a typical healthy heart "
    "unless you pick another), deformed and moved by its own motion (the rectified flow's ECG-drawn motion read far "
    "less real)."
)

CINE_NOTE_ECG_MISSING = (
    "**ECG\u2192cine generation arrives with the ECG\u2192cine model (its weights are not in this build).** This "
    "tab reads and analyses the ECG (R peaks, heart rate, quality, QT/RR, cardiac phase and neurokit2's typical "
    "beat). No cine is shown because no ECG\u2192cine model is bundled yet."
)

DISCLAIMER = "Synthetic research images and research software: **not for diagnosis** or any clinical decision."

DERIVED_HELP = (
    "SV and EF are derived (SV = EDV \u2212 ESV, EF = 100 \u00d7 SV / EDV) and always follow the volumes. Moving an "
    "**EDV** keeps that ventricle's EF (its ESV follows) or its ESV (its EF follows), as chosen above; a ticked "
    "lock on the EF or ESV decides. Moving an ESV or LVM slider keeps the other volumes and recomputes SV and EF. "
    "Moving an **EF** or **SV** slider keeps that ventricle's EDV and moves its ESV. A set that cannot hold is "
    "refused with what to change, and the sliders go back to the set in use. Values are rounded to 0.01. Tick "
    "**lock** on the phenotypes "
    "to keep, then **Complete the rest**: the VAE fills in the unlocked ones consistently (most likely values, "
    "or a random draw with the temperature and seed)."
)

_ABOUT_TEMPLATE = """
## What CardioSynth is

CardioSynth generates synthetic short-axis cine cardiac MRI under clinically meaningful control, a set of cardiac
phenotypes (LVEDV, LVEF, LVM, RVEDV, ...) or a 12-lead ECG, lets clinicians explore it in this app, and lets a team
check in blinded reader studies whether readers can tell it from real cines. It implements two published methods
behind one interface: **CPGG** (phenotype \u2192 cine; Li et al., MICCAI 2025) and **ECGFlowCMR** (ECG \u2192 cine;
Fang, Ding et al.).

## What this build contains

Phenotype \u2192 cine works (Phenotype explorer tab, with *Edit a real heart* below it) and ECG \u2192 cine works (ECG
tab, *Generate cine from this ECG*). **Every frame is real pixels, warped**: no frame is decoded from a latent. A
de novo cine is one real training slice of the anatomy bank (`weights/anatomy_bank`, ACDC, CC BY-NC-SA 4.0),
deformed toward the requested LVEDV, LVM and RVEDV and moved (its own motion scaled to the LVEF, or, for an ECG, the
flow's motion timed to the ECG); an edited heart is the uploaded heart's own frame with its own motion rescaled. So
a synthetic cine **shares its exemplar patient's image** (texture, surroundings, field of view): each names its
exemplar, and a re-identification network recognises that patient in nearly every rendered cine
(`reports/renderer/README.md`): treat them as derived from real patients' images, not as anonymous. The ECG \u2192
cine model is **trained on pseudo-pairs** (ACDC cines matched
to LUDB ECGs by diagnosis family and systolic timing; no public data pairs the two for one person): the ECG sets the
heartbeat's motion and its timing (end-systole follows the ECG's QT/RR, r = 0.98 on held-out ECGs), never the
anatomy, which comes from a phenotype set. The bundled models:

| bundled model | what it does here | model card |
|---|---|---|
| Phenotype VAE (CPGG stage 1) | samples consistent phenotype sets, completes partly locked sets, scores plausibility (Phenotype explorer tab) | `weights/phenotype_vae/README.md` |
| Anatomy bank (319 real training slices) | the exemplars every de novo cine is rendered from: real end-diastolic frame, masks, phenotypes and registered motion of each | `weights/anatomy_bank/README.md` |
| Re-identification network | the privacy test: how often a synthetic cine is matched to a training patient (and the optional filter) | `weights/reid/README.md` |
| 3D-VAE + MAR (CPGG stage 2, the published path) | generates cine latents from the nine phenotypes and decodes them; kept as the `paper` / `cpgg-decoded` generator, not used by the app: its decoded cines are blobs a classifier tells from real every time | `weights/vae3d/README.md`, `weights/mar/README.md` |
| Frame autoencoder + motion model (the anatomy + motion representation) | the motion model's temporal modes are the motion code the generators draw; the autoencoder only encodes the anatomy they see | `weights/frame_ae/README.md`, `weights/motion/README.md` |
| Editor MAR (the same method in the anatomy + motion space) | draws motion for a new LVEF given a heart's anatomy (`motion="mar"`); measured worse than a heart's own motion rescaled, which the app uses | `weights/mar_motion/README.md` |
| ECG MAE: phase-aware ECG masked autoencoder (ECGFlowCMR) | encodes a 12-lead ECG and predicts its cardiac phase, from which complete heartbeats are found (trained on LUDB) | `weights/ecg_mae/README.md` |
| ECG flow: rectified flow with a DiT (ECGFlowCMR) | turns one heartbeat's ECG features into the motion of a given heart (anatomy from a phenotype set); **trained on pseudo-pairs**; the end-systole is re-timed to the ECG's QT / RR (`docs/ecg-to-cine.md`) | `weights/ecg_flow/README.md` |
| Cine segmenter (2D U-Net, LV / MYO / RV) | measures the LV / RV area curves of each generated cine | `weights/segmenter/README.md` |
| Cine encoder (small 3D CNN) | feature space of the Fr\u00e9chet distance used to judge generators (not used in the app yet) | `weights/cine_encoder/README.md` |
| Phenotype estimator (ridge regressions on segmenter measurements) | reads LVEDV / LVEF back from the generated slice, to show how well the cine follows the request | `weights/phenotype_estimator/README.md` |

The **Review** tab runs blinded real-vs-synthetic reader studies (`cardiosynth.review`): real cines come from
the held-out validation or test patients only, every case is rendered the same way, answers are stored in SQLite
as they are given, and the statistics (accuracy with a binomial test, sensitivity / specificity, ROC AUC with a
bootstrap interval, Fleiss' kappa) are shown to the study's administrator only.

In the ECG tab, reading ({formats}) and processing
(neurokit2 R peaks, quality, QT, cardiac phase) are `cardiosynth.ecg`, without a learned model; the cine comes from
the ECG MAE and the ECG flow above.

## Data and licences

- **ACDC** (Automated Cardiac Diagnosis Challenge) subset: short-axis cines and phenotypes of 85 patients in five
  groups (normal, previous infarction, dilated and hypertrophic cardiomyopathy, abnormal right ventricle).
  Licensed **CC BY-NC-SA 4.0** (research, non-commercial): every bundled model above except the ECG MAE was
  trained on it and carries that licence. Cite O. Bernard et al., IEEE TMI 37(11):2514\u20132525, 2018,
  doi:10.1109/TMI.2018.2837502.
- **LUDB** ECGs (Lobachevsky University Electrocardiography Database), **ODC-By 1.0**: the ECG MAE and the ECG
  flow's pseudo-pairs were made from its records. Cite A. I. Kalyakulina
  et al., IEEE Access 8:186181\u2013186190, 2020. The other example ECGs are redistributable test files
  (CC0 / MIT); see `assets/ecg/README.md`.
- Code: Apache-2.0.

The phenotype VAE learned from 60 ACDC training patients (about 12 per diagnostic group); it does not know age,
sex or body size, and UK Biobank hearts are outside what it has seen. Its plausibility percentile compares a set
with 73 real ACDC patients (training + validation).

## Privacy and network

The app runs locally, makes no network requests at run time and sends no analytics. Uploaded ECGs are analysed
on this server; Gradio keeps uploads and generated cines in its temporary folder and the app deletes its own copies
after an hour.

## What is stored, where, and how to delete it

The **Review** tab stores its reader studies on this server, in an **SQLite** database and a folder of case files:

- in the database: each study's configuration (title, rendering settings, case list with which case is real or
  synthetic and where it came from, a hash of the admin token), each reader's **name** as typed (with a hash of
  the resume code, the reader's case order and, if an administrator removed them, when), and every **answer**
  (real / synthetic, confidence, comment) with its **timings** (when the case was shown, when it was answered,
  seconds taken);
- in the browser: a reader's resume code, or an administrator's session, in an HttpOnly cookie of this site
  (scripts cannot read it; it is sent back only to this server); nothing else;
- in the case folder: the rendered case videos of each study, and the results files an administrator exports
  (answers CSV, blinding check JSON, results plot).

{where}

**To delete it**, stop the app and delete the database file (`review.sqlite`, with any `review.sqlite-wal` /
`review.sqlite-shm` beside it) and the studies folder; that removes every study, reader name and answer. To remove
one study only, delete its folder under the studies folder after exporting what you need (its rows stay in the
database until the database file is deleted). The same cache folder also holds the prepared ACDC cines
(`prepared/`), which are made again on first use when deleted.

**Outputs are synthetic research images and research software results, not for diagnosis.**
"""

DEFAULT_WHERE = (
    "Where: the database is `$CARDIOSYNTH_REVIEW_DB`, by default `<cache>/review/review.sqlite`; the case files are "
    "under `$CARDIOSYNTH_REVIEW_DIR`, by default `<cache>/review/studies/<study code>/`; `<cache>` is "
    "`$CARDIOSYNTH_CACHE`, by default `.cache/` in the CardioSynth folder."
)


def about_markdown(review=None) -> str:
    """The About text, naming the actual database file and case folder of ``review`` (a ReviewService) when
    given, else the defaults and the variables that move them."""
    where = DEFAULT_WHERE
    if review is not None:
        db = getattr(getattr(review, "store", None), "path", None)
        where = (f"On this server: the database is `{db or default_db()}` and the case files are under "
                 f"`{review.studies_dir}` (one folder per study). " + DEFAULT_WHERE.replace("Where: the", "The"))
    return _ABOUT_TEMPLATE.replace("{where}", where).replace("{formats}", ", ".join(SUPPORTED_FORMATS))


ABOUT = about_markdown()  # with the defaults; the app shows about_markdown(its review service)
