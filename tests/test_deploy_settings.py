"""Production settings as docker-compose.yml gives them, and demo mode's own SECRET_KEY."""

from __future__ import annotations

import json
import os
import re
import secrets
import stat
import subprocess
import sys
from pathlib import Path

import yaml

from portal.env import stored_secret

ROOT = Path(__file__).resolve().parents[1]
# What the operator must add to the compose defaults (README "Production"): a secret key and a
# tenant. Everything else is the compose file's.
OPERATOR_ENV = {
    "SECRET_KEY": secrets.token_urlsafe(50),
    "NEXTHINK_INSTANCE": "acme",
    "NEXTHINK_REGION": "eu",
    "NEXTHINK_CLIENT_ID": "portal",
    "NEXTHINK_CLIENT_SECRET": "a-client-secret",
}
PROBE = """
import json, django
django.setup()
from django.conf import settings
print(json.dumps({name: getattr(settings, name) for name in (
    "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS", "SECURE_PROXY_SSL_HEADER", "SECRET_KEY", "DEBUG")}))
"""


def compose_env(service: str = "web") -> dict[str, str]:
    """The service's environment with `${NAME:-default}` read as a shell without NAME would."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    raw = compose["services"][service]["environment"]
    env: dict[str, str] = {}
    for name, value in raw.items():
        text = str(value).lower() if isinstance(value, bool) else str(value)
        env[name] = re.sub(r"\$\{[A-Z0-9_]+:-([^}]*)\}", r"\1", text)
    return env


def run_django(args: list[str], extra: dict[str, str], home: Path) -> subprocess.CompletedProcess:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "PYTHONPATH": str(ROOT),
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        **extra,
    }
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_compose_defaults_are_production_safe():
    env = compose_env()
    assert env["DEBUG"] == "false"
    for name in ("SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "SECURE_SSL_REDIRECT"):
        assert env[name] == "true", name
    assert int(env["SECURE_HSTS_SECONDS"]) >= 31536000
    assert compose_env("worker") == env  # every portal process reads the same settings


def test_check_deploy_is_clean_with_the_compose_defaults(tmp_path):
    done = run_django(
        ["manage.py", "check", "--deploy", "--fail-level", "DEBUG"],
        {**compose_env(), **OPERATOR_ENV},
        tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "WARNINGS" not in done.stdout + done.stderr
    assert "System check identified no issues" in done.stdout, done.stdout


def test_check_deploy_would_warn_with_the_old_compose_defaults(tmp_path):
    """The test above can fail: plain-HTTP cookies and no redirect are what it catches."""
    old = {
        **compose_env(),
        **OPERATOR_ENV,
        "SESSION_COOKIE_SECURE": "false",
        "CSRF_COOKIE_SECURE": "false",
        "SECURE_SSL_REDIRECT": "false",
        "SECURE_HSTS_SECONDS": "0",
    }
    done = run_django(["manage.py", "check", "--deploy"], old, tmp_path)
    for check in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert check in done.stderr + done.stdout, check


def test_the_compose_settings_as_django_reads_them(tmp_path):
    done = run_django(["-c", PROBE], {**compose_env(), **OPERATOR_ENV}, tmp_path)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["SESSION_COOKIE_SECURE"] and seen["CSRF_COOKIE_SECURE"]
    assert seen["SECURE_SSL_REDIRECT"] and seen["SECURE_HSTS_SECONDS"] == 31536000
    assert seen["SECURE_PROXY_SSL_HEADER"] is None and seen["DEBUG"] is False
    behind_proxy = run_django(
        ["-c", PROBE], {**compose_env(), **OPERATOR_ENV, "BEHIND_TLS_PROXY": "true"}, tmp_path
    )
    assert json.loads(behind_proxy.stdout.strip().splitlines()[-1])["SECURE_PROXY_SSL_HEADER"] == [
        "HTTP_X_FORWARDED_PROTO",
        "https",
    ]


def test_the_health_check_is_answered_over_plain_http(client, settings, db):
    """Compose's health check asks http://127.0.0.1:8000/healthz from inside the container."""
    settings.SECURE_SSL_REDIRECT = True
    assert client.get("/healthz").status_code in (200, 503)
    redirected = client.get("/login/")
    assert redirected.status_code == 301 and redirected["Location"].startswith("https://")


# --- demo mode's SECRET_KEY --------------------------------------------------------------------
def demo_settings(demo_dir: Path, home: Path, **extra: str) -> dict:
    env = {"PORTAL_DEMO": "true", "PORTAL_DEMO_DIR": str(demo_dir), "DEBUG": "false", **extra}
    done = run_django(["-c", PROBE], env, home)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_demo_mode_keeps_its_own_random_secret_key_in_the_demo_folder(tmp_path):
    first = demo_settings(tmp_path / "one", tmp_path)
    again = demo_settings(tmp_path / "one", tmp_path)
    other = demo_settings(tmp_path / "two", tmp_path)

    key_file = tmp_path / "one" / "secret_key"
    assert first["SECRET_KEY"] == again["SECRET_KEY"] == key_file.read_text().strip()
    assert other["SECRET_KEY"] != first["SECRET_KEY"]
    assert len(first["SECRET_KEY"]) >= 50
    assert "demo" not in first["SECRET_KEY"] and "insecure" not in first["SECRET_KEY"]
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert not first["SESSION_COOKIE_SECURE"] and not first["SECURE_SSL_REDIRECT"]


def test_demo_mode_uses_a_secret_key_it_is_given(tmp_path):
    given = demo_settings(tmp_path, tmp_path, SECRET_KEY="an-operators-own-key")
    assert given["SECRET_KEY"] == "an-operators-own-key"
    assert not (tmp_path / "secret_key").exists()


def test_no_published_secret_key_is_left_in_the_settings():
    source = (ROOT / "portal" / "settings.py").read_text(encoding="utf-8")
    assert "demo-only-insecure" not in source
    assert not re.search(r"SECRET_KEY[^\n]*default=\"", source)


def test_a_stored_secret_is_created_once_and_then_read(tmp_path):
    path = tmp_path / "deeper" / "secret_key"
    first = stored_secret(path)
    assert stored_secret(path) == first
    path.write_text("kept-from-before\n", encoding="utf-8")
    assert stored_secret(path) == "kept-from-before"
    assert [p.name for p in path.parent.iterdir()] == ["secret_key"]  # no draft left behind
