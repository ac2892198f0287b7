"""Webhooks: when a job with a ``callback_url`` ends, POST its view there, signed.

- Only to hosts in the allow-list (``callback_hosts``: names, IP addresses
  or CIDR networks; empty: callbacks are off). The URL's host must be
  listed, and at delivery every address it resolves to must be public, or
  be a listed address or inside a listed network: loopback, private,
  link-local and other non-global ranges are never reached unless listed.
- Signed: ``X-Unmask-Signature: sha256=HEX``, the HMAC-SHA256 of the exact
  body bytes under the ``callback_secret`` setting.
- Retried on a non-2xx answer, a redirect (never followed) or a network
  error, after ``backoff_s * 2**(n-1)`` seconds, at most ``attempts`` tries;
  the state (pending, delivered, failed), tries, last status and last error
  are on the job. Deliveries live in the job store, so a restart resumes them.
- Once per try, whichever process sends it: every process may run a sender
  (API replicas and workers), and a sender claims a due delivery in the store
  before it posts it. Only a process that dies between its POST and
  recording it leaves the try to be made again (at-least-once there).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import socket
import threading
from typing import Callable
from urllib.parse import urlsplit

import httpx

from .store import Job, JobStore

log = logging.getLogger(__name__)
SIGNATURE_HEADER = "X-Unmask-Signature"
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def sign(body: bytes, secret: str) -> str:
    """The signature header's value for ``body``: ``sha256=`` and the hex HMAC-SHA256 under ``secret``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class CallbackPolicy:
    """Which callback URLs are allowed: the ``callback_hosts`` allow-list."""

    def __init__(self, hosts: list[str]) -> None:
        self.names: set[str] = set()
        self.networks: list[IPNetwork] = []
        for entry in hosts:
            try:
                self.networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            except ValueError:
                self.names.add(entry.lower().rstrip("."))

    @property
    def enabled(self) -> bool:
        return bool(self.names or self.networks)

    def refusal(self, url: str) -> str | None:
        """Why ``url`` may not be a callback (None: allowed), from the URL alone."""
        if not self.enabled:
            return "callbacks are off on this server (set UNMASK_CALLBACK_HOSTS)"
        if any(c.isspace() or not c.isprintable() for c in url):
            return "callback_url must not contain spaces or control characters"
        try:  # what the sender would choke on later: a bad port or IPv6 literal, a URL httpx refuses
            parts = urlsplit(url)
            parts.port  # noqa: B018  (the property raises on a bad or out-of-range port)
            httpx.URL(url)
        except (ValueError, httpx.InvalidURL) as exc:
            return f"callback_url is not a valid URL ({exc})"
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return "callback_url must be an absolute http or https URL"
        if parts.username or parts.password:
            return "callback_url must not carry credentials"
        host = parts.hostname.lower().rstrip(".")
        if host in self.names or self._listed_address(host):
            return None
        return f"callback host {host} is not in the allow-list"

    def address_refusal(self, url: str) -> str | None:
        """Why delivery to ``url`` must not go ahead now (None: go), from the addresses its host resolves to."""
        parts = urlsplit(url)
        host = (parts.hostname or "").lower().rstrip(".")
        try:
            infos = socket.getaddrinfo(host, parts.port or (443 if parts.scheme == "https" else 80), proto=socket.IPPROTO_TCP)
        except (OSError, UnicodeError) as exc:
            return f"cannot resolve {host}: {exc}"
        for info in infos:
            address = ipaddress.ip_address(info[4][0])
            if not address.is_global and not any(address in net for net in self.networks):
                return f"{host} resolves to {address}, a non-public address that is not in the allow-list"
        return None

    def _listed_address(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            return False
        return any(address in net for net in self.networks)


class CallbackSender:
    """One thread delivering due callbacks from the store until ``stop()``.

    Args:
        store: the job store.
        policy: the allow-list.
        secret: the HMAC key.
        render: a job -> the JSON body bytes to POST (the API's job view).
        attempts: tries before the delivery is marked failed.
        backoff_s: the first retry's delay; each next one doubles.
        timeout_s: per try.
        poll_s: how often the store is looked at when nothing wakes the thread.
    """

    def __init__(self, store: JobStore, policy: CallbackPolicy, secret: str, render: Callable[[Job], bytes], *,
                 attempts: int = 5, backoff_s: float = 2.0, timeout_s: float = 10.0, poll_s: float = 1.0) -> None:
        self.store, self.policy, self.secret, self.render = store, policy, secret, render
        self.attempts, self.backoff_s, self.timeout_s, self.poll_s = attempts, backoff_s, timeout_s, poll_s
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="unmask-callbacks", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def notify(self) -> None:
        """A job ended: look for due deliveries now."""
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    @property
    def hold_s(self) -> float:
        """How long a claimed delivery is this sender's: past one try's longest (resolving, then posting)."""
        return 2 * self.timeout_s + 30

    def _loop(self) -> None:
        with httpx.Client(follow_redirects=False, timeout=self.timeout_s) as client:
            while not self._stop.is_set():
                try:
                    self._deliver_due(client)
                except Exception:  # the database went away for a moment: the next round tries again
                    log.exception("callbacks: cannot read the due deliveries")
                self._wake.wait(self.poll_s)
                self._wake.clear()

    def _deliver_due(self, client: httpx.Client) -> None:
        while not self._stop.is_set() and (job := self.store.claim_callback(self.hold_s)) is not None:
            try:
                self.deliver(client, job)
            except Exception as exc:  # one broken delivery must not stop the others
                log.exception("job %s: callback failed unexpectedly", job.id)
                self.store.callback_tried(job.id, "failed", None, f"internal error: {type(exc).__name__}", None)

    def deliver(self, client: httpx.Client, job: Job) -> None:
        """One try for ``job``'s callback; record its outcome and, on failure, the next try's time."""
        assert job.callback_url is not None
        url, attempt = job.callback_url, job.callback_attempts + 1
        status, error = None, self.policy.refusal(url) or self.policy.address_refusal(url)
        if error is None:
            body = self.render(job)
            headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(body, self.secret),
                       "X-Unmask-Job": job.id, "X-Unmask-Attempt": str(attempt)}
            try:
                status = client.post(url, content=body, headers=headers).status_code
                error = None if 200 <= status < 300 else f"the receiver answered {status}"
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"
        if error is None:
            self.store.callback_tried(job.id, "delivered", status, None, None)
            log.info("job %s: callback delivered to %s (try %d)", job.id, url, attempt)
        elif attempt >= self.attempts:
            self.store.callback_tried(job.id, "failed", status, error, None)
            log.warning("job %s: callback to %s failed after %d tries: %s", job.id, url, attempt, error)
        else:
            delay = self.backoff_s * 2 ** (attempt - 1)
            self.store.callback_tried(job.id, "pending", status, error, delay)
            log.info("job %s: callback to %s failed (%s); retry in %.1f s", job.id, url, error, delay)
