"""Ray, optional (the ``ray`` extra): a session helper and an ordered map of ``@ray.remote`` tasks.

Work is fanned out as one task per seed chunk and gathered with ``ray.get`` in submission (seed)
order, so results do not depend on the scheduling. Ray is imported only here, only when asked for.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from typing import Any, Callable, Iterable, Iterator, Sequence

RAY_MISSING = "Ray is not installed: pip install 'maze-mdlm[ray]'"
LOCAL = "local"  # --ray without an address: start (or reuse) a Ray instance on this machine


class RayUnavailableError(RuntimeError):
    """Ray is not installed, or the cluster at the given address cannot be reached."""


def import_ray() -> Any:
    """The ``ray`` module, or :class:`RayUnavailableError` with the install hint."""
    try:
        import ray
    except ImportError:
        raise RayUnavailableError(RAY_MISSING) from None
    return ray


@contextmanager
def ray_session(address: str | None = LOCAL) -> Iterator[Any]:
    """Yield ``ray`` connected to ``address`` ("local"/None: a local instance; "auto" or
    "ray://host:port": an existing cluster). A session that is already initialised (e.g. by the
    caller's ``ray.init(num_cpus=2)``) is used as it is and left running; one started here is shut
    down on exit."""
    ray = import_ray()
    started = False
    if not ray.is_initialized():
        check_reachable(address)
        try:
            ray.init(address=None if address in (None, LOCAL) else address, include_dashboard=False,
                     logging_level=logging.WARNING, log_to_driver=False)
        except Exception as err:  # noqa: BLE001 - ray raises ConnectionError, RuntimeError, ValueError, ...
            raise RayUnavailableError(f"cannot start or reach Ray at {address!r}: {err}") from None
        started = True
    try:
        yield ray
    finally:
        if started:
            ray.shutdown()


def check_reachable(address: str | None, timeout: float = 5.0) -> None:
    """For a ``host:port`` or ``ray://host:port`` address, fail within ``timeout`` seconds when
    nothing listens there (``ray.init`` itself keeps retrying for minutes)."""
    if address in (None, LOCAL, "auto"):
        return
    import socket

    hostport = address.split("://", 1)[-1]
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise RayUnavailableError(f"expected a Ray address like host:6379, ray://host:10001 or auto, got {address!r}")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as err:
        raise RayUnavailableError(f"nothing answers at {address!r} ({err})") from None


def cluster_cpus() -> int:
    """CPUs of the connected Ray cluster (at least 1)."""
    ray = import_ray()
    return max(1, int(ray.cluster_resources().get("CPU", 1)))


def ray_map(func: Callable[[Any], Any], jobs: Sequence[Any] | Iterable[Any], num_cpus: float = 1) -> Iterator[Any]:
    """``map(func, jobs)`` as one ``@ray.remote`` task per job, all submitted at once, results
    yielded in job order (inside a :func:`ray_session`). ``func`` must be importable by the
    workers (a module-level function)."""
    ray = import_ray()
    remote = ray.remote(num_cpus=num_cpus)(func)
    refs = [remote.remote(job) for job in jobs]
    for ref in refs:
        try:
            yield ray.get(ref)
        except ray.exceptions.RayTaskError as err:  # the task's own exception, as a local call raises it
            cause = getattr(err, "cause", None)
            if isinstance(cause, Exception):
                raise cause from None
            raise
