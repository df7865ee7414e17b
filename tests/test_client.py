"""The Nexthink client over real HTTP: typed outcomes of every fault, tokens, spec conformance.

Faults the simulator offers are tested against it (`simulator`, `nexthink_client` fixtures).
What it cannot do (drop a connection after reading a request, break a chunked answer, hang the
token endpoint, refuse a token twice) is tested against a tiny loopback server defined here.
No database is needed.
"""

from __future__ import annotations

import gzip
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from pydantic import SecretStr

from workflows_app.nexthink import (
    BadRequest,
    ClientConfig,
    Dependency,
    DeviceData,
    ExecutionRequest,
    ExportLinkExpired,
    ExternalIdsExecutionRequest,
    Forbidden,
    InvalidResponse,
    MemoryTokenCache,
    NexthinkClient,
    OutcomeUnknown,
    RateLimited,
    TokenProvider,
    TriggerMethod,
    Unauthorized,
    Unavailable,
    UserData,
)
from workflows_app.nexthink.auth import token_cache_key
from workflows_app.simulator.spec import validate_request

SECRET = "s3cr3t-client-secret-value"
DEVICE = "0e4b3b8c-6f3a-4c1e-9d55-3e0c1c6f9a11"
EXECUTE_V1 = "/api/v1/workflows/execute"

# -- a loopback server for what the simulator cannot do ------------------------------------------


