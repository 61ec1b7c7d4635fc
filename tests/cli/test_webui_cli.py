"""`tunestudio webui` refuses a public address without a password, and a malformed --auth."""

from __future__ import annotations

from helpers import run_cli


def test_public_host_without_auth_is_refused(workspace):
    r = run_cli("webui", "--host", "0.0.0.0", "--port", "7999", ws=workspace, timeout=120)
    assert r.returncode == 1
    assert "refusing to listen on 0.0.0.0" in r.stderr and "--auth" in r.stderr
    assert "Traceback" not in r.stderr


def test_bad_auth_is_a_user_error(workspace):
    r = run_cli("webui", "--auth", "nopassword", ws=workspace, timeout=120)
    assert r.returncode == 1 and "USER:PASS" in r.stderr

