"""Seeding the scratch database of a full benchmark, run as a child process.

`python -m workflows_app.bench.seed history|catalogue|people ...` with the benchmark's
environment (DATABASE_URL of the scratch database) prints one JSON object. A child process,
because the command's own connection is to the configured database, never the scratch one.
History comes from `fake_history` (INSERT … SELECT over generate_series: as fast as COPY
here, with nothing to stream), committed.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys

import django

CATALOGUE_SQL = """
INSERT INTO workflows_app_workflow (nql_id, uuid, name, description, status, dependency,
    trigger_api, trigger_manual, trigger_manual_multiple, trigger_scheduler, raw, first_seen,
    last_seen)
SELECT %(prefix)s || n, md5(%(prefix)s || n)::uuid::text, 'Catalogue workflow ' || n, '',
       CASE WHEN n %% 10 = 0 THEN 'INACTIVE' ELSE 'ACTIVE' END,
       (ARRAY['DEVICE', 'USER', 'USER_AND_DEVICE', 'NONE'])[1 + n %% 4],
       n %% 3 <> 0, n %% 2 = 0, false, n %% 5 = 0, '{}', now(), now()
FROM generate_series(1, %(count)s) n
"""


def main(argv: list[str] | None = None) -> None:
    """Parse the command line, seed, print what was seeded as JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="what", required=True)
    history = sub.add_parser("history")
    history.add_argument("--targets", type=int, required=True)
    history.add_argument("--runs", type=int, required=True)
    history.add_argument("--days", type=int, default=180)
    catalogue = sub.add_parser("catalogue")
    catalogue.add_argument("--workflows", type=int, required=True)
    sub.add_parser("people")
    args = parser.parse_args(argv)
    # Django is set up here, in the child: the handlers import models only after it.
    django.setup()
    handlers = {"history": _history, "catalogue": _catalogue, "people": _people}
    print(json.dumps(handlers[args.what](args)))


def _history(args: argparse.Namespace) -> dict[str, object]:
    from django.db import transaction

    from workflows_app.fake_history import HistoryShape, seed_history

    with transaction.atomic():
        seeded = seed_history(HistoryShape(targets=args.targets, runs=args.runs, days=args.days))
    return {
        "helpdesk_username": seeded.helpdesk_username,
        "ticket": seeded.ticket,
        "runs": seeded.runs_seeded,
        "targets": seeded.targets_seeded,
        "days": seeded.shape.days,
        "seconds": round(seeded.seconds, 1),
    }


def _catalogue(args: argparse.Namespace) -> dict[str, object]:
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cursor:
        prefix = f"#bench_{secrets.token_hex(3)}_"
        cursor.execute(CATALOGUE_SQL, {"prefix": prefix, "count": args.workflows})
        cursor.execute("ANALYZE workflows_app_workflow")
    return {"workflows": args.workflows}


def _people(args: argparse.Namespace) -> dict[str, object]:
    """A superuser with a signed-in session (no sign-in form: no throttling) and an API token."""
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.test import Client

    from workflows_app.services.api_tokens import create_token

    user = get_user_model().objects.create_superuser(
        username=f"bench-admin-{secrets.token_hex(3)}",
        email="bench-admin@example.com",
        password=secrets.token_urlsafe(24),
    )
    client = Client()
    client.force_login(user)
    token = create_token(user=user, name="full benchmark")
    return {
        "session_cookie": settings.SESSION_COOKIE_NAME,
        "session": client.cookies[settings.SESSION_COOKIE_NAME].value,
        "api_token": token.secret,
    }


if __name__ == "__main__":
    main(sys.argv[1:])
