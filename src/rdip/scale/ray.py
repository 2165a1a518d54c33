"""The Ray backend of ``rdip batch``: each chunk of images fitted by one Ray task.

:func:`ray_runner` joins a Ray cluster (or starts Ray on this machine) and yields a
:class:`RayRunner`, which :func:`rdip.scale.batch.run_batch` uses in place of fitting in its own process.
The driver, the ``rdip batch`` process, still reads every image and writes every output and
manifest row; a task receives the arrays of one chunk and returns its
:class:`~rdip.method.outcome.FitResult` objects, so the workers need rdip and torch (the same versions as the
driver) but not the files, and only one process ever writes the manifest. The results are handed
back in the order the tasks finish.
"""

from __future__ import annotations

import logging
import math
import os
import socket
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

MISSING = "--backend ray needs Ray, which is not installed: pip install 'rdip[ray]'"
#: Times Ray reruns a task whose fit raised or whose worker died before its images become error
#: rows (``max_retries`` with ``retry_exceptions=True``).
RETRIES = 2
#: Tasks kept submitted per slot: a slot that finishes a chunk finds the next one already shipped,
#: while the driver's reading stays at most this many chunks per slot ahead of the fits.
AHEAD = 2
#: torch threads per task, which asks Ray for one CPU. Measured on 2 CPU cores shared with another
#: CPU job (Ray 2.60, 8 images 32×32×3, preset ``default`` cut to T = 30, two repetitions): two
#: 1-thread tasks of 4 images at a time took 21.2 and 19.7 s; one 2-thread task at a time took
#: 41.0 and 37.6 s (two tasks of 4 images) or 54.3 and 38.8 s (one task of 8). The network's small
#: convolutions do not divide well between threads, so one process per core was about twice as
#: fast (and it does not oversubscribe cores that other work shares).
THREADS = 1


#: Seconds to wait for a Ray cluster's address to answer before the run is refused.
CONNECT_TIMEOUT = 10.0


def check_address(address: str | None, timeout: float | None = None) -> None:
    """Refuse a Ray address (``address``, else ``$RAY_ADDRESS``) where nothing answers: a TCP
    connection to its ``host:port`` (``ray://`` or not) within ``timeout`` seconds
    (:data:`CONNECT_TIMEOUT`), so that a wrong address is a one-line error, not a hang. ``auto``,
    ``local`` and no address at all are Ray's to resolve."""
    address = address or os.environ.get("RAY_ADDRESS")
    if not address or address in ("auto", "local"):
        return
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise ValueError(f"--address {address}: give HOST:PORT (e.g. 10.0.0.1:6379 or "
                         "ray://head:10001), auto, or none")
    timeout = CONNECT_TIMEOUT if timeout is None else timeout
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as e:
        raise ConnectionError(f"--address {address}: no Ray cluster answers there within {timeout:g} s "
                              f"({e.strerror or type(e).__name__}); check the address and that the "
                              "cluster is up (ray start --head)") from None


def import_ray():
    """The ``ray`` module, or an :class:`ImportError` that says how to install it."""
    try:
        import ray
    except ImportError:
        raise ImportError(MISSING) from None
    return ray


def _task(fit: Callable, images: list, cleans: list) -> list:
    """The body of a Ray task: ``fit(images, cleans)`` on :data:`THREADS` torch threads."""
    import torch

    torch.set_num_threads(THREADS)  # else torch's default, all the node's cores, in every task
    return fit(images, cleans)


class RayRunner:
    """Fits chunks as Ray tasks; ``device``, ``slots`` (tasks at a time), ``memory_mb`` (per task)
    and ``summary`` describe how.

    When the cluster has GPUs and the configuration's device is not ``cpu``, each task asks for
    one GPU (and one CPU) and fits on ``cuda``; otherwise each task asks for one CPU and fits on the
    CPU with :data:`THREADS` torch threads, so a cluster runs one task per CPU.
    """

    def __init__(self, ray, device: str):
        resources = ray.cluster_resources()
        cpus, gpus = int(resources.get("CPU", 0)), int(resources.get("GPU", 0))
        if device.startswith("cuda") and not gpus:
            raise RuntimeError(f"--device {device}: the Ray cluster has no GPUs; use --device auto or cpu")
        use_gpu = gpus > 0 and device != "cpu"
        self.ray = ray
        self.device = "cuda" if use_gpu else "cpu"
        self.slots = max(1, gpus if use_gpu else cpus)
        # memory per task for automatic tiling: Ray's own share of the nodes' memory divided among
        # the CPU tasks; a GPU's memory is not known to the driver (inf: tile only when asked)
        self.memory_mb = math.inf if use_gpu else resources.get("memory", 0) / self.slots / 2**20
        self.summary = (f"Ray: {cpus} CPUs, {gpus} GPUs; {self.slots} tasks at a time, "
                        f"1 {'GPU' if use_gpu else 'CPU'} each")
        self._remote = ray.remote(num_cpus=1, num_gpus=1 if use_gpu else 0, max_retries=RETRIES,
                                  retry_exceptions=True)(_task)

    def run(self, fit: Callable, jobs: Iterable[tuple]) -> Iterator[tuple]:
        """For each ``(key, images, cleans)`` of ``jobs``, yield ``(key, fit(images, cleans))``, or
        ``(key, exception)`` for a task that failed :data:`RETRIES` + 1 times, as tasks finish.

        ``jobs`` is read only as fast as :data:`AHEAD` × ``slots`` tasks stay submitted.
        """
        pending: dict = {}
        for key, images, cleans in jobs:
            pending[self._remote.remote(fit, images, cleans)] = key
            while len(pending) >= AHEAD * self.slots:
                yield self._next(pending)
        while pending:
            yield self._next(pending)

    def _next(self, pending: dict) -> tuple:
        """Wait for one of the ``pending`` tasks; ``(key, results or its exception)``."""
        [ref], _ = self.ray.wait(list(pending), num_returns=1)
        key = pending.pop(ref)
        try:
            return key, self.ray.get(ref)
        except Exception as e:  # noqa: BLE001  (a failed task must not stop the others)
            # RayTaskError wraps what the fit raised; worker crashes and lost objects come as they are
            return key, e.cause if isinstance(e, self.ray.exceptions.RayTaskError) else e


@contextmanager
def ray_runner(address: str | None = None, num_cpus: int | None = None,
               device: str = "auto") -> Iterator[RayRunner]:
    """A :class:`RayRunner` for the duration of the block.

    ``ray.init(address=address)``: joins the cluster at ``address`` (e.g. ``ray://head:10001``;
    ``auto``: the running one found as below, or an error). Without ``address``, Ray's own
    default: the cluster named by ``RAY_ADDRESS`` (set by ``ray job submit``), else one started on
    this machine by ``ray start``, else a new Ray on this machine with ``num_cpus`` CPUs (default:
    all). Ray is shut down (a joined cluster: left) at the end. A Ray already initialised in this
    process (by the caller) is used as it is and left running.
    """
    ray = import_ray()
    started = not ray.is_initialized()
    if started:
        ray.init(address=address, num_cpus=num_cpus, include_dashboard=False,
                 logging_level=logging.WARNING)
    try:
        yield RayRunner(ray, device)
    finally:
        if started:
            ray.shutdown()
