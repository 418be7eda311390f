"""The "Review" tab and the study administration page: blinded real-vs-synthetic reader studies (wiring
only; the logic is cardiosynth.review, the routes that carry secrets are review_routes.py).

Readers join with a study code and their name, then see one looping case at a time and answer real /
synthetic with a confidence; their resume code brings them back where they stopped. Readers never see the
truth or anyone else's answers, and their page has nothing of the administration: the Review tab is only the
join / answer flow.

The administrator works on a page of its own, ``/review-admin`` (:data:`ADMIN_PATH`, a Gradio route that no
page links to; the navbar Gradio adds to multipage apps is hidden on both pages). There the administrator
signs in with the server's administrator password (``$CARDIOSYNTH_REVIEW_ADMIN``), creates a study (code +
admin token, shown once) and, with the token, sees the statistics, the plot, the blinding check and the
answers as CSV, and can remove a reader. Without the password set, the page only says that administration is
off and how to use the command line instead.

**Where secrets travel.** Gradio hands an event's outputs to anyone who polls its queue with the page's
session hash, so no secret is ever an output or an input of a Gradio event here. Joining, signing in,
collecting a new study's code and token, the results and their files go through :mod:`.review_routes` by
the page's own JavaScript (``js=`` events that never reach Gradio's queue), which answer only to the caller
and set HttpOnly, SameSite=Strict cookies. The Gradio events that remain (``/review_case``, ``/review_answer``,
``/review_create``) read the reader's or the administrator's cookie server-side and output nothing secret:
the case is an ``<img>`` whose address serves only the reader's cookie.
"""

from __future__ import annotations

import html

import gradio as gr

from cardiosynth.review import ReviewError, ReviewService
from cardiosynth.review.access import token_hash
from cardiosynth.review.render import RenderSettings
from cardiosynth.review.service import whole_number

from .errors import error_box, user_message
from .review_routes import ADMIN_COOKIE, READER_COOKIE, ROUTE_PREFIX, client_address, cookie
from .widgets import slider

#: The administration page's address under the app's root (not linked from any page: see the module docstring).
ADMIN_PATH = "/review-admin"
ADMIN_PAGE_NAME = "Study administration"

GENERATORS = {"CardioSynth phenotype\u2192cine (cpgg)": "cpgg", "Group-mean cine (a trivial baseline)": "group-mean"}
DONE = "You have answered every case. Thank you!"

READER_HELP = (
    "**Reader study.** Enter the study code you were given and your name, then press **Join**. Each case is a "
    "short-axis cine that loops; say whether you think it is a **real** MRI or a **synthetic** one and how sure "
    "you are, then **Submit**. Answers are final and saved at once. Keep your **resume code** to come back later "
    "where you stopped. You will not see the truth or anyone else's answers. The study code comes from the "
    "study's organiser, who also has the results; there is nothing else to set up here."
)