@dataclass
class Seen:
    """One request the loopback server received."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


Action = Callable[[BaseHTTPRequestHandler], None]


def reply(status: int, body: Any = None, headers: dict[str, str] | None = None) -> Action:
    """Answer with JSON (or raw bytes/str)."""
    if isinstance(body, bytes | str):
        raw = body.encode() if isinstance(body, str) else body
        content_type = "text/html"
    else:
        raw, content_type = (
            json.dumps(body).encode() if body is not None else b"",
            "application/json",
        )

    def act(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(raw)))
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(raw)

    return act


def drop(handler: BaseHTTPRequestHandler) -> None:
    """Read the request, then close the connection without a word."""
    handler.close_connection = True
    handler.connection.shutdown(socket.SHUT_RDWR)


def broken_chunked(handler: BaseHTTPRequestHandler) -> None:
    """Start a 200 answer, then cut it in the middle of its body."""
    handler.wfile.write(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        b'Transfer-Encoding: chunked\r\n\r\n20\r\n{"requestUuid": "r'
    )
    handler.wfile.flush()
    drop(handler)


@dataclass
class LoopbackServer:
    """Real HTTP on 127.0.0.1; each path answers from a queue of actions, then a default."""

    routes: dict[str, list[Action]] = field(default_factory=dict)
    defaults: dict[str, Action] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    token_delay: float = 0.0
    token_count: int = 0
    release: threading.Event = field(default_factory=threading.Event)

    def start(self) -> LoopbackServer:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # no 40 ms delayed-ACK stall per keep-alive answer

            def log_message(self, *args: Any) -> None:
                pass

            def handle_one(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                parts = urlsplit(self.path)
                seen = Seen(
                    self.command,
                    parts.path,
                    parse_qs(parts.query),
                    dict(self.headers.items()),
                    self.rfile.read(length) if length else b"",
                )
                owner.seen.append(seen)
                owner.action_for(seen)(self)

            do_GET = do_POST = handle_one

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def hang(self, seconds: float, then: Action) -> Action:
        """Wait (past the client's read timeout), then answer."""

        def act(handler: BaseHTTPRequestHandler) -> None:
            self.release.wait(seconds)
            then(handler)

        return act

    def action_for(self, seen: Seen) -> Action:
        queue = self.routes.get(seen.path)
        if queue:
            return queue.pop(0)
        if seen.path in self.defaults:
            return self.defaults[seen.path]
        if seen.path == "/token":
            return self.issue_token
        return reply(404, {"code": "NOT_FOUND", "details": seen.path})

    def issue_token(self, handler: BaseHTTPRequestHandler) -> None:
        self.token_count += 1
        number = self.token_count
        time.sleep(self.token_delay)
        body = {"access_token": f"tok-{number}-abcdef", "token_type": "Bearer", "expires_in": 900}
        reply(200, body)(handler)

    def api(self) -> list[Seen]:
        """The API requests seen (token requests left out)."""
        return [s for s in self.seen if s.path != "/token"]


@pytest.fixture
def loopback() -> Iterator[LoopbackServer]:
    server = LoopbackServer().start()
    yield server
    server.stop()


def client_for(
    api_url: str,
    token_url: str,
    *,
    cache: MemoryTokenCache | None = None,
    client_id: str = "portal-test",
    secret: str = SECRET,
    **overrides: Any,
) -> NexthinkClient:
    settings: dict[str, Any] = {
        "connect_timeout": 1.0,
        "read_timeout": 0.5,
        "get_retries": 2,
        "backoff_base": 0.01,
    }
    settings.update(overrides)
    config = ClientConfig(
        api_url=api_url,
        token_url=token_url,
        client_id=client_id,
        client_secret=SecretStr(secret),
        source="portal-tests",
        **settings,
    )
    return NexthinkClient(config, token_cache=cache)


def loopback_client(server: LoopbackServer, **overrides: Any) -> NexthinkClient:
    return client_for(server.url, server.url + "/token", **overrides)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


EXECUTION = {"requestUuid": "r-1", "executionsUuids": ["e-1"]}


def v1_request() -> ExecutionRequest:
    return ExecutionRequest(workflowId="#clear_teams_cache", devices=[DEVICE])


def assert_conforms(seen: list[Seen]) -> None:
    """Every API request passes the spec check, headers included."""
    for request in seen:
        errors = validate_request(
            request.method, request.path, request.body, request.headers, query=request.query
        )
        assert errors == [], (request.method, request.path, errors)


# -- transport outcomes (loopback) -----------------------------------------------------------


def test_post_connection_dropped_after_sending_is_outcome_unknown(loopback):
    loopback.routes[EXECUTE_V1] = [drop]
    with pytest.raises(OutcomeUnknown):
        loopback_client(loopback).execute_v1(v1_request())
    assert len(loopback.api()) == 1  # never re-sent


def test_post_answer_cut_mid_body_is_outcome_unknown(loopback):
    loopback.routes[EXECUTE_V1] = [broken_chunked]
    with pytest.raises(OutcomeUnknown):
        loopback_client(loopback).execute_v1(v1_request())
    assert len(loopback.api()) == 1


def test_post_read_timeout_is_outcome_unknown_and_not_resent(loopback):
    loopback.routes[EXECUTE_V1] = [loopback.hang(3, reply(200, EXECUTION))]
    started = time.monotonic()
    with pytest.raises(OutcomeUnknown, match="may have run"):
        loopback_client(loopback).execute_v1(v1_request())
    assert time.monotonic() - started < 2
    assert len(loopback.api()) == 1


def test_get_dropped_or_timed_out_is_retried(loopback):
    path = "/api/v1/workflows/details"
    loopback.routes[path] = [drop, loopback.hang(3, reply(200, [])), reply(200, [])]
    assert loopback_client(loopback).get_workflow("#x") == []
    assert len(loopback.api()) == 3


def test_connection_refused_is_unavailable():
    url = f"http://127.0.0.1:{free_port()}"
    client = client_for(url, url + "/token")
    with pytest.raises(Unavailable, match="could not get a token"):
        client.execute_v1(v1_request())


def test_api_refusing_connections_is_unavailable_for_post_and_get(loopback):
    dead = f"http://127.0.0.1:{free_port()}"
    client = client_for(dead, loopback.url + "/token")
    with pytest.raises(Unavailable, match="could not connect"):
        client.execute_v1(v1_request())
    with pytest.raises(Unavailable):
        client.list_workflows(Dependency.DEVICE, TriggerMethod.API)
    assert loopback.token_count == 1


def test_token_endpoint_timeout_means_the_execution_was_not_sent(loopback):
    loopback.routes["/token"] = [loopback.hang(3, loopback.issue_token)]
    with pytest.raises(Unavailable):
        loopback_client(loopback).execute_v1(v1_request())
    assert loopback.api() == []


@pytest.mark.parametrize(("status", "error"), [(401, Unauthorized), (503, Unavailable)])
def test_token_endpoint_failures_are_typed(loopback, status, error):
    loopback.routes["/token"] = [reply(status, {"error": "invalid_client"})]
    with pytest.raises(error):
        loopback_client(loopback).execute_v1(v1_request())
    assert loopback.api() == []


# -- answers (loopback) ------------------------------------------------------------------------


def test_bad_request_carries_the_apis_code_and_details(loopback):
    body = {"code": "INVALID_WORKFLOW_ID", "details": "No workflow #nope"}
    loopback.routes[EXECUTE_V1] = [reply(400, body)]
    with pytest.raises(BadRequest) as caught:
        loopback_client(loopback).execute_v1(v1_request())
    assert (caught.value.code, caught.value.details, caught.value.status) == (
        "INVALID_WORKFLOW_ID",
        "No workflow #nope",
        400,
    )


def test_bad_request_with_a_non_json_body_keeps_the_text(loopback):
    loopback.routes[EXECUTE_V1] = [reply(400, "<html><h1>Bad   request</h1></html>")]
    with pytest.raises(BadRequest) as caught:
        loopback_client(loopback).execute_v1(v1_request())
    assert caught.value.details == "<html><h1>Bad request</h1></html>"


def test_forbidden_carries_the_apis_code(loopback):
    loopback.routes[EXECUTE_V1] = [reply(403, {"code": "NO_API_TRIGGER", "details": "off"})]
    with pytest.raises(Forbidden, match="NO_API_TRIGGER"):
        loopback_client(loopback).execute_v1(v1_request())


def test_rate_limit_with_an_http_date(loopback):
    loopback.routes[EXECUTE_V1] = [reply(429, {}, {"Retry-After": "Wed, 21 Oct 2099 07:28:00 GMT"})]
    with pytest.raises(RateLimited) as caught:
        loopback_client(loopback).execute_v1(v1_request())
    assert caught.value.retry_after is not None and caught.value.retry_after > 10**8


def test_get_does_not_wait_for_a_retry_after_longer_than_allowed(loopback):
    loopback.routes["/api/v1/workflows"] = [reply(429, {}, {"Retry-After": "3600"})]
    with pytest.raises(RateLimited):
        loopback_client(loopback).list_workflows(Dependency.USER, TriggerMethod.API)
    assert len(loopback.api()) == 1


def test_trigger_answer_as_array_or_single_object(loopback):
    path = f"/api/v1/workflows/workflows/{DEVICE}/execution/{DEVICE}/trigger"
    loopback.routes[path] = [reply(200, [{"requestUuid": "a"}]), reply(200, {"requestUuid": "b"})]
    client = loopback_client(loopback)
    assert [r.requestUuid for r in client.trigger_wait_for_event(DEVICE, DEVICE)] == ["a"]
    assert [r.requestUuid for r in client.trigger_wait_for_event(DEVICE, DEVICE, {"k": "v"})] == [
        "b"
    ]
    assert [s.json() for s in loopback.api()] == [{}, {"parameters": {"k": "v"}}]
    with pytest.raises(ValueError):
        client.trigger_wait_for_event("../../etc", DEVICE)
    assert_conforms(loopback.api())


def test_a_malformed_workflow_is_skipped_not_fatal(loopback):
    good = {
        "id": "#a",
        "uuid": DEVICE,
        "name": "A",
        "description": "",
        "status": "ACTIVE",
        "lastUpdateTime": "2025-01-01T00:00:00Z",
        "triggerMethods": {"apiEnabled": True},
        "versions": [],
    }
    loopback.routes["/api/v1/workflows"] = [reply(200, [good, {"id": "#broken"}])]
    workflows = loopback_client(loopback).list_workflows(Dependency.DEVICE, TriggerMethod.API, True)
    assert [w.id for w in workflows] == ["#a"]
    assert workflows[0].api_enabled
    assert loopback.api()[0].query == {
        "dependency": ["DEVICE"],
        "triggerMethod": ["API"],
        "fetchOnlyActiveWorkflows": ["true"],
    }


def test_headers_on_every_call(loopback):
    loopback.routes[EXECUTE_V1] = [reply(200, EXECUTION)]
    loopback.routes["/api/v1/workflows/details"] = [reply(200, [])]
    client = loopback_client(loopback)
    client.execute_v1(v1_request())
    client.get_workflow("#clear_teams_cache")
    for seen in loopback.api():
        assert seen.headers["Source"] == "portal-tests"
        assert seen.headers["Accept"] == "application/json"
        assert seen.headers["Authorization"] == "Bearer tok-1-abcdef"
    assert loopback.api()[1].query == {"nqlId": ["#clear_teams_cache"]}
    assert_conforms(loopback.api())


# -- tokens (loopback) ------------------------------------------------------------------------


def test_token_request_is_client_credentials_with_basic_auth(loopback):
    loopback.routes["/api/v1/workflows/details"] = [reply(200, [])]
    cache = MemoryTokenCache()
    loopback_client(loopback, cache=cache).get_workflow("#x")
    token_request = loopback.seen[0]
    assert token_request.path == "/token" and token_request.method == "POST"
    assert parse_qs(token_request.body.decode()) == {
        "grant_type": ["client_credentials"],
        "scope": ["service:integration"],
    }
    assert token_request.headers["Authorization"].startswith("Basic ")
    key = token_cache_key(loopback.url + "/token", "portal-test")
    assert cache.get(key) == "tok-1-abcdef"
    assert SECRET not in key and "portal-test" not in key


def test_401_twice_is_unauthorized_after_exactly_one_retry(loopback):
    loopback.defaults["/api/v1/workflows/details"] = reply(401)
    with pytest.raises(Unauthorized):
        loopback_client(loopback).get_workflow("#x")
    assert len(loopback.api()) == 2
    assert loopback.token_count == 2


def test_401_on_post_is_resent_once_with_a_new_token(loopback):
    loopback.routes[EXECUTE_V1] = [reply(401), reply(200, EXECUTION)]
    assert loopback_client(loopback).execute_v1(v1_request()).requestUuid == "r-1"
    auths = [s.headers["Authorization"] for s in loopback.api()]
    assert auths == ["Bearer tok-1-abcdef", "Bearer tok-2-abcdef"]


def test_concurrent_get_token_on_an_empty_cache_makes_one_token_request(loopback):
    loopback.token_delay = 0.3
    cache = MemoryTokenCache()
    providers = [
        loopback_client(loopback, cache=cache).tokens for _ in range(4)
    ]  # several "processes"
    barrier = threading.Barrier(20)
    tokens: list[str] = []

    def fetch(provider: TokenProvider) -> None:
        barrier.wait()
        tokens.append(provider.get_token())

    threads = [threading.Thread(target=fetch, args=(providers[i % 4],)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert tokens == ["tok-1-abcdef"] * 20
    assert loopback.token_count == 1


def test_a_dead_lock_holder_does_not_block_forever(loopback):
    cache = MemoryTokenCache()
    provider = loopback_client(loopback, cache=cache).tokens
    cache.add(provider.lock_key, "a process that died", 60)
    provider.lock_wait = 0.3
    started = time.monotonic()
    assert provider.get_token() == "tok-1-abcdef"
    assert 0.3 <= time.monotonic() - started < 2
    assert loopback.token_count == 1


def test_a_lock_released_without_a_token_lets_a_waiter_fetch(loopback):
    cache = MemoryTokenCache()
    provider = loopback_client(loopback, cache=cache).tokens
    cache.add(provider.lock_key, "a process whose fetch failed", 60)
    threading.Timer(0.1, cache.delete, args=(provider.lock_key,)).start()
    started = time.monotonic()
    assert provider.get_token() == "tok-1-abcdef"
    assert time.monotonic() - started < provider.lock_wait


def test_token_is_refetched_refresh_margin_before_expiry(loopback):
    now = [1000.0]
    cache = MemoryTokenCache(clock=lambda: now[0])
    provider = loopback_client(loopback, cache=cache, refresh_margin=60).tokens
    assert provider.get_token() == "tok-1-abcdef"
    now[0] += 839
    assert provider.get_token() == "tok-1-abcdef"
    now[0] += 2  # 900 - 60 s after it was issued
    assert provider.get_token() == "tok-2-abcdef"
    assert loopback.token_count == 2


def test_token_serves_its_whole_stated_lifetime_by_default(loopback):
    """One token request per lifetime: no early refresh unless a margin is configured."""
    now = [1000.0]
    cache = MemoryTokenCache(clock=lambda: now[0])
    provider = loopback_client(loopback, cache=cache).tokens
    assert provider.get_token() == "tok-1-abcdef"
    now[0] += 899.5
    assert provider.get_token() == "tok-1-abcdef"
    now[0] += 1  # past the 900 s the token endpoint stated
    assert provider.get_token() == "tok-2-abcdef"
    assert loopback.token_count == 2


def test_invalidate_only_drops_the_refused_token(loopback):
    provider = loopback_client(loopback).tokens
    token = provider.get_token()
    provider.invalidate("some-older-token")
    assert provider.get_token() == token
    provider.invalidate(token)
    assert provider.get_token() != token


def test_no_secret_or_token_in_logs_reprs_or_errors(loopback, caplog):
    caplog.set_level(logging.DEBUG)
    loopback.routes[EXECUTE_V1] = [reply(401), reply(200, EXECUTION), drop]
    loopback.routes["/api/v1/workflows/details"] = [reply(503), reply(400, {"code": "X"})]
    client = loopback_client(loopback)
    client.execute_v1(v1_request())
    failures = []
    for call in (lambda: client.execute_v1(v1_request()), lambda: client.get_workflow("#x")):
        with pytest.raises(Exception) as caught:
            call()
        failures.append(f"{caught.value!s} {caught.value!r}")
    seen_text = " ".join([caplog.text, repr(client), repr(client.config), repr(client.tokens)])
    seen_text += " ".join(failures)
    for secret in (SECRET, "tok-1-abcdef", "tok-2-abcdef"):
        assert secret not in seen_text
    assert "Fetched a Nexthink token" in caplog.text  # logging did happen


# -- against the simulator -------------------------------------------------------------------


def sim_client(simulator: Any, cache: MemoryTokenCache | None = None, **overrides: Any) -> Any:
    return client_for(
        simulator.base_url,
        simulator.token_url,
        cache=cache,
        client_id=simulator.client_id,
        secret=simulator.client_secret,
        **overrides,
    )


def api_requests(simulator: Any, path: str | None = None) -> list[Any]:
    return [
        r
        for r in simulator.state.requests
        if r.path.startswith("/api/") and (path is None or r.path == path)
    ]


def assert_simulator_saw_only_valid_requests(simulator: Any) -> None:
    requests_seen = api_requests(simulator)
    assert requests_seen
    for request in requests_seen:
        assert request.spec_errors == [], (request.path, request.spec_errors)
        headers = {**request.headers, "Authorization": "Bearer redacted-by-simulator"}
        errors = validate_request(
            request.method, request.path, request.body, headers, query=parse_qs(request.query)
        )
        assert errors == [], (request.method, request.path, errors)


def test_every_call_conforms_to_the_spec(simulator, nexthink_client):
    client = nexthink_client
    workflows = client.list_workflows(Dependency.DEVICE, TriggerMethod.API, only_active=True)
    assert workflows and all(w.api_enabled and w.is_active for w in workflows)
    details = client.get_workflow(workflows[0].id)
    assert [w.uuid for w in details] == [workflows[0].uuid]
    v1 = client.execute_v1(ExecutionRequest(workflowId=workflows[0].id, devices=[DEVICE]))
    v2 = client.execute_v2(
        ExternalIdsExecutionRequest(
            workflowId=workflows[0].id, devices=[DeviceData(name="EMP-LT-0142")]
        )
    )
    assert len(v1.executionsUuids) == len(v2.executionsUuids) == 1
    users = client.list_workflows(Dependency.USER, TriggerMethod.API)
    waiting = next(w for w in users if w.id == "#reset_mfa")
    started = client.execute_v2(
        ExternalIdsExecutionRequest(
            workflowId=waiting.id, users=[UserData(upn="employee@example.com")]
        )
    )
    simulator.advance()  # the execution reaches its wait step
    resumed = client.trigger_wait_for_event(
        waiting.uuid, started.executionsUuids[0], {"Approval": "yes"}
    )
    assert resumed and resumed[0].requestUuid
    rows = client.nql_execute("#portal_execution_status", {"request_id": v2.requestUuid})
    assert [row["execution_id"] for row in rows.data] == v2.executionsUuids
    assert_simulator_saw_only_valid_requests(simulator)
    assert {r.headers.get("Source") for r in api_requests(simulator)} == {client.config.source}


def test_latency_within_the_timeout_is_fine(simulator):
    simulator.faults.configure(latency=0.2)
    client = sim_client(simulator, read_timeout=2.0)
    assert client.execute_v1(v1_request()).executionsUuids
    assert len(simulator.state.executions) == 1


def test_5xx_on_get_is_retried_then_succeeds(simulator):
    simulator.faults.configure(fail_next=[503, 500])
    workflows = sim_client(simulator).list_workflows(Dependency.DEVICE, TriggerMethod.API)
    assert workflows
    assert [r.status for r in api_requests(simulator)] == [503, 500, 200]


def test_5xx_on_get_exhausts_retries_as_unavailable(simulator):
    simulator.faults.configure(error_rate=1.0)
    with pytest.raises(Unavailable):
        sim_client(simulator, get_retries=2).get_workflow("#clear_teams_cache")
    assert len(api_requests(simulator)) == 3


def test_503_on_execute_is_unavailable_and_not_retried(simulator):
    simulator.faults.configure(fail_next=[503])
    with pytest.raises(Unavailable):
        sim_client(simulator).execute_v1(v1_request())
    assert len(api_requests(simulator, EXECUTE_V1)) == 1
    assert simulator.state.executions == []


@pytest.mark.parametrize("status", [500, 501, 502, 504, 599])
def test_5xx_other_than_503_on_execute_is_outcome_unknown(simulator, status):
    """A 500, or a gateway's 502/504, may come after Nexthink ran the request: never resend."""
    simulator.faults.configure(fail_next=[status])
    with pytest.raises(OutcomeUnknown):
        sim_client(simulator).execute_v1(v1_request())
    assert len(api_requests(simulator, EXECUTE_V1)) == 1


def test_429_on_execute_is_rate_limited_with_retry_after(simulator):
    simulator.faults.configure(rate_limit_count=1, rate_limit_retry_after=7)
    with pytest.raises(RateLimited) as caught:
        sim_client(simulator).execute_v1(v1_request())
    assert caught.value.retry_after == 7
    assert len(api_requests(simulator, EXECUTE_V1)) == 1


def test_429_on_get_waits_retry_after_then_succeeds(simulator):
    simulator.faults.configure(rate_limit_count=1, rate_limit_retry_after=0.3)
    started = time.monotonic()
    assert sim_client(simulator).get_workflow("#clear_teams_cache")
    assert time.monotonic() - started >= 0.3
    assert [r.status for r in api_requests(simulator)] == [429, 200]


def test_429_on_nql_is_retried_because_it_is_a_read(simulator):
    simulator.faults.configure(rate_limit_count=1, rate_limit_retry_after=0.1)
    result = sim_client(simulator).nql_execute("#portal_user_devices", {"upn": "x@example.com"})
    assert result.queryId == "#portal_user_devices"
    assert len(api_requests(simulator)) == 2


def test_read_timeout_after_acceptance_is_outcome_unknown(simulator):
    simulator.faults.configure(timeout_after_accept_count=1, hang_seconds=3)
    with pytest.raises(OutcomeUnknown):
        sim_client(simulator, read_timeout=0.5).execute_v1(v1_request())
    assert len(simulator.state.executions) == 1
    assert len(api_requests(simulator, EXECUTE_V1)) == 1


def test_expired_token_is_dropped_and_the_call_retried_once(simulator):
    client = sim_client(simulator)
    client.get_workflow("#clear_teams_cache")
    simulator.state.expire_tokens()
    assert client.execute_v1(v1_request()).executionsUuids
    assert simulator.state.token_requests == 2
    assert [r.status for r in api_requests(simulator, EXECUTE_V1)] == [401, 200]
    assert len(simulator.state.executions) == 1


def test_token_is_reused_across_calls(simulator):
    client = sim_client(simulator)
    for _ in range(5):
        client.get_workflow("#clear_teams_cache")
    client.execute_v1(v1_request())
    assert simulator.state.token_requests == 1


def test_token_is_shared_by_two_clients_through_one_cache(simulator):
    cache = MemoryTokenCache()
    sim_client(simulator, cache=cache).get_workflow("#clear_teams_cache")
    sim_client(simulator, cache=cache).execute_v1(v1_request())
    assert simulator.state.token_requests == 1


def test_wrong_secret_is_unauthorized(simulator):
    client = client_for(
        simulator.base_url, simulator.token_url, client_id=simulator.client_id, secret="wrong"
    )
    with pytest.raises(Unauthorized):
        client.get_workflow("#clear_teams_cache")
    assert api_requests(simulator) == []


def test_unknown_workflow_is_a_bad_request_with_the_apis_code(simulator):
    with pytest.raises(BadRequest) as caught:
        sim_client(simulator).execute_v1(ExecutionRequest(workflowId="#nope", devices=[DEVICE]))
    assert caught.value.code and caught.value.details


def test_simulator_secret_and_token_never_logged(simulator, caplog):
    caplog.set_level(logging.DEBUG)
    cache = MemoryTokenCache()
    client = sim_client(simulator, cache=cache)
    client.get_workflow("#clear_teams_cache")
    simulator.state.expire_tokens()
    client.execute_v1(v1_request())
    token = cache.get(client.tokens.key)
    assert token
    assert token not in caplog.text and simulator.client_secret not in caplog.text


# -- NQL export -------------------------------------------------------------------------------

EXECUTIONS_QUERY = "#portal_workflow_executions"


def downloads(simulator: Any) -> list[Any]:
    return [r for r in simulator.state.requests if r.path.startswith("/_exports/")]


def completed_link(client: NexthinkClient, export_id: str) -> str:
    status = client.nql_export_status(export_id)
    assert status.done and status.resultsFileUrl, status
    return status.resultsFileUrl


def test_export_is_polled_until_completed_then_downloaded(simulator):
    simulator.configure(execution_seconds=0, export_seconds=0.3)
    client = sim_client(simulator)
    names = ["EMP-LT-0142", "FAIL-LT-0001", "GHOST-PC"]
    run = client.execute_v2(
        ExternalIdsExecutionRequest(
            workflowId="#flush_dns_cache", devices=[DeviceData(name=n) for n in names]
        )
    )
    export_id = client.nql_export(EXECUTIONS_QUERY, {"request_id": run.requestUuid})
    seen = []
    for _ in range(100):
        status = client.nql_export_status(export_id)
        seen.append(status.status)
        if status.done or status.failed:
            break
        time.sleep(0.05)
    assert status.done and not status.failed and status.resultsFileUrl
    assert seen[0] == "SUBMITTED" and "IN_PROGRESS" in seen
    rows = client.download_export(status.resultsFileUrl)
    assert [(r["execution_id"], r["device.name"], r["status"]) for r in rows] == list(
        zip(run.executionsUuids, names, ["success", "failure", "failure"], strict=True)
    )
    assert rows[0]["outcome"] == "success" and rows[0]["user.upn"] == ""
    assert_simulator_saw_only_valid_requests(simulator)
    [download] = downloads(simulator)
    # The simulator answers 400 to a download carrying a token, as S3 does.
    assert download.status == 200
    assert "Authorization" not in download.headers and "Source" not in download.headers


def test_export_in_error_carries_its_description(simulator):
    simulator.configure(export_seconds=0)
    simulator.faults.configure(export_error_count=1)
    client = sim_client(simulator)
    status = client.nql_export_status(client.nql_export(EXECUTIONS_QUERY, {"request_id": "x"}))
    assert status.failed and not status.done
    assert status.errorDescription and "export" in status.errorDescription
    assert status.resultsFileUrl is None


def test_starting_an_export_is_retried_like_a_read(simulator):
    simulator.faults.configure(fail_next=[503, 500], paths=["/api/v1/nql/export"])
    export_id = sim_client(simulator).nql_export(EXECUTIONS_QUERY, {"request_id": "x"})
    assert export_id
    assert [r.status for r in api_requests(simulator)] == [503, 500, 200]


def test_429_and_503_on_export_status_are_retried(simulator):
    simulator.configure(export_seconds=0)
    client = sim_client(simulator)
    export_id = client.nql_export(EXECUTIONS_QUERY, {"request_id": "x"})
    simulator.faults.configure(
        fail_next=[429, 503], rate_limit_retry_after=0.05, paths=["/api/v1/nql/status/"]
    )
    assert client.nql_export_status(export_id).done
    statuses = [
        r.status for r in api_requests(simulator) if r.path.startswith("/api/v1/nql/status")
    ]
    assert statuses == [429, 503, 200]


def test_unknown_export_is_a_bad_request_with_the_apis_code(simulator):
    with pytest.raises(BadRequest) as caught:
        sim_client(simulator).nql_export_status("00000000-0000-4000-8000-000000000000")
    assert (caught.value.status, caught.value.code) == (404, "EXPORT_NOT_FOUND")


def test_expired_link_is_a_clear_error_and_not_retried(simulator):
    simulator.configure(export_seconds=0, export_url_seconds=0)
    client = sim_client(simulator)
    link = completed_link(client, client.nql_export(EXECUTIONS_QUERY, {"request_id": "x"}))
    with pytest.raises(ExportLinkExpired, match="expired") as caught:
        client.download_export(link)
    assert caught.value.code == "AccessDenied"
    assert len(downloads(simulator)) == 1
    simulator.configure(export_url_seconds=900)  # the status hands out a fresh link
    export_id = urlsplit(link).path.rsplit("/", 1)[1].removesuffix(".csv")
    assert client.download_export(completed_link(client, export_id)) == []


def test_download_is_retried_on_5xx_then_unavailable(simulator):
    simulator.configure(export_seconds=0)
    client = sim_client(simulator)
    link = completed_link(client, client.nql_export(EXECUTIONS_QUERY, {"request_id": "x"}))
    simulator.faults.configure(fail_next=[503, 502], paths=["/_exports/"])
    assert client.download_export(link) == []
    assert [r.status for r in downloads(simulator)] == [503, 502, 200]
    simulator.faults.configure(error_rate=1.0)
    with pytest.raises(Unavailable) as caught:
        client.download_export(link)
    assert caught.value.__cause__ is None and caught.value.__context__ is None


def test_download_sends_nothing_of_the_client_and_needs_no_token(loopback):
    loopback.routes["/exports/f.csv"] = [reply(200, "a,b\n1,2\n")]
    client = loopback_client(loopback)
    rows = client.download_export(loopback.url + "/exports/f.csv?X-Amz-Signature=abc&x=1")
    assert rows == [{"a": "1", "b": "2"}]
    [seen] = loopback.seen
    assert seen.query == {"X-Amz-Signature": ["abc"], "x": ["1"]}
    assert "Authorization" not in seen.headers and "Source" not in seen.headers
    assert loopback.token_count == 0


def test_csv_with_a_bom_gzip_blank_lines_and_ragged_rows(loopback):
    text = '\ufeffrequest_id, status\nr-1,success\n\nr-2\n"r,3",failure,extra\n'
    loopback.routes["/f.csv.gz"] = [reply(200, gzip.compress(text.encode()))]
    rows = loopback_client(loopback).download_export(loopback.url + "/f.csv.gz")
    assert rows == [
        {"request_id": "r-1", "status": "success"},
        {"request_id": "r-2", "status": ""},
        {"request_id": "r,3", "status": "failure"},
    ]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"a,b\n\xff\xfe,1\n", "not UTF-8"),
        (b"\x1f\x8b\x08\x00broken", "broken gzip"),
        (b"\x28\xb5\x2f\xfd\x00", "ZSTD"),
    ],
)
def test_unreadable_files_are_invalid_responses(loopback, body, message):
    loopback.routes["/f.csv"] = [reply(200, body)]
    with pytest.raises(InvalidResponse, match=message):
        loopback_client(loopback).download_export(loopback.url + "/f.csv")


