"""What every figure of the full benchmark is measured against: the running pieces."""

from __future__ import annotations

from dataclasses import dataclass, field


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
