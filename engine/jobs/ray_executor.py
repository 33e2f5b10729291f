"""The Ray executor: each clip is one Ray task, on this machine or on a cluster.

Ray is an optional extra (`pip install 'stillmotion[ray]'`) imported only here and only when used. Without an
address a private single-machine cluster is started (no dashboard); with one, the batch joins that cluster. Token
authentication stays on either way: StillMotion refuses to run with RAY_AUTH_MODE set to anything but "token".
(Ray's own servers listen on the node's address; on one machine the token is what keeps others out.)

Media travel one of two ways: with `shared_storage` every node reads the inputs and writes the clip at the same
paths (a shared mount); without it (the default) the driver ships the inputs as bytes through Ray's object store
and the task returns the clip's bytes, which the driver writes atomically.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import Any

from ..errors import BadInputError
from ..request import RenderRequest
from .local import needs_gpu
from .worker import execute, execute_to_bytes

#: Times Ray re-runs a task whose worker process or node died (render errors are never retried).
MAX_RETRIES = 2
AUTH_MODE_ENV = "RAY_AUTH_MODE"


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise BadInputError("the ray executor needs Ray: pip install 'stillmotion[ray]'") from None
    return ray


def _require_token_auth() -> None:
    """Turn token authentication on for this process (and the Ray processes it starts) before Ray reads it."""
    mode = os.environ.get(AUTH_MODE_ENV)
    if mode is not None and mode.strip().lower() != "token":
        raise BadInputError(f"{AUTH_MODE_ENV}={mode}: StillMotion only uses Ray with token authentication "
                            f"(unset it or set {AUTH_MODE_ENV}=token; see docs/cluster.md)")
    if mode is None:
        os.environ[AUTH_MODE_ENV] = "token"
        if "ray" in sys.modules:  # Ray caches its config at import: make it see the new mode
            with contextlib.suppress(ImportError, AttributeError):
                from ray._raylet import Config

                Config.initialize("")


def _token_auth_active() -> bool:
    try:
        from ray._private.authentication.authentication_utils import is_token_auth_enabled
    except ImportError:  # an older Ray without token authentication
        return False
    return bool(is_token_auth_enabled())


def connect(address: str | None, num_cpus: int | None) -> bool:
    """Start a private local cluster or join `address`; True when this call started Ray (so it stops it)."""
    if "ray" in sys.modules and sys.modules["ray"].is_initialized():
        if not _token_auth_active():
            raise BadInputError("this process's Ray connection has token authentication off; StillMotion keeps "
                                "it on (set RAY_AUTH_MODE=token before Ray starts)")
        return False
    _require_token_auth()
    ray = _import_ray()
    try:
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(num_cpus=num_cpus or os.cpu_count() or 1, include_dashboard=False, log_to_driver=False)
    except Exception as exc:  # ConnectionError, AuthenticationError, ValueError: all mean "cannot use Ray here"
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        where = f"the Ray cluster at {address}" if address else "a local Ray cluster"
        raise BadInputError(f"cannot start or join {where}: {message}") from None
    if not _token_auth_active():
        ray.shutdown()
        raise BadInputError("Ray came up without token authentication; refusing to use it (see docs/cluster.md)")
    return True


def disconnect() -> None:
    ray = _import_ray()
    if ray.is_initialized():
        ray.shutdown()


def _render_shared(request_json: dict[str, Any], job_id: str) -> dict[str, Any]:
    return execute(request_json, job_id)


def _render_bytes(request_json: dict[str, Any], job_id: str, input_refs: dict[str, Any]) -> dict[str, Any]:
    import ray

    inputs = dict(zip(input_refs, ray.get(list(input_refs.values())), strict=True))
    return execute_to_bytes(request_json, job_id, inputs)


def input_paths(request: RenderRequest) -> list[str]:
    """Every file a request reads (the still, the end still, each audio file), without repeats."""
    paths = [request.image] + ([request.end_image] if request.end_image else [])
    paths += [segment.path for segment in request.audio]
    return list(dict.fromkeys(paths))


class RayPool:
    """Submits clips as Ray tasks and collects them as they finish; same shape as `LocalPool` for the batch."""

    def __init__(self, shared_storage: bool = False, max_retries: int = MAX_RETRIES) -> None:
        self.ray = _import_ray()
        self.shared_storage = shared_storage
        self.max_retries = max_retries
        self._input_refs: dict[str, Any] = {}
        self._refs: dict[Any, str] = {}
        self._remote_shared = self.ray.remote(_render_shared)
        self._remote_bytes = self.ray.remote(_render_bytes)

    def can_take(self, engine: str) -> bool:
        return True  # Ray queues tasks until a node has the CPU / GPU they ask for

    def _ref_for(self, path: str) -> Any:
        if path not in self._input_refs:
            try:
                data = Path(path).read_bytes()
            except OSError as exc:
                raise BadInputError(f"{path} cannot be read: {exc.strerror or exc}") from None
            self._input_refs[path] = self.ray.put(data)
        return self._input_refs[path]

    def submit(self, job_id: str, request_json: dict[str, Any]) -> None:
        engine = request_json.get("engine", "procedural")
        options = {"num_cpus": 1, "num_gpus": 1 if needs_gpu(engine) else 0, "max_retries": self.max_retries,
                   "retry_exceptions": False, "name": f"stillmotion:{job_id[:12]}"}
        if self.shared_storage:
            ref = self._remote_shared.options(**options).remote(request_json, job_id)
        else:
            request = RenderRequest.from_json(request_json)
            refs = {path: self._ref_for(path) for path in input_paths(request)}
            ref = self._remote_bytes.options(**options).remote(request_json, job_id, refs)
        self._refs[ref] = job_id

    def running(self) -> list[str]:
        return list(self._refs.values())

    def wait(self, timeout: float) -> list[Any]:
        from .local import Completion

        if not self._refs:
            return []
        ready, _ = self.ray.wait(list(self._refs), num_returns=len(self._refs), timeout=timeout)
        done = []
        for ref in ready:
            job_id = self._refs.pop(ref)
            try:
                done.append(Completion(job_id, payload=self.ray.get(ref)))
            except self.ray.exceptions.RayError as exc:  # the worker or node died more often than retries allow
                done.append(Completion(job_id, crashed=True, payload={
                    "ok": False, "kind": "WorkerCrashedError",
                    "error": f"Ray worker died {self.max_retries + 1} times: {type(exc).__name__}"}))
        return done

    def stop_jobs(self, job_ids: list[str]) -> None:
        for ref, job_id in list(self._refs.items()):
            if job_id in job_ids:
                self.ray.cancel(ref, force=True)
                del self._refs[ref]

    def shutdown(self) -> None:
        self.stop_jobs(self.running())
        self._input_refs.clear()