def test_a_refused_download_keeps_the_storage_errors_code(loopback):
    xml = "<?xml version='1.0'?><Error><Code>NoSuchKey</Code><Message>Gone</Message></Error>"
    loopback.routes["/f.csv"] = [reply(404, xml)]
    with pytest.raises(BadRequest) as caught:
        loopback_client(loopback).download_export(loopback.url + "/f.csv")
    assert (caught.value.status, caught.value.code, caught.value.details) == (
        404,
        "NoSuchKey",
        "Gone",
    )
    with pytest.raises(InvalidResponse, match="http"):
        loopback_client(loopback).download_export("file:///etc/passwd")


def test_export_status_answers_are_read_tolerantly(loopback):
    loopback.routes["/api/v1/nql/status/a%2Fb"] = [reply(200, {"status": "QUEUED", "x": 1})]
    loopback.routes["/api/v1/nql/status/done"] = [reply(200, {"status": "COMPLETED"})]
    client = loopback_client(loopback)
    status = client.nql_export_status("a/b")
    assert status.status == "QUEUED" and not status.done and not status.failed
    with pytest.raises(InvalidResponse, match="without its link"):
        client.nql_export_status("done")
    with pytest.raises(ValueError):
        client.nql_export_status("")
    assert_conforms(loopback.api())


