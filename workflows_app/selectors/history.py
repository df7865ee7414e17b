"""The execution history: which runs a person may review, narrowed by the filters they chose.

The filters are URL parameters people and tools rely on (the history page, its CSV export and
the API read the same names): `workflow` (part of a name, title or NQL id, any case, `#` or not),
`requester` (a username), `role`, `source`, `status`, `outcome` (a target outcome the run has),
`target` (a device name, Collector UUID, SID or UPN in the run, any case), `reason` (part of the
reason or ticket), `since` and `until` (ISO dates, whole days in the viewer's time zone, both
included), `mine` (1: only the viewer's runs) and `help` (1: only runs an employee asked the
helpdesk's help with; for those who see everyone's runs it shows everyone's, whatever `mine`
says: an employee asks for help with their own fix, so "my runs with help" would read empty and
the helpdesk would have to untick "only my runs" first). Without `since` and `until` the
history shows the last 7 days; `since=` (empty) asks for no lower bound. A value that cannot
be used is ignored, and said so.

Every filter is served by an index: (created_by, id), (workflow, id), (role, id), (source, id),
(status, id), created_at, the GIN index on the outcome counts, UPPER(value) on targets and the
trigram index on UPPER(reason). Pages are keyset pages on the id, newest first: one row more
than a page is read to tell whether another follows, and nothing counts the table.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from datetime import date, timedelta
from typing import TypeVar

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser, User
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.db.models.functions import Upper
from django.utils import timezone

from workflows_app.models import (
    HelpRequest,
    Outcome,
    Run,
    RunnableKind,
    RunStatus,
    Target,
    Workflow,
)
from workflows_app.roles import Role, user_role
from workflows_app.selectors.query_values import date_value, echo, start_of, text_value
from workflows_app.selectors.runs import sees_all_runs

T = TypeVar("T")

PAGE_SIZE = 50
EXPORT_CHUNK = 2_000
DEFAULT_DAYS = 7
# A workflow or requester filter matching more than this is too vague to be a filter.
MAX_MATCHES = 500

# The parameters a history URL may carry; anything else is reported as ignored.
FILTER_NAMES = (
    "workflow",
    "kind",
    "requester",
    "role",
    "source",
    "status",
    "outcome",
    "target",
    "reason",
    "since",
    "until",
    "mine",
    "help",
)
PAGING_NAMES = ("before",)
ROLE_VALUES = {role.name.lower(): role for role in Role}


@dataclass(frozen=True)
class HistoryFilters:
    """What the person asked to see, as cleaned values; empty values filter nothing.

    `since` and `until` are the days shown (the default week already applied); `all_time` says
    the person asked for no lower bound. `mine` is the scope actually used.
    """

    workflow: str = ""
    kind: str = ""  # workflow or remote_action
    requester: str = ""
    role: str = ""
    source: str = ""
    status: str = ""
    outcome: str = ""
    target: str = ""
    reason: str = ""
    since: date | None = None
    until: date | None = None
    mine: bool = False
    help: bool = False  # only runs with a help request
    all_time: bool = False
    # The scope the viewer gets without asking (helpdesk: their own runs): a link carries the
    # other choice only.
    mine_by_default: bool = field(default=False, compare=False)

    @property
    def narrowed(self) -> bool:
        """Whether anything beyond the date range narrows the list."""
        names = ("workflow", "kind", "requester", "role", "source", "status", "outcome", "target")
        return any(getattr(self, name) for name in (*names, "reason", "help"))

    def as_query(self) -> dict[str, str]:
        """The filters as URL parameters, to link to the next page, the export or the API."""
        query: dict[str, str] = {}
        for f in fields(self):
            if f.name in ("since", "until", "mine", "help", "all_time", "mine_by_default"):
                continue
            value = getattr(self, f.name)
            if value:
                query[f.name] = str(value)
        if self.all_time:
            query["since"] = ""
        elif self.since:
            query["since"] = self.since.isoformat()
        if self.until:
            query["until"] = self.until.isoformat()
        if self.help:
            query["help"] = "1"
        if self.mine != self.mine_by_default:
            query["mine"] = "1" if self.mine else "0"
        return query

    def slug(self) -> str:
        """The filters in a file name: letters, digits, '-' and '_' only, at most 80."""
        parts: list[str] = []
        names = ("workflow", "kind", "requester", "role", "source", "status", "outcome", "target")
        for name in names:
            if value := getattr(self, name):
                parts.append(str(value))
        if self.reason:
            parts.append(self.reason)
        if self.help:
            parts.append("help")
        if self.mine:
            parts.append("mine")
        if self.since:
            parts.append(f"from-{self.since.isoformat()}")
        if self.until:
            parts.append(f"to-{self.until.isoformat()}")
        text = "-".join(parts)
        cleaned = "".join(c if c.isascii() and (c.isalnum() or c in "-_") else "_" for c in text)
        return cleaned[:80].strip("-_")


@dataclass(frozen=True)
class HistoryPage:
    """A page of runs, newest first, and the id the next (older) page starts below."""

    runs: list[Run]
    filters: HistoryFilters
    next_before: int | None = None

    @property
    def next_query(self) -> dict[str, str]:
        if self.next_before is None:
            return {}
        return {**self.filters.as_query(), "before": str(self.next_before)}


# --- parsing --------------------------------------------------------------------------------


def parse_filters(
    params: Mapping[str, str], user: User | AnonymousUser, *, today: date | None = None
) -> tuple[HistoryFilters, list[str]]:
    """The filters in `params` for this viewer, and one sentence per value that was ignored."""
    ignored: list[str] = []
    today = today or timezone.localdate()
    for name in params:
        if name not in FILTER_NAMES and name not in PAGING_NAMES:
            ignored.append(f"Unknown filter {echo(name)}: ignored.")

    role = _choice(params, "role", ROLE_VALUES, ignored)
    kind = _choice(params, "kind", {k.value: k.value for k in RunnableKind}, ignored)
    source = _choice(params, "source", {s.value: s.value for s in Run.Source}, ignored)
    status = _choice(params, "status", {s.value: s.value for s in RunStatus}, ignored)
    outcome = _choice(params, "outcome", {o.value: o.value for o in Outcome}, ignored)

    since = date_value(params.get("since", ""), "since", ignored)
    until = date_value(params.get("until", ""), "until", ignored)
    if since and until and since > until:
        ignored.append(f"'since' ({since}) is after 'until' ({until}): both ignored.")
        since = until = None
    all_time = "since" in params and not text_value(params.get("since", ""))
    if since is None and not all_time:
        # The default week ends on `until` when one is given, else today.
        since = (until or today) - timedelta(days=DEFAULT_DAYS - 1)

    mine_by_default = _mine_by_default(user)
    mine = _mine(params, mine_by_default, ignored)
    wants_help = _flag(params, "help", ignored)
    filters = HistoryFilters(
        workflow=text_value(params.get("workflow", "")),
        kind=str(kind or ""),
        requester=text_value(params.get("requester", "")),
        role=role.value if isinstance(role, Role) else "",
        source=str(source or ""),
        status=str(status or ""),
        outcome=str(outcome or ""),
        target=text_value(params.get("target", "")),
        reason=text_value(params.get("reason", "")),
        since=since,
        until=until,
        mine=(mine and not wants_help) or not sees_all_runs(user),
        help=wants_help,
        all_time=all_time,
        mine_by_default=mine_by_default,
    )
    return filters, ignored


def _mine_by_default(user: User | AnonymousUser) -> bool:
    """Helpdesk start from their own runs; admins from everyone's; employees have only theirs."""
    return user_role(user) != Role.ADMIN


