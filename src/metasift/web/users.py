"""Web-app users over the review store: add, look up, authenticate (argon2), every change audited.

Roles: ``owner`` (everything), ``reviewer`` (screens), ``resolver`` (resolves conflicts), ``viewer``
(reads only). The screening rules themselves (who may decide, blinding) stay in the library: a web
user screens under their own name, which the protocol's ``reviewers`` list must also allow.
"""

from __future__ import annotations

import re
import threading
import time
import weakref
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import bindparam, select

from metasift.errors import MetasiftError, check_param
from metasift.store import Store
from metasift.store.models import User

ROLES = ("owner", "reviewer", "resolver", "viewer")
MIN_PASSWORD = 8
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$")

# What each role may do on the server (checked on every write).
PERMISSIONS = {
    "owner": frozenset({"read", "screen", "resolve", "import", "manage"}),
    "reviewer": frozenset({"read", "screen"}),
    "resolver": frozenset({"read", "resolve"}),
    "viewer": frozenset({"read"}),
}

_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("metasift-no-such-user")  # equal work whether or not the name exists


@dataclass(frozen=True)
class AppUser:
    """A signed-in user as the web app sees it (no password hash)."""

    name: str
    role: str
    active: bool = True

    def can(self, permission: str) -> bool:
        return self.active and permission in PERMISSIONS.get(self.role, ())


def _as_app_user(u: User) -> AppUser:
    return AppUser(name=u.name, role=u.role, active=bool(u.active))


def check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise MetasiftError(
            f"{name!r} is not a valid user name: 1-100 letters, digits, '.', '_', '@' or '-', "
            "starting with a letter or digit"
        )
    return name


def add_user(store: Store, name: str, role: str, password: str, *, actor: str) -> AppUser:
    """Create a user (or raise if the name is taken). The password is stored as an argon2 hash."""
    check_name(name)
    check_param(role, ROLES, "role", "add_user")
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        raise MetasiftError(f"a password needs at least {MIN_PASSWORD} characters")
    digest = _hasher.hash(password)
    with store.write() as s:
        if s.scalars(select(User).where(User.name == name)).first() is not None:
            raise MetasiftError(f"user {name!r} already exists")
        row = User(name=name, role=role, password_hash=digest, active=True)
        s.add(row)
        s.flush()
        Store.audit(s, actor, "user.add", "user", name, after={"name": name, "role": role})
        user = _as_app_user(row)
    forget_users(store)
    return user


def set_role(store: Store, name: str, role: str, *, actor: str) -> AppUser:
    check_param(role, ROLES, "role", "set_role")
    with store.write() as s:
        row = s.scalars(select(User).where(User.name == name)).first()
        if row is None:
            raise MetasiftError(f"no user {name!r}")
        before = row.role
        row.role = role
        Store.audit(
            s, actor, "user.role", "user", name, before={"role": before}, after={"role": role}
        )
        user = _as_app_user(row)
    forget_users(store)
    return user


_U = User.__table__
# runs on every request: a plain table query, built once so its compiled form is reused
_USER_BY_NAME = (
    select(_U.c.name, _U.c.role, _U.c.active).where(_U.c.name == bindparam("name")).limit(1)
)


# How long this process may answer "who is this user, with what role" from memory. The web app
# asks on every request; a change made through this module in this process is seen at once (the
# cache is dropped), a change made by another process (the CLI, another worker) within USER_TTL.
USER_TTL = 1.0
_USERS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # store -> {name: (at, user)}
_USERS_LOCK = threading.Lock()
_generation = 0  # bumped by every forget, so a lookup that overlapped a change is not kept


def forget_users(store: Store) -> None:
    """Drop this process's cached user lookups for ``store`` (after any change to users)."""
    global _generation
    with _USERS_LOCK:
        _USERS.pop(store, None)
        _generation += 1


def get_user(store: Store, name: str, *, max_age: float | None = None) -> AppUser | None:
    """The active user of that name, or None; read from the store at most ``max_age`` seconds
    ago (default USER_TTL; 0: now)."""
    if not isinstance(name, str) or not name:
        return None
    if max_age is None:
        max_age = USER_TTL
    now = time.monotonic()
    with _USERS_LOCK:
        hit = _USERS.get(store, {}).get(name)
        generation = _generation
    if hit is not None and now - hit[0] < max_age:
        return hit[1]
    with store.read() as s:
        row = s.execute(_USER_BY_NAME, {"name": name}).first()
    user = (
        AppUser(name=row.name, role=row.role, active=True)
        if row is not None and row.active
        else None
    )
    with _USERS_LOCK:
        if generation == _generation:
            _USERS.setdefault(store, {})[name] = (now, user)
    return user


def list_users(store: Store) -> list[AppUser]:
    with store.read() as s:
        return [_as_app_user(u) for u in s.scalars(select(User).order_by(User.name))]


def authenticate(store: Store, name: str, password: str, *, origin: str = "") -> AppUser | None:
    """The user when the password matches, else None. Every attempt is in the audit log."""
    with store.read() as s:
        row = s.scalars(select(User).where(User.name == name)).first() if name else None
        digest = row.password_hash if row is not None and row.active else None
    ok = False
    try:
        ok = _hasher.verify(digest or _DUMMY_HASH, password or "") and digest is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        ok = False
    with store.write() as s:
        Store.audit(
            s,
            name if ok else (name or "anonymous")[:200],
            "user.login" if ok else "user.login_failed",
            "user",
            (name or "")[:100],
            after={"origin": origin} if origin else None,
        )
        if ok and _hasher.check_needs_rehash(digest):
            fresh = s.scalars(select(User).where(User.name == name)).first()
            fresh.password_hash = _hasher.hash(password)
    return AppUser(name=row.name, role=row.role) if ok else None


def record_logout(store: Store, name: str) -> None:
    with store.write() as s:
        Store.audit(s, name, "user.logout", "user", name)
