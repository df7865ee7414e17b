"""The real pieces one full benchmark runs against, each started and always stopped.

A scratch PostgreSQL database (created on the configured server, migrated, dropped at the end
unless kept), the simulator, gunicorn serving `portal.wsgi` and Celery workers: subprocesses
with logs in a temporary directory, waited for by polling (never a fixed sleep), stopped in
`finally` blocks so that an error or Ctrl-C leaves nothing running.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
import requests
from django.conf import settings

from workflows_app.bench.context import BenchContext

# Tests use Redis DB 15 (portal/test_settings.py) and the default 0: the benchmark takes 12,
# with a queue and cache prefix of its own, so two runs never share work.
BENCH_REDIS_DB = 12
SCRATCH_PREFIX = "portal_bench_"
START_TIMEOUT = 60.0
GUNICORN_WORKERS = 4
CLIENT_ID, CLIENT_SECRET = "portal-demo", "demo-secret"


def wait_until(check: Callable[[], Any], *, timeout: float, what: str) -> Any:
    """Poll `check` until it returns something truthy; RuntimeError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise RuntimeError(f"Timed out after {timeout:g} s waiting for {what}.")
        time.sleep(0.1)


def free_port() -> int:
    """A loopback TCP port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_url() -> str:
    """The configured PostgreSQL server as a URL, without a database name."""
    db = settings.DATABASES["default"]
    if db["ENGINE"] != "django.db.backends.postgresql":
        raise RuntimeError("The full benchmark needs PostgreSQL (set DATABASE_URL).")
    user = quote(db.get("USER") or "", safe="")
    password = quote(db.get("PASSWORD") or "", safe="")
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    return f"postgres://{auth}{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/"


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", "", ""))


def scratch_names() -> list[str]:
    """The scratch databases on the configured server (a smoke test checks none is left)."""
    with psycopg.connect(with_database(server_url(), "postgres"), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s ORDER BY 1",
            (SCRATCH_PREFIX.replace("_", r"\_") + "%",),
        ).fetchall()
    return [r[0] for r in rows]


@dataclass
class Child:
    """A subprocess of the harness and its log file."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def terminate(self) -> None:
        """SIGTERM the whole process group (not waited for: see `reap`)."""
        if self.alive():
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    def reap(self, deadline: float) -> None:
        """Wait for the process until `deadline` (monotonic), then SIGKILL its group."""
        try:
            self.process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.process.wait(timeout=10)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL the whole process group if it lingers."""
        stop_all([self])


def stop_all(started: list[Child]) -> None:
    """Stop children together: SIGTERM to each, then up to 15 s for all before SIGKILL.

    Together, because each one's shutdown is mostly waiting (a worker's warm shutdown, beat's
    sleep): one after another, a stage with four workers and beat spent seconds doing nothing.
    """
    for started_child in started:
        started_child.terminate()
    deadline = time.monotonic() + 15
    for started_child in started:
        started_child.reap(deadline)


@dataclass(frozen=True)
class Spec:
    """A child to start: its name (and log's), command line, environment and readiness check."""

    name: str
    argv: list[str]
    env: dict[str, str]
    ready: Callable[[], bool]


@contextmanager
def children(specs: list[Spec], logs: Path) -> Iterator[list[Child]]:
    """Start every spec at once, wait until all are ready, stop them all together at the end.

    Each in a process group of its own: a Ctrl-C reaches the command first, which then stops
    the children. Started together, their imports overlap instead of queueing one by one.
    """
    started: list[Child] = []
    try:
        for spec in specs:
            log = logs / f"{spec.name}.log"
            with log.open("wb") as out:
                process = subprocess.Popen(
                    spec.argv,
                    env=spec.env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    cwd=settings.BASE_DIR,
                    start_new_session=True,
                )
            started.append(Child(spec.name, process, log))
        waiting = dict(zip([c.name for c in started], specs, strict=True))

        def all_up() -> bool:
            for started_child in started:
                if not started_child.alive():
                    raise RuntimeError(
                        f"{started_child.name} exited at start:\n{started_child.log_tail()}"
                    )
            for name, spec in list(waiting.items()):
                if spec.ready():
                    del waiting[name]
            return not waiting

        names = ", ".join(spec.name for spec in specs)
        wait_until(all_up, timeout=START_TIMEOUT, what=f"{names} to be ready")
        yield started
    finally:
        stop_all(started)


@contextmanager
def child(
    name: str, argv: list[str], env: dict[str, str], logs: Path, ready: Callable[[], bool]
) -> Iterator[Child]:
    """Start `argv` in a process group of its own, wait until `ready()`, stop it at the end."""
    with children([Spec(name, argv, env, ready)], logs) as started:
        yield started[0]


def run_python(env: dict[str, str], *argv: str) -> str:
    """Run `python <argv>` in the project with `env`; its output, or RuntimeError with it."""
    done = subprocess.run(
        [sys.executable, *argv],
        env=env,
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        raise RuntimeError(f"{' '.join(argv)} failed:\n{done.stdout}{done.stderr[-3000:]}")
    return done.stdout


def manage(env: dict[str, str], *args: str) -> str:
    """Run `manage.py <args>` with `env`."""
    return run_python(env, "manage.py", *args)


@contextmanager
def scratch_database(*, keep: bool, on_drop: Callable[[str], None]) -> Iterator[str]:
    """A new database on the configured server; yields its URL; dropped unless `keep`."""
    name = SCRATCH_PREFIX + secrets.token_hex(4)
    admin_url = with_database(server_url(), "postgres")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield with_database(server_url(), name)
    finally:
        if not keep:
            with psycopg.connect(admin_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            on_drop(name)


def _answers(url: str, headers: dict[str, str] | None = None) -> bool:
    try:
        return requests.get(url, headers=headers, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def says_ready(log: Path) -> Callable[[], bool]:
    """Whether a Celery worker's log says it is ready."""
    return lambda: log.exists() and b" ready." in log.read_bytes()


def child_env(*, database_url: str, simulator_url: str, tag: str) -> dict[str, str]:
    """What every child needs: production settings on the scratch database, loopback HTTP."""
    redis = urlsplit(str(settings.REDIS_URL or "redis://127.0.0.1:6379/0"))
    redis_url = urlunsplit((redis.scheme, redis.netloc, f"/{BENCH_REDIS_DB}", "", ""))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PORTAL_DEMO", "CELERY_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="portal.settings",
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        CACHE_KEY_PREFIX=f"bench-{tag}",
        CELERY_TASK_DEFAULT_QUEUE=f"bench-{tag}",
        SECRET_KEY=secrets.token_urlsafe(40),
        DEBUG="false",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        # Loopback HTTP: production defaults assume HTTPS (README "Security settings").
        SECURE_SSL_REDIRECT="false",
        SESSION_COOKIE_SECURE="false",
        CSRF_COOKIE_SECURE="false",
        SECURE_HSTS_SECONDS="0",
        # The benchmark's own clients would otherwise be throttled like a runaway script.
        API_RATE_LIMIT_PER_MINUTE="100000000",
        NEXTHINK_API_URL=simulator_url,
        NEXTHINK_TOKEN_URL=f"{simulator_url}/oauth2/default/v1/token",
        NEXTHINK_CLIENT_ID=CLIENT_ID,
        NEXTHINK_CLIENT_SECRET=CLIENT_SECRET,
        PYTHONUNBUFFERED="1",
    )
    return env


def worker_specs(ctx: BenchContext, count: int, *, name: str = "worker") -> list[Spec]:
    """`count` Celery worker processes (one task at a time each) on the benchmark's queue."""
    queue = ctx.env["CELERY_TASK_DEFAULT_QUEUE"]
    logs = Path(ctx.log_dir)
    specs = []
    for n in range(count):
        label = f"{name}-{secrets.token_hex(2)}-{n}"
        argv = [
            *(sys.executable, "-m", "celery", "-A", "portal", "worker"),
            *("-l", "INFO", "-c", "1", "-Q", queue),
            *("-n", f"{label}@%h", "--without-gossip", "--without-mingle"),
        ]
        specs.append(Spec(label, argv, ctx.env, says_ready(logs / f"{label}.log")))
    return specs


def beat_spec(ctx: BenchContext, **settings_env: str) -> Spec:
    """celery beat publishing the portal's schedule (follow-up, sweeper, ...) to the queue.

    Not started by `full_harness`: its catalogue sync would call Nexthink during figures that
    must not. `settings_env` overrides settings for beat alone, e.g. FOLLOW_UP_SECONDS="1".
    """
    logs = Path(ctx.log_dir)
    label = f"beat-{secrets.token_hex(2)}"
    argv = [
        *(sys.executable, "-m", "celery", "-A", "portal", "beat", "-l", "INFO"),
        *("-s", str(logs / f"{label}-schedule"), "--max-interval", "1"),
    ]
    log = logs / f"{label}.log"
    return Spec(
        label, argv, {**ctx.env, **settings_env}, lambda: b"beat: Starting" in log.read_bytes()
    )


@contextmanager
def celery_workers(ctx: BenchContext, count: int, *, name: str = "worker") -> Iterator[list[Child]]:
    """`count` more Celery worker processes on the benchmark's queue, started together."""
    with children(worker_specs(ctx, count, name=name), Path(ctx.log_dir)) as started:
        yield started


@contextmanager
def celery_beat(ctx: BenchContext, **settings_env: str) -> Iterator[None]:
    """celery beat on the benchmark's queue (see `beat_spec`)."""
    with children([beat_spec(ctx, **settings_env)], Path(ctx.log_dir)):
        yield


@contextmanager
def full_harness(
    *, quick: bool, keep: bool, on_drop: Callable[[str], None], workers: int = 1
) -> Iterator[BenchContext]:
    """Everything started, as a BenchContext; everything stopped (and dropped) on the way out.

    `on_drop` hears the scratch database's name once it is dropped.
    """
    tag = secrets.token_hex(4)
    token = secrets.token_urlsafe(24)
    with ExitStack() as stack:
        # SIGTERM (a CI timeout, `kill`) unwinds like Ctrl-C, through every `finally` below.
        previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
        stack.callback(signal.signal, signal.SIGTERM, previous)
        logs = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="portal-bench-")))
        database_url = stack.enter_context(scratch_database(keep=keep, on_drop=on_drop))
        sim_port = free_port()
        simulator_url = f"http://127.0.0.1:{sim_port}"
        control = {"X-Simulator-Token": token}
        stack.enter_context(
            child(
                "simulator",
                [sys.executable, "-m", "workflows_app.simulator", "--port", str(sim_port)],
                {**os.environ, "SIMULATOR_CONTROL_TOKEN": token},
                logs,
                lambda: _answers(f"{simulator_url}/_simulator/settings", control),
            )
        )
        env = child_env(database_url=database_url, simulator_url=simulator_url, tag=tag)
        # Side by side: collectstatic never opens the database. DEBUG off serves hashed static
        # files (WhiteNoise's manifest) from STATIC_ROOT.
        with ThreadPoolExecutor(max_workers=2) as pool:
            prepared = [
                pool.submit(manage, env, "migrate", "--noinput", "-v", "0"),
                pool.submit(manage, env, "collectstatic", "--noinput", "-v", "0"),
            ]
            for done in prepared:
                done.result()
        port = free_port()
        portal_url = f"http://127.0.0.1:{port}"
        stack.enter_context(
            child(
                "gunicorn",
                [
                    *(sys.executable, "-m", "gunicorn", "portal.wsgi"),
                    *("--bind", f"127.0.0.1:{port}", "--workers", str(GUNICORN_WORKERS)),
                    *("--access-logfile", "-", "--timeout", "120"),
                ],
                env,
                logs,
                lambda: _answers(f"{portal_url}/healthz"),
            )
        )
        ctx = BenchContext(
            database_url=database_url,
            portal_url=portal_url,
            simulator_url=simulator_url,
            simulator_token=token,
            env=env,
            log_dir=str(logs),
            quick=quick,
        )
        stack.enter_context(celery_workers(ctx, workers))
        yield ctx