def _mine(params: Mapping[str, str], default: bool, ignored: list[str]) -> bool:
    raw = text_value(params.get("mine", ""))
    if not raw:
        return default
    if raw in ("1", "0"):
        return raw == "1"
    ignored.append(f"'mine' must be 1 or 0, not {echo(raw)}: ignored.")
    return default


def _flag(params: Mapping[str, str], name: str, ignored: list[str]) -> bool:
    raw = text_value(params.get(name, ""))
    if raw in ("", "0"):
        return False
    if raw == "1":
        return True
    ignored.append(f"'{name}' must be 1 or 0, not {echo(raw)}: ignored.")
    return False


def _choice(
    params: Mapping[str, str], name: str, values: Mapping[str, T], ignored: list[str]
) -> T | None:
    raw = text_value(params.get(name, ""))
    if not raw:
        return None
    value = values.get(raw) if raw in values else values.get(raw.lower())
    if value is None:
        known = ", ".join(values)
        ignored.append(f"Unknown {name} {echo(raw)}: ignored (one of {known}).")
    return value


# --- querying -------------------------------------------------------------------------------


def runs_matching(user: User | AnonymousUser, filters: HistoryFilters) -> QuerySet[Run]:
    """The runs this person may review that match the filters (not ordered).

    The scope is applied here, whatever the filters say: someone who may not see everyone's
    runs gets their own, `mine` or not.
    """
    runs = Run.objects.all()
    if filters.mine or not sees_all_runs(user):
        runs = runs.filter(created_by_id=user.pk)
    if filters.workflow:
        runs = runs.filter(workflow_id__in=_workflows_named(filters.workflow))
    if filters.kind:
        runs = runs.filter(kind=filters.kind)
    if filters.requester:
        runs = runs.filter(created_by_id__in=_people_named(filters.requester))
    if filters.role:
        runs = runs.filter(role=filters.role)
    if filters.source:
        runs = runs.filter(source=filters.source)
    if filters.status:
        runs = runs.filter(status=filters.status)
    if filters.outcome:
        # has_key is what the GIN index answers; a count of 0 means none.
        runs = runs.filter(outcome_counts__has_key=filters.outcome).filter(
            **{f"outcome_counts__{filters.outcome}__gt": 0}
        )
    if filters.target:
        named = Target.objects.annotate(upper_value=Upper("value")).filter(
            upper_value=filters.target.upper()
        )
        runs = runs.filter(pk__in=named.values("run_id"))
    if filters.reason:
        runs = runs.filter(reason__icontains=filters.reason)
    if filters.help:
        runs = runs.filter(Exists(HelpRequest.objects.filter(run_id=OuterRef("pk"))))
    if filters.since:
        runs = runs.filter(created_at__gte=start_of(filters.since))
    if filters.until:
        runs = runs.filter(created_at__lt=start_of(filters.until + timedelta(days=1)))
    return runs


