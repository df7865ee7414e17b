"""Writing a run's targets: COPY on PostgreSQL stores exactly what bulk_create would."""

from __future__ import annotations

import hashlib
import json
import uuid
from types import SimpleNamespace
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from hypothesis import given
from hypothesis import strategies as st

from workflows_app.models import Run, Target
from workflows_app.services import target_insert
from workflows_app.services.runs import _fingerprint, create_run
from workflows_app.targets import Target as Wanted
from workflows_app.targets import TargetKind, parse_text

SID = "S-1-5-21-1004336348-1177238915-682003330-{}"
# Every column but the ids, which differ from one run to the next.
COLUMNS = [f.name for f in Target._meta.concrete_fields if f.name not in ("id", "run", "batch")]


def mixed_targets() -> list[Wanted]:
    """Over 10,000 devices (two batches) with users in between and awkward device names."""
    devices = [Wanted(TargetKind.DEVICE_COLLECTOR, str(uuid.uuid4()), i) for i in range(10_001)]
    users = [Wanted(TargetKind.USER_SID, SID.format(i), i) for i in range(3)]
    awkward = ["PC\\01", "\\N", 'Bob\'s "PC"', "Ünïcødé ✓ PC", "a,b;c|d", "x" * 255]
    names = parse_text("".join(f"name:{n}\n" for n in awkward) + "jane.doe@example.com").targets
    assert len(names) == 7
    repeated = devices[5]  # the same object twice: each occurrence keeps its own position
    return devices[:5000] + users[:2] + names + devices[5000:] + [repeated] + users[2:]


def create(user: Any, workflow: Any, targets: list[Wanted]) -> Run:
    return create_run(
        user=user,
        workflow=workflow,
        targets=targets,
        params={},
        reason="INC0001",
        source=Run.Source.HELPDESK,
        allow_duplicate=True,
    )


def stored(run: Run) -> list[tuple[Any, ...]]:
    """The run's target rows in order, with their batch's number instead of its id."""
    rows = Target.objects.filter(run=run).order_by("position", "id")
    return list(rows.values_list("batch__number", *COLUMNS))


@pytest.mark.django_db
def test_copy_and_bulk_create_store_the_same_rows(
    helpdesk: Any, sim_workflow: Any, enqueued: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    workflow = sim_workflow("#repair_outlook_profile")
    targets = mixed_targets()
    assert target_insert.copy_supported()
    copied = create(helpdesk, workflow, targets)
    monkeypatch.setattr(target_insert, "copy_supported", lambda: False)
    inserted = create(helpdesk, workflow, targets)

    rows = stored(copied)
    assert rows == stored(inserted)
    assert len(rows) == len(targets) == 10_012
    assert [(kind, value) for _, _, kind, value, *_ in rows] == [
        (t.kind.value, t.value) for t in targets
    ]
    assert [position for _, position, *_ in rows] == list(range(len(targets)))
    assert {tuple(row[-3:]) for row in rows} == {("", "", "")}  # execution, status, details
    # The 10,001st device (the repeated one, last but one) opens batch 2; users all go in 1.
    assert (rows[-2][0], rows[-1][0]) == (2, 1)
    batches = [list(r.batches.values_list("number", "target_count")) for r in (copied, inserted)]
    assert batches[0] == batches[1] == [(1, 10_004), (2, 8)]


@pytest.mark.django_db
@pytest.mark.parametrize("use_copy", [True, False])
def test_values_copy_would_mangle_are_stored_as_given(
    helpdesk: Any, sim_workflow: Any, enqueued: list[int], use_copy: bool
) -> None:
    sid = Wanted(TargetKind.USER_SID, "S-1-2", 1)
    run = create(helpdesk, sim_workflow("#unlock_ad_account"), [sid])
    batch_id = run.batches.get().pk
    # COPY's text format gives \N, tabs, newlines and backslashes a meaning of their own.
    values = ["\\N", "tab\there", "new\nline", "cr\rx", "back\\slash", "\\.", "", "é ✓ 漢字"]
    rows = [(batch_id, 100 + i, "device_name", v) for i, v in enumerate(values)]
    target_insert.insert_targets(run.pk, rows, use_copy=use_copy)
    written = Target.objects.filter(run=run, position__gte=100).order_by("position")
    assert list(written.values_list("value", flat=True)) == values


@pytest.mark.django_db
def test_postgresql_streams_targets_with_one_copy(
    helpdesk: Any, sim_workflow: Any, enqueued: list[int]
) -> None:
    targets = [Wanted(TargetKind.DEVICE_COLLECTOR, str(uuid.uuid4()), i) for i in range(20)]
    with CaptureQueriesContext(connection) as queries:
        create(helpdesk, sim_workflow("#clear_teams_cache"), targets)
    sql = [q["sql"] for q in queries]
    copies = [s for s in sql if s.startswith("COPY")]
    assert len(copies) == 1 and '"workflows_app_target"' in copies[0]
    assert not any(s.startswith('INSERT INTO "workflows_app_target"') for s in sql)


@pytest.mark.django_db
def test_other_databases_fall_back_to_bulk_create(
    helpdesk: Any, sim_workflow: Any, enqueued: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(target_insert, "copy_supported", lambda: False)  # as on SQLite
    monkeypatch.setattr(target_insert, "INSERT_BATCH", 7)
    targets = [Wanted(TargetKind.DEVICE_COLLECTOR, str(uuid.uuid4()), i) for i in range(20)]
    with CaptureQueriesContext(connection) as queries:
        run = create(helpdesk, sim_workflow("#clear_teams_cache"), targets)
    sql = [q["sql"] for q in queries]
    assert not any(s.startswith("COPY") for s in sql)
    assert sum(s.startswith('INSERT INTO "workflows_app_target"') for s in sql) == 3
    assert list(run.targets.order_by("position").values_list("value", flat=True)) == [
        t.value for t in targets
    ]


def pairwise_fingerprint(workflow: Any, targets: list[Wanted], params: dict[str, str]) -> str:
    """The fingerprint as first written: (kind, value) pairs sorted, then hashed one by one."""
    digest = hashlib.sha256(f"{workflow.pk}\n".encode())
    for kind, value in sorted((str(t.key[0]), t.key[1]) for t in targets):
        digest.update(f"{kind}:{value}\n".encode())
    digest.update(json.dumps(dict(params), sort_keys=True).encode())
    return digest.hexdigest()


# Device names that are prefixes of one another ("PC", "PC-1", "PC-1 b") test the sort order.
_stems = st.text(st.characters(min_codepoint=32, max_codepoint=0x24F), min_size=1, max_size=6)
_lines = st.lists(
    st.one_of(
        st.tuples(_stems, st.lists(_stems, max_size=3)).map(
            lambda parts: "name:" + "".join([parts[0], *parts[1]])
        ),
        st.uuids().map(str),
        st.integers(0, 10**6).map(lambda n: SID.format(n)),
        st.from_regex(r"[a-z]{1,5}(\.[a-z]{1,3})?@example\.(com|org)", fullmatch=True),
    ),
    max_size=60,
)


@given(_lines, st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=2))
def test_fingerprint_is_the_same_digest_as_before(lines: list[str], params: dict[str, str]) -> None:
    # Runs asked for just before an upgrade must still be recognised as the same run after it.
    targets = parse_text("\n".join(lines)).targets
    workflow = SimpleNamespace(pk=7)
    expected = pairwise_fingerprint(workflow, targets, params)
    assert _fingerprint(workflow, targets, params) == expected  # type: ignore[arg-type]
