"""Pytest fixtures running a real Celery worker process against the test database and simulator.

The worker is a separate process (`celery -A portal worker`) consuming a queue of its own on a
Redis server of its own (started for the session on a free port, so tests that restart it touch
no other process's Redis), with the pytest test database and the session's Nexthink simulator
in its environment. Tests that use it need committed rows: they use `transactional_db`.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from django.conf import settings

from workflows_app.simulator import Simulator

# On the session's private Redis server: the broker and the worker's cache (Nexthink token).
BROKER_DB = 0
CACHE_DB = 1
# Small numbers so retries and give-ups happen within seconds (read by portal/settings.py).
WORKER_SETTINGS = {
    "NEXTHINK_SUBMIT_BACKOFF_BASE": "0.5",
    "NEXTHINK_SUBMIT_BACKOFF_MAX": "2",
    # Tries of an unavailable batch span 6 s: waits 0.5, 1, 2, 2, 2 (submission.retry_schedule).
    "NEXTHINK_SUBMIT_RETRY_MINUTES": "0.1",
    "NEXTHINK_READ_TIMEOUT": "3",
    "NEXTHINK_CONNECT_TIMEOUT": "2",
    # A remote action's answer is waited for 2 + 1 s (the simulator's delay_seconds exceeds it).
    "NEXTHINK_CLASSIC_TIMEOUT_SECONDS": "2",
    "NEXTHINK_CLASSIC_READ_MARGIN": "1",
    "CELERY_TASK_TIME_LIMIT": "60",
    "CELERY_TASK_SOFT_TIME_LIMIT": "50",
    "BATCH_SWEEP_GRACE_SECONDS": "120",
    # A killed worker's messages stay unacknowledged (never redelivered) during a test.
    "CELERY_VISIBILITY_TIMEOUT": "10800",
    # Follow-up within a second or two when beat runs (the `celery_beat` fixture); the
    # catalogue sync, the sweeper and the dashboard's recount, which tests call themselves,
    # never come due by schedule (the session's beat lives longer than the recount's 5 minutes).
    "FOLLOW_UP_SECONDS": "0.5",
    "FOLLOW_UP_CYCLE_SECONDS": "0.5",
    # Targets of an unknown batch not found at Nexthink are not sent 3 s after its claim (the
    # simulator lists an execution as soon as it accepts it; checks come 0.5, 1, 2 s apart).
    "RECONCILE_GRACE_SECONDS": "3",
    "CATALOGUE_SYNC_MINUTES": "100000",
    "BATCH_SWEEP_SECONDS": "100000",
    "DASHBOARD_RECOUNT_MINUTES": "100000",
    # Flow runs whose advance message was lost are picked up within a couple of seconds.
    "FLOW_SWEEP_SECONDS": "2",
    # A webhook receiver that hangs keeps its worker process waiting longer than a run takes
    # (tests/test_webhook_pipeline.py: the run must end meanwhile).
    "WEBHOOK_READ_TIMEOUT": "20",
}


def wait_until(
    condition: Callable[[], Any],
    *,
    timeout: float,
    what: str,
    interval: float = 0.1,
    explain: Callable[[], str] | None = None,
) -> Any:
    """Poll `condition` until it returns something truthy; fail with `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            detail = f"\n{explain()}" if explain else ""
            raise AssertionError(f"Timed out after {timeout:g} s waiting for {what}{detail}")
        time.sleep(interval)


def _children_of(pid: int) -> list[int]:
    """Process ids whose parent is `pid` (read from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name is in parentheses and may hold spaces: split after the last ')'.
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 1 and int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


class WorkerProcess:
    """A Celery worker subprocess the tests can start, kill hard and start again."""

    def __init__(
        self,
        env: dict[str, str],
        queue: str,
        log_dir: Path,
        *,
        concurrency: int = 2,
        name: str = "pipeline",
    ) -> None:
        self.env = env
        self.queue = queue
        self.log_dir = log_dir
        self.concurrency = concurrency
        self.name = name  # several workers on one queue need names of their own
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path: Path | None = None
        self.generation = 0

    def start(self, timeout: float = 30) -> None:
        """Start a worker and wait until it says it is ready."""
        self.generation += 1
        self.log_path = self.log_dir / f"worker-{self.generation}.log"
        log = self.log_path.open("wb")
        argv = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "portal",
            "worker",
            "-l",
            "INFO",
            "-c",
            str(self.concurrency),
            "-P",
            "prefork",
            "-Q",
            self.queue,
            "-n",
            f"{self.name}-{self.queue}-{self.generation}@%h",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ]
        self.process = subprocess.Popen(
            argv, env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=settings.BASE_DIR
        )
        log.close()
        wait_until(
            lambda: (
                self.process is not None
                and (self.process.poll() is not None or b" ready." in self._log_bytes())
            ),
            timeout=timeout,
            what="the Celery worker to start",
            explain=self.log_tail,
        )
        if self.process.poll() is not None:
            raise RuntimeError(f"The Celery worker exited at start:\n{self.log_tail()}")

    @property
    def running(self) -> bool:
        """Whether the worker's main process is alive."""
        return self.process is not None and self.process.poll() is None

    def ensure_running(self) -> None:
        """Start a worker if none is alive (a test may have killed it)."""
        if not self.running:
            self.start()

    def pool_pids(self) -> list[int]:
        """The prefork pool's child processes."""
        return _children_of(self.process.pid) if self.running else []

    def kill_hard(self) -> None:
        """SIGKILL the pool children and the main process, as an OOM killer or a crash would."""
        assert self.process is not None
        for pid in [*self.pool_pids(), self.process.pid]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait(timeout=10)

    def kill_pool_child(self, pid: int) -> None:
        """SIGKILL one pool child; the main process survives and sees the worker lost."""
        os.kill(pid, signal.SIGKILL)

    def stop(self) -> None:
        """Stop the worker: warm shutdown, then cold, then kill."""
        if not self.running:
            return
        assert self.process is not None
        for sig, grace in ((signal.SIGTERM, 10), (signal.SIGQUIT, 5)):
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=grace)
                return
            except subprocess.TimeoutExpired:
                continue
        self.kill_hard()

    def forget_token(self) -> None:
        """Drop the worker's cached Nexthink token (the simulator forgets tokens on reset).

        Otherwise the first call of a test answers 401 and is sent again, which would blur the
        request counts the tests assert on. portal/test_settings.py prefixes cache keys with
        the pid of the process that loaded the settings: the worker's main process.
        """
        from django.core.cache.backends.redis import RedisCache

        from workflows_app.nexthink.auth import token_cache_key

        assert self.process is not None
        prefix = f"portal-test-{self.process.pid}"
        cache = RedisCache(self.env["CACHE_URL"], {"KEY_PREFIX": prefix})
        key = token_cache_key(self.env["NEXTHINK_TOKEN_URL"], self.env["NEXTHINK_CLIENT_ID"])
        cache.delete_many([key, f"{key}:lock"])
        cache.close()

    def _log_bytes(self) -> bytes:
        return self.log_path.read_bytes() if self.log_path and self.log_path.exists() else b""

    def log_tail(self, lines: int = 60) -> str:
        """The end of the current worker's log, for failure messages."""
        text = self._log_bytes().decode("utf-8", errors="replace")
        return "--- worker log ---\n" + "\n".join(text.splitlines()[-lines:])


class BeatProcess:
    """A `celery beat` subprocess publishing the portal's schedule to the test broker.

    Started once for the session and paused (SIGSTOP) between the tests that use it: a stopped
    process publishes nothing, as one that was never started, and resuming it takes no time
    where starting one takes a second or two.
    """

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env = env
        self.log_dir = log_dir
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = log_dir / "beat.log"
        self.broker_pid: int | None = None  # the Redis server beat connected to
        self._log_start = 0  # where this start's lines begin in the log

    def start(self, timeout: float = 30) -> None:
        """Start beat with a fresh schedule file and wait until it says it is starting."""
        schedule = self.log_dir / f"schedule-{uuid.uuid4().hex[:8]}"
        argv = [
            sys.executable,
            *("-m", "celery", "-A", "portal", "beat", "-l", "INFO"),
            *("-s", str(schedule), "--max-interval", "1"),
        ]
        self._log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                argv, env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=settings.BASE_DIR
            )
        wait_until(
            lambda: (
                self.process is not None
                and (
                    self.process.poll() is not None
                    or b"beat: Starting" in self._log_bytes()[self._log_start :]
                )
            ),
            timeout=timeout,
            what="celery beat to start",
            explain=self.log_tail,
        )
        if self.process.poll() is not None:
            raise RuntimeError(f"celery beat exited at start:\n{self.log_tail()}")

    @property
    def running(self) -> bool:
        """Whether the beat process is alive (paused or not)."""
        return self.process is not None and self.process.poll() is None

    def pause(self) -> None:
        """SIGSTOP: beat publishes nothing until resumed."""
        if self.running:
            assert self.process is not None
            self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT: beat sends what has come due, then keeps its schedule."""
        if self.running:
            assert self.process is not None
            self.process.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if not self.running:
            return
        assert self.process is not None
        self.resume()  # a stopped process would not act on SIGTERM
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def _log_bytes(self) -> bytes:
        return self.log_path.read_bytes() if self.log_path.exists() else b""

    def log_tail(self, lines: int = 40) -> str:
        text = self._log_bytes().decode("utf-8", errors="replace")
        return "--- beat log ---\n" + "\n".join(text.splitlines()[-lines:])


def _database_url() -> str:
    """The pytest test database (after django_db_setup renamed it) as a URL for the worker."""
    db = settings.DATABASES["default"]
    if db["ENGINE"] != "django.db.backends.postgresql":
        pytest.skip("the worker tests need PostgreSQL (a database both processes can use)")
    user = quote(db.get("USER") or "", safe="")
    password = quote(db.get("PASSWORD") or "", safe="")
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    return f"postgres://{auth}{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


@pytest.fixture(scope="session")
def celery_queue() -> str:
    """A queue name no other test session or engineer uses."""
    return f"pipeline-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"


class RedisServer:
    """A private `redis-server` subprocess on a port of its own, without persistence."""

    def __init__(self, port: int, log_path: Path) -> None:
        self.port = port
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, db: int) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self, timeout: float = 10) -> None:
        """Start the server and wait until it answers PING (fail if it exits instead)."""
        argv = [
            "redis-server",
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
        ]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        wait_until(
            lambda: self.process is not None and (self.process.poll() is not None or self.ping()),
            timeout=timeout,
            what=f"redis-server to answer on port {self.port}",
            explain=self.log_tail,
        )
        if self.process.poll() is not None:
            raise RuntimeError(
                f"redis-server exited at start on port {self.port}:\n{self.log_tail()}"
            )

    def ping(self) -> bool:
        """Whether this server (not another one that took the port) answers PING."""
        import redis

        if self.process is None:
            return False
        client = redis.Redis(
            host="127.0.0.1", port=self.port, socket_timeout=1, socket_connect_timeout=1
        )
        try:
            return bool(client.ping()) and (
                int(client.info("server")["process_id"]) == self.process.pid
            )
        except redis.RedisError:
            return False
        finally:
            client.close()

    def stop(self) -> None:
        """Kill the server (nothing is saved: every message is lost) and wait for it to exit."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)
        self.process = None

    def restart(self) -> None:
        """Kill the server and start it again on the same port, empty."""
        self.stop()
        self.start()

    def log_tail(self, lines: int = 20) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "--- redis-server log ---\n" + "\n".join(text.splitlines()[-lines:])


def _free_port() -> int:
    """A TCP port on 127.0.0.1 nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def pipeline_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A Redis server for the pipeline tests only: their broker and their worker's cache."""
    if shutil.which("redis-server") is None:
        pytest.fail(
            "The pipeline tests start a private Redis server, but `redis-server` is not on PATH; "
            "install Redis (e.g. apt-get install redis-server).",
            pytrace=False,
        )
    log_dir = tmp_path_factory.mktemp("redis")
    server: RedisServer | None = None
    for attempt in range(3):  # the free port may be taken between choosing and binding it
        server = RedisServer(_free_port(), log_dir / f"redis-{attempt}.log")
        try:
            server.start()
            break
        except (RuntimeError, AssertionError):
            server.stop()
            if attempt == 2:
                raise
    assert server is not None
    yield server
    server.stop()


def restart_redis(server: RedisServer) -> None:
    """Restart the pipeline tests' private Redis without saving: every message is lost."""
    server.restart()


@pytest.fixture(scope="session")
def celery_producer(celery_queue: str, pipeline_redis: RedisServer) -> Iterator[Any]:
    """The Celery app of this process, publishing to the test broker and queue."""
    from portal.celery import app

    saved = (app.conf.broker_url, app.conf.task_default_queue)
    app.conf.broker_url = pipeline_redis.url(BROKER_DB)
    use_default_queue(app, celery_queue)
    _reset_pools(app)
    yield app
    with app.connection_for_write() as conn:
        _drop_queue(conn.default_channel.client, celery_queue)
    _reset_pools(app)
    app.conf.broker_url = saved[0]
    use_default_queue(app, saved[1])


def use_default_queue(app: Any, queue: str) -> None:
    """Publish messages without a queue of their own to `queue` from now on.

    Celery caches the default queue the first time a message goes there without a queue of its
    own (a route that names none does that), so changing the setting alone may not be enough.
    """
    app.conf.task_default_queue = queue
    app.amqp.__dict__.pop("default_queue", None)


def _reset_pools(app: Any) -> None:
    """Forget pooled broker connections so the next publish connects to the configured URL."""
    if app._pool is not None:
        app._pool.force_close_all()
        app._pool = None
    app.amqp._producer_pool = None


def _drop_queue(client: Any, queue: str) -> None:
    """Delete the queue's messages, including those a killed worker left unacknowledged."""
    for key in client.scan_iter(match=f"{queue}*"):
        client.delete(key)
    for key in client.scan_iter(match=f"_kombu.binding*.{queue}"):
        client.delete(key)
    for tag, raw in client.hgetall("unacked").items():
        if queue.encode() in raw:
            client.hdel("unacked", tag)
            client.zrem("unacked_index", tag)


@pytest.fixture(scope="session")
def celery_worker_process(
    django_db_setup: None,
    simulator_server: Simulator,
    celery_producer: Any,
    celery_queue: str,
    pipeline_redis: RedisServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[WorkerProcess]:
    """A worker process for the session (stopped before the test database is dropped)."""
    env = worker_env(simulator_server, pipeline_redis, celery_queue)
    worker = WorkerProcess(env, celery_queue, tmp_path_factory.mktemp("celery"))
    worker.start()
    yield worker
    worker.stop()


def worker_outbox_dir() -> Path:
    """Where the tests' workers write the mails they send (Django's file backend), per session."""
    return Path(tempfile.gettempdir()) / f"portal-worker-outbox-{os.getpid()}"


def worker_mails() -> list[EmailMessage]:
    """The mails the tests' workers sent this session, oldest first."""
    found: list[EmailMessage] = []
    folder = worker_outbox_dir()
    files = sorted(folder.glob("*.log"), key=lambda p: p.stat().st_mtime) if folder.exists() else []
    for path in files:
        for chunk in path.read_bytes().split(b"\n" + b"-" * 79 + b"\n"):
            if chunk.strip():
                parsed = message_from_bytes(chunk, policy=default_policy)
                assert isinstance(parsed, EmailMessage)
                found.append(parsed)
    return found


def worker_env(simulator: Simulator, redis_server: RedisServer, queue: str) -> dict[str, str]:
    """What a worker or beat process of the tests needs: test database, private Redis, simulator."""
    return {
        **os.environ,
        **WORKER_SETTINGS,
        "DJANGO_SETTINGS_MODULE": "portal.test_settings",
        "DATABASE_URL": _database_url(),
        "CELERY_BROKER_URL": redis_server.url(BROKER_DB),
        # The worker caches its Nexthink token: on the private server too, not the shared one.
        "REDIS_URL": redis_server.url(CACHE_DB),
        "CACHE_URL": redis_server.url(CACHE_DB),
        "CELERY_TASK_DEFAULT_QUEUE": queue,
        "SECRET_KEY": settings.SECRET_KEY,
        "NEXTHINK_API_URL": simulator.base_url,
        "NEXTHINK_TOKEN_URL": simulator.token_url,
        "NEXTHINK_CLIENT_ID": simulator.client_id,
        "NEXTHINK_CLIENT_SECRET": simulator.client_secret,
        "NEXTHINK_CLASSIC_URL": simulator.base_url,
        "NEXTHINK_CLASSIC_USER": simulator.classic.user,
        "NEXTHINK_CLASSIC_PASSWORD": simulator.classic.password,
        "PYTHONUNBUFFERED": "1",
        # The worker's mails, for tests to read: its own process has no locmem outbox to share.
        "EMAIL_BACKEND": "django.core.mail.backends.filebased.EmailBackend",
        "EMAIL_FILE_PATH": str(worker_outbox_dir()),
    }


@pytest.fixture(scope="session")
def celery_beat_process(
    celery_worker_process: WorkerProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BeatProcess]:
    """The session's beat, not started until a test asks for it (see `celery_beat`)."""
    beat = BeatProcess(celery_worker_process.env, tmp_path_factory.mktemp("beat"))
    yield beat
    beat.stop()


@pytest.fixture
def celery_beat(
    celery_worker: WorkerProcess, celery_beat_process: BeatProcess, pipeline_redis: RedisServer
) -> Iterator[BeatProcess]:
    """Beat beside the test's worker: the follow-up runs every half second, as in production.

    The session's beat, resumed for the test and paused after it; started again if a test
    restarted the private Redis server under it (its connection would be gone).
    """
    beat = celery_beat_process
    redis_pid = pipeline_redis.process.pid if pipeline_redis.process else None
    if beat.running and beat.broker_pid == redis_pid:
        beat.resume()
    else:
        beat.stop()
        beat.start()
        beat.broker_pid = redis_pid
    yield beat
    beat.pause()


# Settings of the follow-up schedule this process shares with the worker while one runs.
SHARED_SCHEDULE = ("FOLLOW_UP_SECONDS", "FOLLOW_UP_CYCLE_SECONDS", "RECONCILE_GRACE_SECONDS")


@pytest.fixture
def celery_worker(
    celery_worker_process: WorkerProcess,
    transactional_db: None,
    simulator: Simulator,
    settings: Any,
    pipeline_redis: RedisServer,
    celery_queue: str,
) -> Iterator[WorkerProcess]:
    """A running worker, a fresh simulator and committed rows; faults cleared afterwards.

    This process plans checks the worker makes when a test calls a service itself (the sweeper
    standing in for beat, an admin's re-send): on the worker's schedule, not production's 30 s.
    """
    import redis

    from workflows_app.models import Batch, BatchState

    for name in SHARED_SCHEDULE:
        setattr(settings, name, float(WORKER_SETTINGS[name]))
    celery_worker_process.ensure_running()
    celery_worker_process.forget_token()
    yield celery_worker_process
    # Let calls in flight end before the rows are flushed, so no test sees another's requests.
    simulator.faults.clear()
    # What a run's end sets off (its notifications, their mails) must end too: a worker writing
    # while the tables are flushed deadlocks the flush. Best effort: a batch whose worker was
    # killed stays `sending`, its messages unacknowledged, and must not fail teardown.
    broker = redis.Redis.from_url(pipeline_redis.url(BROKER_DB))
    deadline = time.monotonic() + 20
    while celery_worker_process.running and time.monotonic() < deadline:
        sending = Batch.objects.filter(state=BatchState.SENDING).exists()
        if not sending and not _aftermath_due(broker, celery_queue):
            break
        time.sleep(0.05)
    broker.close()


def _aftermath_due(client: Any, queue: str, *, within: float = 2.0) -> bool:
    """Whether a notification message of the queue is to run now (or within `within` seconds),
    waiting or taken by a worker and not yet acknowledged; one planned later (a retry's
    countdown) does not count."""
    from workflows_app.services import dispatch

    # What a run's end sets off: a test that ends with its run still has these to come.
    aftermath = [
        name.encode()
        for name in (
            dispatch.NOTIFY,
            dispatch.SEND_EMAIL,
            dispatch.DELIVER_WEBHOOK,
            dispatch.HELP_EMAIL,
        )
    ]
    soon = time.time() + within
    raws: list[bytes] = [r for r in client.hvals("unacked") if queue.encode() in r]
    for key in client.scan_iter(match=f"{queue}*"):
        if client.type(key) == b"list":
            raws += client.lrange(key, 0, -1)
    for raw in raws:
        if not any(name in raw for name in aftermath):
            continue
        message = json.loads(raw)
        message = message[0] if isinstance(message, list) else message
        eta = message.get("headers", {}).get("eta")
        if eta is None or datetime.fromisoformat(eta).timestamp() <= soon:
            return True
    return False


# --- rows the pipeline tests need ----------------------------------------------------------


@pytest.fixture
def role_user(django_user_model: Any) -> Callable[..., Any]:
    """Build a user with a role; the group is created if a transactional flush removed it."""
    from django.contrib.auth.models import Group

    def make(username: str, role: Any) -> Any:
        user = django_user_model.objects.create_user(
            username=username, email=f"{username}@example.com", password="pw-12345-test"
        )
        if role is not None:
            group, _ = Group.objects.get_or_create(name=role.value)
            user.groups.add(group)
        return user

    return make


@pytest.fixture
def sim_workflow() -> Callable[..., Any]:
    """Build the catalogue row of one of the simulator's default workflows (overrides allowed)."""
    from django.utils import timezone

    from workflows_app.bench.pipeline_support import workflow_fields
    from workflows_app.models import Workflow, WorkflowCuration
    from workflows_app.simulator.catalogue import default_workflows

    known = {w.id: w for w in default_workflows()}

    def make(
        nql_id: str, *, self_service: bool = False, allowed_roles: Any = None, **overrides: Any
    ) -> Workflow:
        fields = {**workflow_fields(known[nql_id], timezone.now()), **overrides}
        workflow = Workflow.objects.create(nql_id=nql_id, **fields)
        if self_service or allowed_roles is not None:
            WorkflowCuration.objects.create(
                workflow=workflow, self_service=self_service, allowed_roles=allowed_roles or []
            )
        return workflow

    return make
