"""Login throttling, CSRF tokens and security headers for the web app."""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections.abc import Callable

MAX_FAILURES = 10
LOCKOUT_SECONDS = 300.0

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}


class LoginThrottle:
    """After ``max_failures`` wrong passwords in a row for one user name, refuse every attempt on
    that name (even a right one) for ``lockout`` seconds. A success resets the count.

    Per process: with several workers each keeps its own count (documented limitation)."""

    def __init__(
        self,
        max_failures: int = MAX_FAILURES,
        lockout: float = LOCKOUT_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.max_failures, self.lockout, self.clock = max_failures, lockout, clock
        self._failures: dict[str, int] = {}
        self._locked_until: dict[str, float] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _key(name: str) -> str:
        return (name or "").strip().lower()[:200]

    def retry_after(self, name: str) -> float:
        """Seconds until ``name`` may try again (0 when not throttled)."""
        with self._lock:
            until = self._locked_until.get(self._key(name), 0.0)
            left = until - self.clock()
            if left <= 0 and until:
                self._locked_until.pop(self._key(name), None)
                self._failures.pop(self._key(name), None)
            return max(0.0, left)

    def failed(self, name: str) -> None:
        key = self._key(name)
        with self._lock:
            n = self._failures.get(key, 0) + 1
            self._failures[key] = n
            if n >= self.max_failures:
                self._locked_until[key] = self.clock() + self.lockout

    def succeeded(self, name: str) -> None:
        key = self._key(name)
        with self._lock:
            self._failures.pop(key, None)
            self._locked_until.pop(key, None)


def new_token() -> str:
    return secrets.token_urlsafe(32)


def tokens_match(expected: str | None, given: str | None) -> bool:
    if not expected or not given or not isinstance(given, str):
        return False
    return hmac.compare_digest(expected.encode(), given.encode())
