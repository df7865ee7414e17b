"""What every page tells the browser: the Content-Security-Policy, no-store on pages showing
runs, and how a refused request is logged."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
from django.urls import reverse

from tests.test_run_views import make_run, make_workflow
from workflows_app.models import Run

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = sorted((ROOT / "templates").rglob("*.html"))
CSP = "Content-Security-Policy"


def directives(header: str) -> dict[str, list[str]]:
    parsed: dict[str, list[str]] = {}
    for part in header.split(";"):
        name, *values = part.split()
        parsed[name] = values
    return parsed


# --- Content-Security-Policy -------------------------------------------------------------------
def test_pages_carry_a_policy_without_inline_script_or_style(client, client_for, admin_user):
    anonymous = client.get(reverse("login"))
    assert anonymous.status_code == 200
    policy = directives(anonymous[CSP])
    assert policy["script-src"] == ["'self'"]
    assert policy["style-src"] == ["'self'"]
    assert policy["object-src"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["base-uri"] == ["'self'"] and policy["form-action"] == ["'self'"]
    assert not any("unsafe" in value for values in policy.values() for value in values)
    signed_in = client_for(admin_user).get(reverse("console:dashboard"))
    assert signed_in.status_code == 200 and signed_in[CSP] == anonymous[CSP]


def test_the_templates_exist_to_scan():
    assert len(TEMPLATES) > 20 and (ROOT / "templates" / "base.html") in TEMPLATES


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_template_has_inline_script_handlers_or_styles(template: Path):
    text = template.read_text(encoding="utf-8")
    scripts = re.findall(r"<script\b[^>]*>", text, re.IGNORECASE)
    assert all(re.search(r"\ssrc=", tag) for tag in scripts), scripts
    assert not re.search(r"<style\b", text, re.IGNORECASE)
    assert not re.search(r"\sstyle\s*=", text, re.IGNORECASE)
    assert not re.search(r"\son[a-z]+\s*=", text, re.IGNORECASE)  # onclick=, onchange=, ...
    assert not re.search(r"\shx-on[:-]", text, re.IGNORECASE)  # htmx evaluates those
    assert "javascript:" not in text.lower()


def test_htmx_is_told_not_to_eval_or_inject_styles(client):
    page = client.get(reverse("login")).content.decode()
    config = re.search(r"<meta name=\"htmx-config\" content='([^']+)'>", page)
    assert config, "no htmx-config meta on the page"
    assert '"allowEval": false' in config[1] and '"includeIndicatorStyles": false' in config[1]
    assert re.search(r'<script src="/static/portal/time_zone\.js"></script>', page)


# --- Cache-Control: no-store -------------------------------------------------------------------
@pytest.fixture
def a_run(admin_user, enqueued) -> Run:
    return make_run(admin_user, make_workflow())


NO_STORE_PAGES = [
    ("runs:list", False),
    ("runs:detail", True),
    ("runs:progress", True),
    ("runs:waiting", False),
    ("self_service:home", False),
    ("self_service:recent", False),
    ("console:dashboard", False),
    ("console:audit", False),
    ("console:home", False),
]


@pytest.mark.parametrize(("name", "takes_run"), NO_STORE_PAGES)
def test_pages_showing_runs_are_not_stored(client_for, admin_user, a_run, name, takes_run):
    url = reverse(name, args=[a_run.pk]) if takes_run else reverse(name)
    answer = client_for(admin_user).get(url)
    assert answer.status_code == 200
    assert "no-store" in answer["Cache-Control"], answer.get("Cache-Control")


def test_the_run_page_polled_by_htmx_is_not_stored_either(client_for, admin_user, a_run):
    answer = client_for(admin_user).get(
        reverse("runs:progress", args=[a_run.pk]), HTTP_HX_REQUEST="true"
    )
    assert answer.status_code == 200 and "no-store" in answer["Cache-Control"]


def test_a_person_and_a_workflow_page_are_not_stored(client_for, admin_user, a_run, employee):
    signed_in = client_for(admin_user)
    for url in (
        reverse("people:detail", args=[employee.pk]),
        reverse("catalogue:detail", args=[a_run.workflow_id]),
    ):
        answer = signed_in.get(url)
        assert answer.status_code == 200 and "no-store" in answer["Cache-Control"], url


# --- a refused request in the log --------------------------------------------------------------
def test_a_403_logs_exactly_one_line_without_a_traceback(client_for, employee, caplog):
    caplog.set_level(logging.DEBUG)
    answer = client_for(employee).get(reverse("console:home"))
    assert answer.status_code == 403
    refused = [r for r in caplog.records if "Forbidden" in r.getMessage()]
    assert len(refused) == 1, [r.getMessage() for r in caplog.records]
    assert refused[0].exc_info is None and refused[0].exc_text is None
    assert "Traceback" not in caplog.text
    assert len([line for line in caplog.text.splitlines() if "/console/" in line]) == 1


def test_a_403_reaches_the_configured_handler_once(client_for, employee):
    """Through the settings' handlers (not caplog's): one line on the console, no traceback."""
    stream = _RootStream()
    with stream:
        assert client_for(employee).get(reverse("console:home")).status_code == 403
    lines = stream.text().splitlines()
    assert [line for line in lines if "Forbidden" in line] == [lines[0]] and len(lines) == 1, lines


def test_a_server_error_still_logs_its_traceback(caplog):
    """The filter drops only refusals' tracebacks."""
    caplog.set_level(logging.ERROR)
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("django.request").error("Internal Server Error: /x/", exc_info=True)
    assert "Traceback" in caplog.text and "ValueError: boom" in caplog.text


class _RootStream:
    """Point the root logger's console handler at a buffer for a while."""

    def __enter__(self) -> _RootStream:
        import io

        self.buffer = io.StringIO()
        self.handlers = [
            h for h in logging.getLogger().handlers if type(h) is logging.StreamHandler
        ]
        assert self.handlers, "the settings' console handler is not on the root logger"
        self.previous = [h.setStream(self.buffer) for h in self.handlers]
        return self

    def __exit__(self, *exc: object) -> None:
        for handler, previous in zip(self.handlers, self.previous, strict=True):
            handler.setStream(previous)

    def text(self) -> str:
        return self.buffer.getvalue()