def test_the_link_signature_and_token_never_reach_logs_or_errors(simulator, caplog):
    caplog.set_level(logging.DEBUG)
    simulator.configure(export_seconds=0)
    cache = MemoryTokenCache()
    client = sim_client(simulator, cache=cache)
    link = completed_link(client, client.nql_export(EXECUTIONS_QUERY, {"request_id": "x"}))
    client.download_export(link)
    simulator.faults.configure(error_rate=1.0, paths=["/_exports/"])
    failures = []
    with pytest.raises(Unavailable) as unavailable:
        client.download_export(link)
    failures.append(unavailable.value)
    simulator.faults.clear()
    simulator.configure(export_url_seconds=0)
    expired = completed_link(client, urlsplit(link).path.rsplit("/", 1)[1].removesuffix(".csv"))
    with pytest.raises(ExportLinkExpired) as refused:
        client.download_export(expired)
    failures.append(refused.value)
    signatures = [parse_qs(urlsplit(u).query)["X-Amz-Signature"][0] for u in (link, expired)]
    token = cache.get(client.tokens.key)
    assert token
    seen_text = caplog.text + " ".join(f"{f!s} {f!r}" for f in failures)
    for secret in (*signatures, token):
        assert secret not in seen_text
    assert urlsplit(link).path in caplog.text  # logged, without its query string
