"""The "Review" tab and the study administration page: blinded real-vs-synthetic reader studies (wiring
only; the logic is cardiosynth.review).

Readers join with a study code and their name, then see one looping case at a time and answer real /
synthetic with a confidence; their resume code brings them back where they stopped. Readers never see the
truth or anyone else's answers, and their page has nothing of the administration: the Review tab is only the
join / answer flow.

The administrator works on a page of its own, ``/review-admin`` (:data:`ADMIN_PATH`, a Gradio route that no
page links to; the navbar Gradio adds to multipage apps is hidden on both pages, so readers get no link to
it). There the administrator creates a study (code + admin token, shown once) and, with the token, sees the
statistics, the plot, the blinding check and the answers as CSV. The page is reachable by anyone who knows
the address, so it is not what protects anything: the server's administrator password is
(``$CARDIOSYNTH_REVIEW_ADMIN``, checked server-side on every call, with failures rate-limited). Without that
password set, the page only says that administration is off and how to use the command line instead.

Endpoints (``gradio_client``; one client = one reader session): ``/review_join`` (code, name, resume code;
returns the video, progress, message, resume code and the page's reader key), ``/review_answer`` (answer,
confidence, comment, reader key), ``/review_create`` (..., administrator password), ``/review_results`` (code,
admin token, administrator password). The two administrative endpoints exist whether administration is on or
off, so a script gets the service's clear "switched off" message rather than "no such endpoint".

Security: nothing secret lives in the server-side session state, which anyone who learns the session hash
(it travels in query strings, so it lands in proxy logs) could drive. The reader's resume code is held by
the reader's own page, in a hidden field, and sent with every answer, where the service checks it. The
administrator password is asked for on every administrative call and cleared from the page after it.
"""

from __future__ import annotations

import html
import json

import gradio as gr

from cardiosynth.review import ReviewError, ReviewService
from cardiosynth.review.service import whole_number
from cardiosynth.review.render import RenderSettings

from .errors import error_box, user_message

#: The administration page's address under the app's root (not linked from any page: see the module docstring).
ADMIN_PATH = "/review-admin"
ADMIN_PAGE_NAME = "Study administration"

GENERATORS = {"CardioSynth phenotype\u2192cine (cpgg)": "cpgg", "Group-mean cine (a trivial baseline)": "group-mean"}

READER_HELP = (
    "**Reader study.** Enter the study code you were given and your name, then press **Join**. Each case is a "
    "short-axis cine that loops; say whether you think it is a **real** MRI or a **synthetic** one and how sure "
    "you are, then **Submit**. Answers are final and saved at once. Keep your **resume code** to come back later "
    "where you stopped. You will not see the truth or anyone else's answers. The study code comes from the "
    "study's organiser, who also has the results; there is nothing else to set up here."
)

ADMIN_INTRO = (
    "Create a blinded reader study, then follow its results. Readers take part in the app's **Review** tab with "
    "the study code; they see nothing of this page. Every action here needs the server's administrator password "
    "(`CARDIOSYNTH_REVIEW_ADMIN`), asked for each time and cleared from the page afterwards."
)

ADMIN_OFF = (
    "Administration is **off** on this server: no administrator password is set (`CARDIOSYNTH_REVIEW_ADMIN`). "
    "Create studies on the server with the command line, which prints the study code for the readers and the "
    "admin token for the results:\n\n"
    "```bash\n"
    "python -m cardiosynth.review create --real 20 --synthetic 20 --generator cpgg --split val\n"
    "python -m cardiosynth.review results --study CODE --token TOKEN --plot results.png\n"
    "```\n\n"
    "To use this page instead, restart the app with `CARDIOSYNTH_REVIEW_ADMIN` set to a passphrase of at least 12 "
    "characters."
)


def _progress_html(answered: int, total: int, text: str) -> str:
    share = 100.0 * answered / total if total else 0.0
    return (f'<div id="review-progress" data-answered="{answered}" data-total="{total}">'
            f'<div style="background:#e0e0e0;border-radius:4px;height:10px">'
            f'<div style="background:#1565c0;width:{share:.1f}%;height:10px;border-radius:4px"></div></div>'
            f'<p>{html.escape(text)}</p></div>')


def _client(request: gr.Request | None) -> str | None:
    """The caller's address, for counting failed attempts (None when Gradio gives no request)."""
    return getattr(getattr(request, "client", None), "host", None)


