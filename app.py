"""CardioSynth web app: ``python app.py [--port 7860]`` serves it on http://127.0.0.1:7860.

The port comes from ``--port``, else CARDIOSYNTH_PORT, else Gradio's own GRADIO_SERVER_PORT, else 7860; the
interface from ``--host``, else GRADIO_SERVER_NAME (how Hugging Face Spaces and containers set them), else
127.0.0.1. Bundled weights
only, no network at run time and no analytics; the generators run on ``--device`` (default ``auto``: the CUDA GPU
when there is one, else the CPU). The UI lives in ``cardiosynth/app``.
"""

from __future__ import annotations

import argparse
import logging
import os
import time

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # must be set before gradio is imported


def default_port(environ) -> int:
    """The port when ``--port`` is not given; a variable that is not a port number is an error, not ignored."""
    for name in ("CARDIOSYNTH_PORT", "GRADIO_SERVER_PORT"):
        value = (environ.get(name) or "").strip()
        if value:
            if not value.isdigit() or not 0 < int(value) < 65536:
                raise SystemExit(f"{name}={value!r} is not a port number (1-65535).")
            return int(value)
    return 7860


def parse_args(argv: list[str] | None = None, environ=os.environ) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=default_port(environ),
                        help="port (default: $CARDIOSYNTH_PORT, else $GRADIO_SERVER_PORT, else 7860)")
    parser.add_argument("--host", default=(environ.get("GRADIO_SERVER_NAME") or "").strip() or "127.0.0.1",
                        help="interface to listen on (default: $GRADIO_SERVER_NAME, else 127.0.0.1)")
    parser.add_argument("--threads", type=int,
                        default=int(environ.get("CARDIOSYNTH_TORCH_THREADS", min(2, os.cpu_count() or 1))),
                        help="torch CPU threads (default 2, or fewer cores: generation is faster with two)")
    parser.add_argument("--device", default=environ.get("CARDIOSYNTH_DEVICE", "auto"),
                        help="where the generators run: auto (CUDA when present, else CPU), cpu or cuda "
                             "(default: $CARDIOSYNTH_DEVICE, else auto)")
    parser.add_argument("--trusted-proxy", default=environ.get("CARDIOSYNTH_TRUSTED_PROXIES", ""),
                        help="address(es) of the reverse proxy whose X-Forwarded-For is believed (comma-separated; "
                             "default: $CARDIOSYNTH_TRUSTED_PROXIES, else none)")
    parser.add_argument("--allowed-hosts", default=environ.get("CARDIOSYNTH_ALLOWED_HOSTS", ""),
                        help="host names the server answers to besides loopback (comma-separated; '*' for any; "
                             "default: $CARDIOSYNTH_ALLOWED_HOSTS)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    t0 = time.perf_counter()
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # gradio's own start-up checks, one line per request

    import torch

    torch.set_num_threads(max(1, args.threads))
    from cardiosynth.app import build_app, launch_kwargs
    from cardiosynth.app.review_tab import ADMIN_PATH

    from cardiosynth.review import ReviewError

    log = logging.getLogger("cardiosynth.app")
    try:
        demo = build_app(device=args.device)  # the generators load onto it
    except ReviewError as err:  # a setting the server was started with (e.g. a short admin password): one line
        raise SystemExit(f"CardioSynth cannot start: {err}") from None
    demo.launch(server_name=args.host, server_port=args.port, prevent_thread_lock=True,
                **launch_kwargs(demo, args.host, trusted_proxies=args.trusted_proxy, hosts=args.allowed_hosts))
    log.info("Serving on http://%s:%d (%.1f s after start)", args.host, args.port, time.perf_counter() - t0)
    log.info("Reader study administration (not linked from the app's pages): http://%s:%d%s", args.host, args.port,
             ADMIN_PATH)
    demo.block_thread()


if __name__ == "__main__":
    main()
