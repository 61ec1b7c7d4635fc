"""CLI: `tunestudio webui [--host 127.0.0.1] [--port 7860] [--auth USER:PASS] [--insecure]`."""

from __future__ import annotations

from tunestudio.core.errors import UserError
from tunestudio.core.hosts import is_loopback
from tunestudio.demo import make_demo


def register(subparsers, common) -> None:
    p = subparsers.add_parser(
        "webui", parents=[common], help="open the web UI (Gradio) on http://127.0.0.1:7860",
        description="The web UI: models, datasets, training with live monitoring, runs, evaluation, "
                    "chat and blind ratings. Listens on 127.0.0.1 unless told otherwise; listening on "
                    "another address needs --auth (or an explicit --insecure).",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    p.add_argument("--auth", default=None, metavar="USER:PASS", help="require this user name and password")
    p.add_argument("--insecure", action="store_true",
                   help="allow listening beyond this machine without --auth (anyone who can reach the port "
                        "can read your data and start jobs)")
    p.add_argument("--max-upload", default="200mb", help="largest dataset upload (default 200mb)")
    p.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                   help="also answer requests for this host name (repeatable); by default only loopback "
                        "names and --host are answered, which stops DNS-rebinding attacks")
    p.set_defaults(func=run)


def parse_auth(spec: str | None) -> tuple[str, str] | None:
    if spec is None:
        return None
    user, sep, password = spec.partition(":")
    if not sep or not user or not password:
        raise UserError("--auth must be USER:PASS (both non-empty), e.g. --auth alice:s3cret", "auth_bad")
    return user, password


def run(args, ws) -> int:
    auth = parse_auth(args.auth)
    if not is_loopback(args.host) and auth is None and not args.insecure:
        raise UserError(
            f"refusing to listen on {args.host} without a password: anyone who can reach it could read "
            f"your data and start jobs. Add --auth USER:PASS, or --insecure if you really mean it "
            f"(or drop --host to stay on 127.0.0.1)", "ui_open_host", host=args.host
        )
    if not 0 < args.port < 65536:
        raise UserError(f"--port must be between 1 and 65535, got {args.port}", "port_out_of_range", value=args.port)
    ws.ensure()
    if not ws.list_models():
        # A newcomer's first start: give them a model and data to train on at once.

        print("no models in this workspace: writing the demo model and datasets (tunestudio demo)", flush=True)
        make_demo(ws)
    from tunestudio.webui.app import launch

    print(f"tunestudio web UI for workspace {ws.root}", flush=True)
    launch(ws, host=args.host, port=args.port, auth=auth, max_file_size=args.max_upload, allow_hosts=args.allow_host)
    return 0