def _number(value, what: str, low: float, high: float) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if not low <= number <= high:  # NaN fails too
        raise ReviewError(f"{what} must be a number from {low:g} to {high:g}; got {value!r}.")
    return number


def add_review_tab(service: ReviewService) -> None:
    with gr.Tab("Review", id="review"):
        gr.Markdown(READER_HELP, elem_classes=["cs-note"])
        with gr.Row(equal_height=True):
            code = gr.Textbox(label="Study code", elem_id="review-code", max_lines=1)
            name = gr.Textbox(label="Your name", elem_id="review-name", max_lines=1)
            resume = gr.Textbox(label="Resume code (only when coming back)", elem_id="review-resume", max_lines=1)
            join_btn = gr.Button("Join", variant="primary", elem_id="review-join")
        progress = gr.HTML("", elem_id="review-status")
        message = gr.Markdown("", elem_id="review-message")
        with gr.Row():
            video = gr.Image(None, type="filepath", label="Case (loops)", interactive=False, height=360,
                             elem_id="review-video", buttons=[])
            with gr.Column():
                answer = gr.Radio(["real", "synthetic"], value=None, label="This cine is", elem_id="review-answer")
                confidence = gr.Slider(1, 5, value=3, step=1, label="Confidence",
                                       info="1 = a guess ... 5 = certain", elem_id="review-confidence")
                comment = gr.Textbox(label="Comment (optional)", lines=2, max_lines=4, elem_id="review-comment")
                submit = gr.Button("Submit and next", variant="primary", elem_id="review-submit")
        # the reader's resume code, held by this page only (see the module docstring)
        reader_key = gr.Textbox("", visible=False, elem_id="review-reader-key")
        case_id = gr.State(None)

        def show(reader_token, done_text: str):
            """The outputs for the reader's current case (or the end of the study)."""
            session = service.resume(reader_token)
            case = service.current_case(reader_token)
            if case is None:
                return [None, _progress_html(session.answered, session.total, done_text), None]
            return [str(case.path), _progress_html(session.answered, session.total,
                                                   f"Case {case.position} of {case.total}"), case.case_id]

        def join(study_code, reader_name, resume_code, request: gr.Request):
            try:
                session = service.join(study_code, reader_name, (resume_code or "").strip() or None,
                                       client=_client(request))
                shown_video, shown_progress, shown_case = show(session.token, "You have answered every case. Thank you!")
                note = (f"Welcome, {html.escape(session.name)}. Your resume code is **{session.token}**: "
                        "keep it to come back later.")
                return [shown_video, shown_progress, note, session.token, shown_case, session.token]
            except Exception as err:  # noqa: BLE001 - every error becomes a message
                return [gr.skip(), gr.skip(), error_box(user_message(err, "joining the study")), gr.skip(), gr.skip(),
                        gr.skip()]

        def submit_answer(shown_case, label, sure, remark, reader_token, request: gr.Request):
            try:
                if not reader_token or shown_case is None:
                    raise ReviewError("Join a study first (study code and your name, then Join).")
                if label not in ("real", "synthetic"):
                    raise ReviewError("Choose real or synthetic before submitting.")
                service.answer(reader_token, shown_case, label, sure, remark or "", client=_client(request))
                shown_video, shown_progress, next_case = show(reader_token, "You have answered every case. Thank you!")
                return [shown_video, shown_progress, "", next_case, None, 3, ""]
            except Exception as err:  # noqa: BLE001
                return [gr.skip()] * 2 + [error_box(user_message(err, "saving the answer"))] + [gr.skip()] * 4

        join_btn.click(join, inputs=[code, name, resume], outputs=[video, progress, message, reader_key, case_id, resume],
                       api_name="review_join")
        submit.click(submit_answer, inputs=[case_id, answer, confidence, comment, reader_key],
                     outputs=[video, progress, message, case_id, answer, confidence, comment], api_name="review_answer",
                     trigger_mode="once")


def _hidden_navbar() -> None:
    """Gradio puts a navbar on every page of a multipage app (a "Home" link even when the other page is left
    out of it); one hidden Navbar per page removes it. ``visible="hidden"``, not False: a Navbar that is not
    visible is never mounted in the browser, so it cannot hide the bar (gradio-app/gradio#12532, Gradio 6)."""
    gr.Navbar(visible="hidden")


