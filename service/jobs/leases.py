"""The lease keeper: one thread per process that renews this process's claims and sweeps expired ones.

Every process of the job system runs it, API replicas included, so a job
whose worker was killed is re-queued by whichever process is alive, not by
whoever starts next. It beats three times per lease: a worker must miss
two beats in a row (a stall, a lost network) before its lease can run out.
"""

from __future__ import annotations

import logging
import threading

from .store import JobStore

log = logging.getLogger(__name__)
BEATS_PER_LEASE = 3


class LeaseKeeper:
    def __init__(self, store: JobStore, max_attempts: int) -> None:
        self.store, self.max_attempts = store, max_attempts
        self.interval_s = store.lease_s / BEATS_PER_LEASE
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="unmask-leases", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def beat(self) -> None:
        """Renew this process's leases, then sweep the expired ones of any process."""
        self.store.renew()
        requeued, failed = self.store.expire_leases(self.max_attempts)
        if requeued or failed:
            log.warning("job leases ran out: %d jobs re-queued, %d failed after %d attempts", requeued, failed, self.max_attempts)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.beat()
            except Exception:  # the database went away for a moment: the next beat tries again
                log.exception("job leases: renewal or sweep failed")
