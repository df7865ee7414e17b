"""Injected failures (latency, 5xx, 429, hung answers) so the portal's error paths get exercised."""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field, fields
from typing import Any

DEFAULT_PATHS = ("/api/",)


@dataclass
class FaultConfig:
    """What to inject; every field is settable through configure() or POST /_simulator/faults.

    ``paths`` lists path prefixes the faults apply to. The default covers the API but not the
    token endpoint, so a fresh client's first token request is not the one that gets a 429;
    add "/oauth2/" to fault the token endpoint too.
    """

    latency: float = 0.0
    error_rate: float = 0.0
    error_status: int = 503
    rate_limit_count: int = 0
    rate_limit_retry_after: float = 1.0
    timeout_after_accept_count: int = 0
    hang_seconds: float = 5.0
    # The next N accepted execute POSTs are answered HTTP 500: the executions exist and progress.
    fail_after_accept_count: int = 0
    # The next N NQL exports end in ERROR (with an errorDescription) instead of COMPLETED.
    export_error_count: int = 0
    fail_next: list[int] = field(default_factory=list)
    # Executions of these workflows (NQL ids) end in failure on every target, whatever it is.
    fail_workflows: list[str] = field(default_factory=list)
    paths: list[str] = field(default_factory=lambda: list(DEFAULT_PATHS))
    seed: int = 1234

    def to_json(self) -> dict[str, Any]:
        """The configuration as JSON."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class Injected:
    """A fault to answer with instead of the real answer."""

    status: int
    reason: str
    retry_after: float | None = None


_FIELD_NAMES = {f.name for f in fields(FaultConfig)}


class Faults:
    """The live fault configuration; consuming a fault is atomic across handler threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self.config = FaultConfig()
        self._random = random.Random(self.config.seed)

    def configure(self, **changes: Any) -> FaultConfig:
        """Change the given fields, keep the others; raises ValueError on unknown or bad ones."""
        unknown = set(changes) - _FIELD_NAMES
        if unknown:
            raise ValueError(f"unknown fault settings: {', '.join(sorted(unknown))}")
        if "paths" in changes and changes["paths"] is None:
            changes["paths"] = list(DEFAULT_PATHS)
        with self._lock:
            candidate = FaultConfig(**{**self.config.to_json(), **changes})
            _check(candidate)
            self.config = candidate
            if "seed" in changes or "error_rate" in changes:
                self._random = random.Random(candidate.seed)
            return self.config

    def clear(self) -> None:
        """No more faults; requests hanging on a fault are released now."""
        with self._lock:
            self.config = FaultConfig()
            self._random = random.Random(self.config.seed)
            self._wake.set()
            self._wake = threading.Event()

    def applies_to(self, path: str) -> bool:
        """Whether faults are configured for this path."""
        return any(path.startswith(prefix) for prefix in self.config.paths)

    def latency(self, path: str) -> float:
        """Seconds to wait before answering this path."""
        return self.config.latency if self.applies_to(path) else 0.0

    def take_injected(self, path: str) -> Injected | None:
        """The fault to answer this request with, if any (consumes counts)."""
        with self._lock:
            cfg = self.config
            if not any(path.startswith(prefix) for prefix in cfg.paths):
                return None
            if cfg.fail_next:
                status = cfg.fail_next.pop(0)
                retry = cfg.rate_limit_retry_after if status == 429 else None
                return Injected(status, "fail_next", retry)
            if cfg.rate_limit_count > 0:
                cfg.rate_limit_count -= 1
                return Injected(429, "rate_limit", cfg.rate_limit_retry_after)
            if cfg.error_rate > 0 and self._random.random() < cfg.error_rate:
                return Injected(cfg.error_status, "error_rate")
            return None

    def _take_count(self, name: str, path: str) -> bool:
        """Consume one of the counted faults `name` for this path, if any is left."""
        with self._lock:
            cfg = self.config
            if getattr(cfg, name) <= 0 or not any(path.startswith(p) for p in cfg.paths):
                return False
            setattr(cfg, name, getattr(cfg, name) - 1)
            return True

    def take_hang(self, path: str) -> float:
        """Seconds to hold an accepted execute answer back (consumes a count), else 0."""
        if self._take_count("timeout_after_accept_count", path):
            return self.config.hang_seconds
        return 0.0

    def take_fail_after_accept(self, path: str) -> bool:
        """Whether to answer an accepted execute with a 500 (consumes a count)."""
        return self._take_count("fail_after_accept_count", path)

    def fails_workflow(self, workflow_id: str) -> bool:
        """Whether executions of this workflow are to fail on every target."""
        return workflow_id in self.config.fail_workflows

    def take_export_error(self, path: str) -> bool:
        """Whether the export starting now is to end in ERROR (consumes a count)."""
        return self._take_count("export_error_count", path)

    def sleep(self, seconds: float) -> None:
        """Wait, but wake early when faults are cleared or the simulator stops."""
        if seconds > 0:
            with self._lock:
                wake = self._wake
            wake.wait(seconds)

    def wake_all(self) -> None:
        """Release every request sleeping on a fault (used on stop)."""
        with self._lock:
            self._wake.set()
            self._wake = threading.Event()


def _check(cfg: FaultConfig) -> None:
    if not 0.0 <= cfg.error_rate <= 1.0:
        raise ValueError("error_rate must be between 0 and 1")
    for name in ("latency", "rate_limit_retry_after", "hang_seconds"):
        if not isinstance(getattr(cfg, name), int | float) or getattr(cfg, name) < 0:
            raise ValueError(f"{name} must be a number >= 0")
    for name in (
        "rate_limit_count",
        "timeout_after_accept_count",
        "fail_after_accept_count",
        "export_error_count",
    ):
        if not isinstance(getattr(cfg, name), int) or getattr(cfg, name) < 0:
            raise ValueError(f"{name} must be an integer >= 0")
    if not 500 <= cfg.error_status <= 599:
        raise ValueError("error_status must be a 5xx status")
    if not isinstance(cfg.fail_next, list) or not all(
        isinstance(s, int) and 400 <= s <= 599 for s in cfg.fail_next
    ):
        raise ValueError("fail_next must be a list of 4xx/5xx status codes")
    if not isinstance(cfg.fail_workflows, list) or not all(
        isinstance(w, str) for w in cfg.fail_workflows
    ):
        raise ValueError("fail_workflows must be a list of workflow NQL ids")
    if not isinstance(cfg.paths, list) or not all(isinstance(p, str) for p in cfg.paths):
        raise ValueError("paths must be a list of path prefixes")
    cfg.fail_next = list(cfg.fail_next)
    cfg.fail_workflows = list(cfg.fail_workflows)
    cfg.paths = list(cfg.paths)