ADMIN_INTRO = (
    "Sign in with the server's administrator password (`CARDIOSYNTH_REVIEW_ADMIN`), then create a blinded reader "
    "study or follow its results. Readers take part in the app's **Review** tab with the study code; they see "
    "nothing of this page. The sign-in lasts until you sign out or close the browser."
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

# The page's side of review_routes.py: every js= function below starts with these helpers. ``base`` is the
# app's root whichever page runs it (the main page or /review-admin, under any root path).
_JS_HELPERS = """
  const base = window.location.pathname.replace(/\\/?review-admin\\/?$/, '').replace(/\\/$/, '');
  const esc = (t) => String(t ?? '').replace(/[&<>"']/g,
      (c) => ({'&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;'}[c]));
  const box = (t) => `<div class="cs-error" role="alert"><b>Cannot do this:</b> ${esc(t)}</div>`;
  const call = async (path, body) => {
    try {
      const response = await fetch(base + '%s' + path, {method: body === undefined ? 'GET' : 'POST',
          credentials: 'same-origin', headers: {'Content-Type': 'application/json'},
          body: body === undefined ? undefined : JSON.stringify(body)});
      const answer = await response.json();
      return response.ok ? answer : {error: answer.error || 'The server refused the request.'};
    } catch (e) {
      return {error: 'The server could not be reached; check the connection and try again.'};
    }
  };
""" % ROUTE_PREFIX


def _js(arguments: str, body: str) -> str:
    """A ``js=`` event function: the helpers, then ``body`` (which returns the outputs)."""
    return f"async ({arguments}) => {{{_JS_HELPERS}{body}}}"


JOIN_JS = _js("code, name, resume", """
  const joined = await call('/join', {code, name, resume});
  if (joined.error) return [box(joined.error), resume, 0];
  const note = `Welcome, ${esc(joined.name)}. Your resume code is <b>${esc(joined.resume_code)}</b> (also in the `
      + `box above): keep it to come back later.`;
  return [`<p id="review-welcome">${note}</p>`, joined.resume_code, Date.now()];
""")

LEAVE_JS = _js("", """
  await call('/leave', {});
  return ['<p>You have left the study on this computer. Your answers are saved; your resume code brings you back.</p>',
          '', '', '', 0];
""")

SIGN_IN_JS = _js("password", """
  const signed = await call('/admin/sign-in', {password});
  // the other forms' messages answered the session before this one: none stays under the new status
  if (signed.error) return ['', box(signed.error), '', '', ''];
  return ['', '<div class="cs-note" id="review-signed-in">Signed in as the study administrator.</div>', '', '', ''];
""")

SIGN_OUT_JS = _js("", """
  await call('/admin/sign-out', {});
  return ['<div class="cs-note">Signed out.</div>', '', '', '', ''];
""")

COLLECT_CREATED_JS = _js("", """
  const study = await call('/admin/created');
  if (study.error) return '';
  return `<div class="cs-note" id="review-credentials">Study code <b id="review-new-code">${esc(study.code)}</b> `
      + `for the readers; admin token <b id="review-new-token">${esc(study.admin_token)}</b> (copy it now: it is `
      + `not shown again). ${study.n_real} real + ${study.n_synthetic} synthetic cases.</div>`;
""")

RESULTS_JS = _js("code, token", """
  const r = await call('/admin/results', {code, token});
  if (r.error) return [box(r.error), '', '', '', ''];
  const files = `<img id="review-plot" src="${base}${r.plot}" alt="Results: ROC and accuracy per reader" `
      + `style="max-width:100%"><p><a id="review-answers-csv" href="${base}${r.answers_csv}" download>All answers `
      + `(CSV, with the truth)</a> &middot; <a id="review-blinding-json" href="${base}${r.blinding_json}" download>`
      + `Blinding check (JSON)</a></p>`;
  const readers = r.readers.length ? r.readers.map((n) => `<li>${esc(n)}</li>`).join('') : '<li>none yet</li>';
  const details = `<p>Readers:</p><ul id="review-reader-list">${readers}</ul><details><summary>Full results (JSON)`
      + `</summary><pre>${esc(JSON.stringify(r.details, null, 2))}</pre></details>`;
  return ['', r.summary_html, files, details, ''];
""")

REMOVE_JS = _js("code, token, name", """
  const r = await call('/admin/remove-reader', {code, token, name});
  if (r.error) return [box(r.error), ''];
  return [`<div class="cs-note" id="review-removed">${esc(name)} was removed from the study (${r.answers_removed} `
      + `answers left the results; show the results again).</div>`, ''];
""")


def _progress_html(answered: int, total: int, text: str) -> str:
    share = 100.0 * answered / total if total else 0.0
    return (f'<div id="review-progress" data-answered="{answered}" data-total="{total}">'
            f'<div style="background:#e0e0e0;border-radius:4px;height:10px">'
            f'<div style="background:#1565c0;width:{share:.1f}%;height:10px;border-radius:4px"></div></div>'
            f'<p>{html.escape(text)}</p></div>')


def _case_html(case_id: str | None) -> str:
    """The case as an image served only to the reader's cookie (relative to the main page, where the tab is)."""
    if case_id is None:
        return ""
    return f'<img src="{ROUTE_PREFIX.lstrip("/")}/case/{html.escape(case_id)}.gif" alt="The case to judge (loops)">'


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
            leave_btn = gr.Button("Leave", elem_id="review-leave", scale=0, min_width=90)
        progress = gr.HTML("", elem_id="review-status")
        message = gr.HTML("", elem_id="review-message")
        with gr.Row():
            with gr.Column():
                gr.Markdown("**Case** (loops)")
                video = gr.HTML("", elem_id="review-video")
            with gr.Column():
                answer = gr.Radio(["real", "synthetic"], value=None, label="This cine is", elem_id="review-answer")
                confidence = slider(1, 5, value=3, step=1, label="Confidence",
                                       info="1 = a guess ... 5 = certain", elem_id="review-confidence")
                comment = gr.Textbox(label="Comment (optional)", lines=2, max_lines=4, elem_id="review-comment")
                submit = gr.Button("Submit and next", variant="primary", elem_id="review-submit")
        joined = gr.Number(0, visible=False)  # set by the join script when the server accepted the reader
        # the case on screen, and whose it is: anyone who knows this page's session hash can run an event in it
        # with their own cookie, so a case shown for another reader is never taken as this reader's
        shown = gr.State(None)

        def show(reader_token: str):
            """The outputs for the reader's current case (or the end of the study)."""
            session = service.resume(reader_token)
            case = service.current_case(reader_token)
            if case is None:
                return ["", _progress_html(session.answered, session.total, DONE), None]
            return [_case_html(case.case_id), _progress_html(session.answered, session.total,
                                                             f"Case {case.position} of {case.total}"),
                    {"reader": token_hash(reader_token), "case": case.case_id}]

        def current_case(joined_at, request: gr.Request):
            if not joined_at:  # the join was refused: its message stays
                return [gr.skip()] * 4
            try:
                return [*show(cookie(request, READER_COOKIE)), gr.skip()]
            except Exception as err:  # noqa: BLE001 - every error becomes a message
                return [gr.skip(), gr.skip(), gr.skip(), error_box(user_message(err, "showing the case"))]

        def submit_answer(on_screen, label, sure, remark, request: gr.Request):
            try:
                reader_token = cookie(request, READER_COOKIE)
                if not reader_token or on_screen is None:
                    raise ReviewError("Join a study first (study code and your name, then Join).")
                if on_screen.get("reader") != token_hash(reader_token):
                    shown_video, shown_progress, yours = show(reader_token)
                    return [shown_video, shown_progress, error_box("This page was showing a case that is not yours; "
                                                                   "here is your case again: please answer it."),
                            yours, gr.skip(), gr.skip(), gr.skip()]
                if label not in ("real", "synthetic"):
                    raise ReviewError("Choose real or synthetic before submitting.")
                service.answer(reader_token, on_screen["case"], label, sure, remark or "",
                               client=client_address(request))
                shown_video, shown_progress, next_case = show(reader_token)
                return [shown_video, shown_progress, "", next_case, None, 3, ""]
            except Exception as err:  # noqa: BLE001
                return [gr.skip()] * 2 + [error_box(user_message(err, "saving the answer"))] + [gr.skip()] * 4

        join_btn.click(None, inputs=[code, name, resume], outputs=[message, resume, joined], js=JOIN_JS).then(
            current_case, inputs=[joined], outputs=[video, progress, shown, message], api_name="review_case")
        # on a shared workstation: the next person cannot go on in this reader's name
        leave_btn.click(None, outputs=[message, progress, video, resume, joined], js=LEAVE_JS)
        submit.click(submit_answer, inputs=[shown, answer, confidence, comment],
                     outputs=[video, progress, message, shown, answer, confidence, comment], api_name="review_answer",
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
    command line; the forms are then built hidden, never shown, and every route and event refuses."""
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
    """Sign in; create a study; show a study's results; remove a reader."""
    with gr.Row(equal_height=True):
        admin_password = gr.Textbox(label="Administrator password", type="password", max_lines=1,
                                    elem_id="review-admin-password", info="cleared once sent")
        sign_in_btn = gr.Button("Sign in", elem_id="review-sign-in", scale=0, min_width=120)
        sign_out_btn = gr.Button("Sign out", elem_id="review-sign-out", scale=0, min_width=120)
    signed_in = gr.HTML("", elem_id="review-admin-status")
    gr.Markdown("## Create a study\nN real cines from a held-out split (never training cines) and N synthetic "
                "ones, all rendered by one path (uncompressed looping GIFs: files identical byte for byte outside "
                "the pixels; no metadata; random names; a fresh random draw of cases for every study). The admin "
                "token is shown **once**: it is the key to the study's results.")
    with gr.Row():
        n_real = slider(2, 60, value=10, step=1, label="Real cines", elem_id="review-n-real")
        n_synthetic = slider(2, 60, value=10, step=1, label="Synthetic cines", elem_id="review-n-synthetic")
        generator = gr.Dropdown(list(GENERATORS), value=list(GENERATORS)[0], label="Generator",
                                elem_id="review-generator")
    with gr.Row():
        split = gr.Radio(["val", "test"], value="val", label="Real cines from split")
        conditions = gr.Radio(["vae", "matched"], value="matched", label="Synthetic phenotypes",
                              info="matched = the real cases' own phenotypes and slice positions; "
                                   "vae = sampled from the phenotype VAE")
        cycle_seconds = slider(0.5, 3.0, value=1.0, step=0.1, label="Seconds per heartbeat")
        cycles = slider(1, 6, value=1, step=1, label="Heartbeats stored per case",
                           info="each case loops anyway; more beats = larger files")
    title = gr.Textbox(label="Title (optional)", max_lines=1)
    create_btn = gr.Button("Create study", elem_id="review-create")
    created = gr.HTML("", elem_id="review-created")
    credentials = gr.HTML("", elem_id="review-new-study")
    gr.Markdown("## Results\nThe study code and its admin token (from Create study or the command line).")
    with gr.Row():
        admin_code = gr.Textbox(label="Study code", max_lines=1, elem_id="review-admin-code")
        admin_token = gr.Textbox(label="Admin token", type="password", max_lines=1, elem_id="review-admin-token",
                                 info="cleared once sent")
        results_btn = gr.Button("Show results", elem_id="review-results-btn")
    results_message = gr.HTML("", elem_id="review-results-message")
    summary = gr.HTML("", elem_id="review-summary")
    files = gr.HTML("", elem_id="review-files")
    details = gr.HTML("", elem_id="review-details")
    with gr.Accordion("Remove a reader", open=False):
        gr.Markdown("Takes a reader's answers out of the results and the exports (they stay in the database, "
                    "marked, for the audit trail) and stops them answering. Needs the study code and admin token "
                    "above; the name exactly as the results list it.")
        with gr.Row(equal_height=True):
            reader_name = gr.Textbox(label="Reader's name", max_lines=1, elem_id="review-remove-name")
            remove_btn = gr.Button("Remove reader", elem_id="review-remove-btn")
        removed = gr.HTML("", elem_id="review-remove-message")

    def create(real, synthetic, generator_label, split_name, how, seconds, beats, study_title,
               request: gr.Request, progress_bar=gr.Progress()):
        try:
            session_id = cookie(request, ADMIN_COOKIE)
            service.require_admin_session(session_id)
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
            service.admin_sessions.leave_notice(session_id, study)
            return (("<p>The ACDC cines were prepared for the study on first use, which happens once.</p>"
                     if prepared else "")
                    + f"<p>Study created: {study.n_real} real + {study.n_synthetic} synthetic cases. Its code and "
                    "admin token are shown below, on this page only.</p>")
        except Exception as err:  # noqa: BLE001
            return error_box(user_message(err, "creating the study"))

    sign_in_btn.click(None, inputs=[admin_password], outputs=[admin_password, signed_in, created, results_message,
                                                               removed], js=SIGN_IN_JS)
    sign_out_btn.click(None, outputs=[signed_in, credentials, summary, files, details], js=SIGN_OUT_JS)
    create_btn.click(None, outputs=[credentials, created], js="() => ['', '']").then(
        create, inputs=[n_real, n_synthetic, generator, split, conditions, cycle_seconds, cycles, title],
        outputs=[created], api_name="review_create", concurrency_limit=1).then(
        None, outputs=[credentials], js=COLLECT_CREATED_JS)
    results_btn.click(None, inputs=[admin_code, admin_token],
                      outputs=[results_message, summary, files, details, admin_token], js=RESULTS_JS)
    remove_btn.click(None, inputs=[admin_code, admin_token, reader_name], outputs=[removed, admin_token],
                     js=REMOVE_JS)