def add_review_admin_page(demo: gr.Blocks, service: ReviewService) -> None:
    """The administration page at :data:`ADMIN_PATH`, a route of ``demo`` (call it once, after ``demo``'s own
    ``with`` block: Gradio adds routes outside it), and no navbar on either page, so nothing on the readers'
    page leads to it. Off (no administrator password on the server), the page only says so and names the
    command line; the forms are then built hidden, never shown, so that the two endpoints still answer
    scripts with the service's refusal."""
    with demo:  # still the main page (Gradio's current page until a route is added): its navbar goes
        _hidden_navbar()
    with demo.route(ADMIN_PAGE_NAME, ADMIN_PATH, show_in_navbar=False):
        _hidden_navbar()  # no link back to the readers' page either: an administrator knows the address
        intro = ADMIN_INTRO if service.administration_enabled else ""  # it describes the forms
        gr.Markdown(f"# CardioSynth: {ADMIN_PAGE_NAME.lower()}\n{intro}", elem_id="review-admin-intro")
        if not service.administration_enabled:
            gr.Markdown(ADMIN_OFF, elem_classes=["cs-note"], elem_id="review-admin-off")
        with gr.Column(visible=service.administration_enabled, elem_id="review-admin"):
            _admin_forms(service)


def _admin_forms(service: ReviewService) -> None:
    """Create a study; show a study's results (the password field serves both and is cleared after each)."""
    admin_password = gr.Textbox(label="Administrator password", type="password", max_lines=1,
                                elem_id="review-admin-password", info="for both actions below; cleared after each")
    gr.Markdown("## Create a study\nN real cines from a held-out split (never training cines) and N synthetic "
                "ones, all rendered by one path (uncompressed looping GIFs: files identical byte for byte outside "
                "the pixels; no metadata; random names). The admin token is shown **once**: with the administrator "
                "password it is the key to the results.")
    with gr.Row():
        n_real = gr.Slider(2, 60, value=10, step=1, label="Real cines")
        n_synthetic = gr.Slider(2, 60, value=10, step=1, label="Synthetic cines")
        generator = gr.Dropdown(list(GENERATORS), value=list(GENERATORS)[0], label="Generator")
    with gr.Row():
        split = gr.Radio(["val", "test"], value="val", label="Real cines from split")
        conditions = gr.Radio(["vae", "matched"], value="matched", label="Synthetic phenotypes",
                              info="matched = the real cases' own phenotypes and slice positions; "
                                   "vae = sampled from the phenotype VAE")
        cycle_seconds = gr.Slider(0.5, 3.0, value=1.0, step=0.1, label="Seconds per heartbeat")
        cycles = gr.Slider(1, 6, value=1, step=1, label="Heartbeats stored per case",
                           info="each case loops anyway; more beats = larger files")
    title = gr.Textbox(label="Title (optional)", max_lines=1)
    create_btn = gr.Button("Create study", elem_id="review-create")
    created = gr.Markdown("", elem_id="review-created")
    gr.Markdown("## Results\nThe study code and its admin token (from Create study or the command line).")
    with gr.Row():
        admin_code = gr.Textbox(label="Study code", max_lines=1, elem_id="review-admin-code")
        admin_token = gr.Textbox(label="Admin token", type="password", max_lines=1, elem_id="review-admin-token")
        results_btn = gr.Button("Show results", elem_id="review-results-btn")
    results_message = gr.Markdown("", elem_id="review-results-message")
    summary = gr.Markdown("", elem_id="review-summary")
    with gr.Row():
        plot = gr.Image(None, type="filepath", label="Results", interactive=False)
        export = gr.File(None, label="All answers (CSV) and blinding check (JSON)", file_count="multiple",
                         interactive=False)
    with gr.Accordion("Full results (JSON)", open=False):
        details = gr.JSON(None)

    def create(real, synthetic, generator_label, split_name, how, seconds, beats, study_title, password,
               request: gr.Request, progress_bar=gr.Progress()):
        try:
            service.check_admin_password(password, _client(request))
            real = whole_number(real, "real cines", 2, 60)
            synthetic = whole_number(synthetic, "synthetic cines", 2, 60)
            beats = whole_number(beats, "heartbeats per case", 1, 6)
            seconds = _number(seconds, "Seconds per heartbeat", 0.5, 3.0)
            if generator_label not in GENERATORS or split_name not in ("val", "test") or how not in ("vae", "matched"):
                raise ReviewError("Choose the generator, the split and the phenotypes from the lists.")
            prepared = []

            def preparing(text: str) -> None:  # first use: the ACDC cines are prepared before the study
                prepared.append(text)
                progress_bar(0.02, desc=text)

            progress_bar(0.05, desc="Generating and rendering the cases")
            settings = RenderSettings(cycles=int(beats), cycle_seconds=float(seconds))
            study = service.create_study(GENERATORS[generator_label], int(real), int(synthetic), split_name, how,
                                         settings=settings, title=study_title or "", notify=preparing)
            return ((f"The ACDC cines were prepared on first use (once): {html.escape(prepared[0])}. "
                     if prepared else "")
                    + f"Study created: code **{study.display_code}** for the readers; admin token "
                    f"**{study.admin_token}** (copy it now: it is not shown again). "
                    f"{study.n_real} real + {study.n_synthetic} synthetic cases."), ""
        except Exception as err:  # noqa: BLE001
            return error_box(user_message(err, "creating the study")), ""

    def results(study_code, secret, password, request: gr.Request):
        try:
            service.check_admin_password(password, _client(request))
            report = service.results(study_code, secret, client=_client(request))
            blinding = service.blinding_report(study_code, secret)
            answers = service.export_csv(study_code, secret)
            blinding_file = answers.with_name(answers.stem.replace("_answers", "") + "_blinding.json")
            blinding_file.write_text(json.dumps(blinding, indent=2))
            blinding_file.chmod(0o600)
            plot_file = service.results_plot(study_code, secret)
            return ["", _summary_markdown(report, blinding), str(plot_file), [str(answers), str(blinding_file)],
                    report, "", ""]
        except Exception as err:  # noqa: BLE001
            return [error_box(user_message(err, "showing the results")), "", None, None, None, "", ""]

    create_btn.click(create, inputs=[n_real, n_synthetic, generator, split, conditions, cycle_seconds, cycles, title,
                                     admin_password],
                     outputs=[created, admin_password], api_name="review_create", concurrency_limit=1)
    results_btn.click(results, inputs=[admin_code, admin_token, admin_password],
                      outputs=[results_message, summary, plot, export, details, admin_token, admin_password],
                      api_name="review_results")


