"""What every figure of the full benchmark is measured against: the running pieces."""

from __future__ import annotations

from dataclasses import dataclass, field

# The stages of the full benchmark `--only` can pick, in the order they are measured, and what
# each reports: history (growth, API, portal vs admin at both sizes), catalogue, bulk (overhead,
# follow-up, worker memory), self_service, scaling, tokens, export (needs a bulk run: measures
# bulk too).
STAGES = ("history", "catalogue", "bulk", "self_service", "scaling", "tokens", "export")


@dataclass(frozen=True)
class BenchContext:
    """The services one full benchmark run started, and the environment to start more.

    `env` is what a child process (a gunicorn, a Celery worker, a script) needs to talk to the
    same scratch database, broker and simulator: DJANGO_SETTINGS_MODULE, DATABASE_URL, the broker
    and result URLs, and the NEXTHINK_* settings pointing at the simulator.
    """

    database_url: str  # the scratch database, migrated
    portal_url: str  # the portal under gunicorn, e.g. http://127.0.0.1:18000
    simulator_url: str  # the simulator's base URL (its API and /_simulator/ control endpoints)
    simulator_token: str  # sent as X-Simulator-Token to the control endpoints
    env: dict[str, str] = field(default_factory=dict)
    quick: bool = False  # tiny sizes, no thresholds (the test suite's smoke run)
    log_dir: str = ""  # where the children's logs are written (a temporary directory)
    repeat: int = 5  # timed samples of each measured request (after one warm-up)
    # The stages to measure (STAGES' names); empty: every one (`benchmark --only`).
    only: frozenset[str] = frozenset()

    def wants(self, stage: str) -> bool:
        """Whether this run measures `stage` (one of STAGES)."""
        return not self.only or stage in self.only
