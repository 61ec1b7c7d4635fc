"""Reads stay inside the workspace: symlinks leading out are refused (in the UI always, in the CLI
unless the user typed the path: test_confinement_cli.py), stored names are plain and short, and the
UI answers only to its own Host names."""

from __future__ import annotations

import asyncio
import os

import pytest

from tunestudio.core.errors import UserError
from tunestudio.core.workspace import CONFINED_ENV, Workspace, workspace_from


def test_links_out_of_the_workspace_are_not_listed_nor_read_by_name(outside):
    from tunestudio.data.split import resolve_dataset

    ws, secret, model = outside
    assert ws.list_datasets() == ["mine.jsonl"] and ws.list_models() == []
    for name in ("passwd.jsonl", "link"):
        with pytest.raises(UserError, match="outside the workspace"):
            resolve_dataset(ws, name)
    with pytest.raises(UserError, match="outside the workspace"):
        ws.model_path_or_id("evil")
    # the CLI user who types the path itself means it
    assert resolve_dataset(ws, str(secret)) == {"all": secret}
    assert ws.model_path_or_id(str(model)) == str(model)
    assert resolve_dataset(ws, "mine.jsonl") == {"all": ws.datasets_dir / "mine.jsonl"}


def test_the_web_ui_reads_nothing_outside_the_workspace(outside, monkeypatch):
    from tunestudio.data.quality.check import check_dataset
    from tunestudio.webui.common.safety import check_form_inputs

    ws, secret, model = outside
    ui = Workspace(ws.root, confined=True)
    for name in ("passwd.jsonl", str(secret), "link", "../../../outside/secret.jsonl"):
        with pytest.raises(UserError, match="outside the workspace"):
            check_dataset(ui, name)
    with pytest.raises(UserError, match="outside the workspace"):
        check_form_inputs(ui, "", str(secret))  # the Training tab's dataset field
    with pytest.raises(UserError, match="outside the workspace"):
        check_form_inputs(ui, str(model), "mine.jsonl")  # and its model field
    check_form_inputs(ui, "", "mine.jsonl", "my run (v2) – données")
    with pytest.raises(UserError, match="invisible control"):
        check_form_inputs(ui, "", "mine.jsonl", "run\u202eevil")  # the run name shows reversed
    # the jobs the UI launches run confined too
    monkeypatch.setenv(CONFINED_ENV, "1")
    assert workspace_from(str(ws.root)).confined


@pytest.mark.parametrize("name, message", [
    ("x" * 300 + ".jsonl", "at most"),
    ("a\x00b.jsonl", "invisible control"),
    ("bell\x07.jsonl", "invisible control"),
    ("evil\u202elsnoj.txt", "invisible control"),      # right-to-left override: shows as "evil txt.jsonl"
    ("zero\u200bwidth.jsonl", "invisible control"),
    ("semi;colon.jsonl", "letters, digits"),
    ("-rf.jsonl", "may not start"),
])
def test_upload_names_are_plain_and_short(workspace, tmp_path, name, message):
    from tunestudio.webui.tabs.datasets.tab import store_upload

    ws = Workspace(workspace)
    src = tmp_path / "upload.jsonl"
    src.write_text('{"text": "hello"}\n')
    with pytest.raises(UserError, match=message):
        store_upload(ws, src, name)
    assert os.listdir(ws.datasets_dir) == []


def test_ordinary_names_of_any_script_are_stored(workspace, tmp_path):
    from tunestudio.webui.tabs.datasets.tab import store_upload

    ws = Workspace(workspace)
    src = tmp_path / "upload.jsonl"
    src.write_text('{"text": "hello"}\n')
    for name in ("my data (v2).jsonl", "dadus-tetun_1.jsonl", "données.jsonl"):
        assert store_upload(ws, src, name).name == name


def _request(app, host: str) -> int:
    sent = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": "/", "headers": [(b"host", host.encode())]}
    asyncio.run(app(scope, receive, send))
    return sent[0]["status"]


def test_the_host_header_must_name_this_server():
    from tunestudio.core.hosts import allowed_hosts
    from tunestudio.webui.common.safety import HostGuard

    async def ok(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    local = HostGuard(ok, allowed_hosts("127.0.0.1"))
    for host in ("127.0.0.1:7860", "localhost:7860", "localhost", "[::1]:7860", "127.0.0.2"):
        assert _request(local, host) == 200, host
    for host in ("attacker.example", "attacker.example:7860", "", "127.0.0.1.attacker.example"):
        assert _request(local, host) == 403, host
    exposed = HostGuard(ok, allowed_hosts("10.1.2.3", ["studio.lan"]))
    assert _request(exposed, "10.1.2.3:7860") == 200 and _request(exposed, "studio.lan") == 200
    assert _request(exposed, "attacker.example") == 403