def _fmt(value, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _summary_markdown(report: dict, blinding: dict) -> str:
    pooled = report.get("pooled") or {}
    if not pooled:
        return f"Study {report['study']}: no answers yet."
    accuracy, auc = pooled["accuracy"], pooled["auc"]
    kappa = (report.get("agreement") or {}).get("fleiss_kappa")
    lines = [
        f"**Study {report['study']}**: {report['n_real']} real + {report['n_synthetic']} synthetic cases, "
        f"{report['n_readers']} readers ({report['n_readers_finished']} finished), {report['n_answers']} answers.",
        "",
        "| | value | 95 % CI |",
        "|---|---:|---|",
        f"| pooled accuracy | {_fmt(accuracy['value'])} | {_fmt((accuracy.get('ci95_bootstrap') or [None])[0])}"
        f"-{_fmt((accuracy.get('ci95_bootstrap') or [None, None])[1])} (bootstrap over readers and cases) |",
        f"| binomial test vs 0.5 | p = {_fmt(accuracy.get('p_value'), 4)} | exact: {_fmt(accuracy['ci95'][0])}-"
        f"{_fmt(accuracy['ci95'][1])} (answers taken as independent) |",
        f"| sensitivity for synthetic | {_fmt(pooled['sensitivity']['value'])} | |",
        f"| specificity | {_fmt(pooled['specificity']['value'])} | |",
        f"| ROC AUC (confidence ratings) | {_fmt(auc['value'])} | {_fmt(auc['ci95'][0])}-{_fmt(auc['ci95'][1])} |",
        f"| Fleiss' kappa | {_fmt(kappa)} | |",
        "",
        "Accuracy near 0.5 and AUC near 0.5 mean the readers could not tell real from synthetic. "
        f"Blinding check of the files: **{'passed' if blinding.get('blinded') else 'FAILED'}**"
        + (f" ({'; '.join(blinding.get('warnings', []))})" if blinding.get("warnings") else "") + ".",
    ]
    return "\n".join(lines)