# What a page of runs shows (the page, the API's list): decoding the JSON a run or a workflow
# keeps (parameters, the catalogue's raw answer) for 50 rows cost more than the query itself.
LIST_FIELDS = (
    *("created_at", "finished_at", "role", "source", "status", "reason", "outcome_counts"),
    *("kind", "workflow_nql_id", "workflow_name", "target_count", "duplicate_count"),
    *("created_by", "created_by__username"),
    *("workflow", "workflow__name", "workflow__curation", "workflow__curation__title"),
)


def history_page(
    user: User | AnonymousUser,
    filters: HistoryFilters,
    *,
    before: int | None = None,
    size: int | None = None,
) -> HistoryPage:
    """A page of the runs matching, with an id below `before`, newest first."""
    size = size or PAGE_SIZE
    runs = runs_matching(user, filters)
    if before is not None:
        runs = runs.filter(pk__lt=before)
    # has_help: the list's "Help requested" marker (an index lookup per row of the page).
    rows: list[Run] = list(
        runs.select_related("created_by", "workflow", "workflow__curation")
        .only(*LIST_FIELDS)
        .annotate(has_help=Exists(HelpRequest.objects.filter(run_id=OuterRef("pk"))))
        .order_by("-id")[: size + 1]
    )
    page = rows[:size]
    next_before = page[-1].pk if len(rows) > size else None
    return HistoryPage(runs=page, filters=filters, next_before=next_before)


def export_rows(user: User | AnonymousUser, filters: HistoryFilters) -> Iterator[Run]:
    """Every run matching, newest first, read in chunks (constant memory whatever the size)."""
    runs = runs_matching(user, filters).select_related("created_by", "workflow__curation")
    return runs.order_by("-id").iterator(chunk_size=EXPORT_CHUNK)


def _workflows_named(text: str) -> list[int]:
    """Ids of the workflows whose name, curated title or NQL id contains `text` (any case)."""
    bare = text.removeprefix("#")
    named = (
        Q(name__icontains=text)
        | Q(nql_id__icontains=bare)
        | Q(curation__title__icontains=text)
        | Q(uuid__iexact=text)
    )
    return list(Workflow.objects.filter(named).values_list("pk", flat=True)[:MAX_MATCHES])


def _people_named(text: str) -> list[int]:
    """Ids of the people with this username (any case); else those whose username contains it."""
    users = get_user_model().objects
    exact = list(users.filter(username__iexact=text).values_list("pk", flat=True)[:1])
    if exact:
        return exact
    return list(users.filter(username__icontains=text).values_list("pk", flat=True)[:MAX_MATCHES])
