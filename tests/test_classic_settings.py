"""The classic platform's settings: which platforms are on, and its credentials checked at start."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def start(**changes: str) -> subprocess.CompletedProcess[str]:
    """`manage.py check` with the test settings and these environment changes."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "portal.test_settings", **changes}
    return subprocess.run(
        [sys.executable, "manage.py", "check"], env=env, capture_output=True, text=True
    )


def test_an_unknown_platform_stops_start_up():
    result = start(NEXTHINK_PLATFORMS="onprem")
    assert result.returncode != 0
    assert "NEXTHINK_PLATFORMS='onprem' is not cloud, classic or both" in result.stderr


def test_classic_without_credentials_stops_start_up_naming_them():
    result = start(NEXTHINK_PLATFORMS="classic", NEXTHINK_CLASSIC_PASSWORD=" ")
    assert result.returncode != 0
    assert "NEXTHINK_CLASSIC_PASSWORD (or NEXTHINK_CLASSIC_PASSWORD_FILE)" in result.stderr


def test_the_classic_password_may_come_from_a_file(tmp_path: Path):
    secret = tmp_path / "classic-password"
    secret.write_text("from-a-file\n", encoding="utf-8")
    env = {"NEXTHINK_CLASSIC_PASSWORD": "", "NEXTHINK_CLASSIC_PASSWORD_FILE": str(secret)}
    result = start(**env)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("platforms", "kinds"),
    [
        ("cloud", {"workflow"}),
        ("classic", {"remote_action"}),
        ("both", {"workflow", "remote_action"}),
    ],
)
def test_each_platform_setting_serves_its_kinds(settings, platforms: str, kinds: set[str]):
    from workflows_app.platforms import enabled_kinds

    settings.NEXTHINK_PLATFORMS = platforms
    assert {str(k) for k in enabled_kinds()} == kinds


def test_a_classic_timeout_longer_than_the_task_may_run_stops_start_up():
    result = start(NEXTHINK_CLASSIC_TIMEOUT_SECONDS="600", CELERY_TASK_SOFT_TIME_LIMIT="240")
    assert result.returncode != 0
    assert "must be shorter than CELERY_TASK_SOFT_TIME_LIMIT (240 s)" in result.stderr
