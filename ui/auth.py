"""Sign people in through Panel's own auth providers: a users file, or OAuth.

:class:`PasswordAuthProvider` is Panel's basic-auth provider with one change:
it checks the name and password against a glassnet users file, which holds
salted scrypt hashes (``glassnet users add``), never passwords.  The signed-in
name then reaches the app as ``pn.state.user``.  OAuth uses Panel's providers
unchanged (``pn.serve(oauth_provider=...)``).
"""

from __future__ import annotations

import logging
import secrets
import time
from collections import deque
from pathlib import Path
from typing import Any

import tornado.escape
from panel.auth import BasicAuthProvider, BasicLoginHandler, _validate_next_url
from panel.io.state import state
from tornado.ioloop import IOLoop

from sessions.users import UsersFileError, find_user

__all__ = [
    "LOGIN_TEMPLATE",
    "LOGOUT_TEMPLATE",
    "LoginThrottle",
    "PasswordAuthProvider",
    "new_secret",
]

logger = logging.getLogger(__name__)

ASSETS = Path(__file__).resolve().parent / "assets"
LOGIN_TEMPLATE = ASSETS / "login.html"
"""The sign-in page: Panel's form fields, nothing loaded from outside the server."""
LOGOUT_TEMPLATE = ASSETS / "logout.html"

_WRONG = "Wrong user name or password."
_BROKEN = "The server cannot read its users file; tell your instructor."
_MAX_KEYS = 10_000
_TOO_MANY = "Too many wrong passwords for this name; wait a few minutes and retry."


def new_secret() -> str:
    """Return a random secret for signing cookies (valid until the server stops)."""
    return secrets.token_urlsafe(48)


class LoginThrottle:
    """Refuse sign-ins for a key after ``limit`` failures within ``window`` seconds.

    The key is the browser's address with the name tried, so guessing one
    person's password is slowed without locking everyone behind a school's
    shared address out.
    """

    def __init__(self, limit: int = 10, window: float = 300.0) -> None:
        self.limit = limit
        self.window = window
        self._failures: dict[tuple[str, str], deque[float]] = {}

    def allows(self, key: tuple[str, str], now: float | None = None) -> bool:
        """Return whether ``key`` may try a password now."""
        times = self._recent(key, time.monotonic() if now is None else now)
        return len(times) < self.limit

    def failed(self, key: tuple[str, str], now: float | None = None) -> None:
        """Note a wrong password for ``key``."""
        now = time.monotonic() if now is None else now
        if len(self._failures) >= _MAX_KEYS:
            # NOTE: bounds memory against a flood of invented names.
            for old in list(self._failures):
                self._recent(old, now)
        times = self._recent(key, now)
        times.append(now)
        self._failures[key] = times

    def succeeded(self, key: tuple[str, str]) -> None:
        """Forget the failures of ``key`` after a right password."""
        self._failures.pop(key, None)

    def _recent(self, key: tuple[str, str], now: float) -> deque[float]:
        """Return the failures of ``key`` within the window (older ones dropped)."""
        times = self._failures.get(key, deque())
        while times and now - times[0] > self.window:
            times.popleft()
        if not times:
            self._failures.pop(key, None)
        return times


class PasswordLoginHandler(BasicLoginHandler):
    """Panel's login page, checking passwords against a glassnet users file.

    ``users_file`` is set on a subclass made by :class:`PasswordAuthProvider`.
    The hash is computed in a worker thread, so sign-ins never stall the
    other users' apps.
    """

    users_file: Path = Path("users.json")
    throttle = LoginThrottle()

    async def post(self) -> None:
        """Check the form's name and password; sign in, or show the page again."""
        name = self.get_argument("username", "")
        password = self.get_argument("password", "")
        key = (str(self.request.remote_ip), name.strip().lower()[:80])
        if not self.throttle.allows(key):
            logger.warning("Sign-in throttled for %r from %s", key[1], key[0])
            self._refuse(_TOO_MANY)
            return
        try:
            user = await IOLoop.current().run_in_executor(
                None, find_user, self.users_file, name, password
            )
        except UsersFileError as err:
            logger.error("Sign-in refused: %s", err)
            self._refuse(_BROKEN)
            return
        if user is None:
            logger.info("Sign-in refused for %r", name[:80])
            self.throttle.failed(key)
            self._refuse(_WRONG)
            return
        self.throttle.succeeded(key)
        logger.info("Signed in %s (%s)", user.name, user.role)
        self.set_current_user(user.name)
        self.redirect(_validate_next_url(self.get_cookie("next_url", state.base_url)))

    def _refuse(self, text: str) -> None:
        """Show the sign-in page again with ``text``."""
        path = self.request.path
        self.redirect(f"{path}?error={tornado.escape.url_escape(text)}")


class PasswordAuthProvider(BasicAuthProvider):
    """Serve a sign-in page that checks a glassnet users file.

    Parameters
    ----------
    users_file : Path
        The JSON users file (re-read at each sign-in, so accounts added while
        the server runs can sign in at once).
    **params
        Passed on to Panel's :class:`~panel.auth.BasicAuthProvider`.
    """

    def __init__(self, users_file: str | Path, **params: Any) -> None:
        params.setdefault("login_template", str(LOGIN_TEMPLATE))
        params.setdefault("logout_template", str(LOGOUT_TEMPLATE))
        # NOTE: set first: Bokeh's constructor already asks for the handler.
        self.users_file = Path(users_file)
        super().__init__(**params)

    @property
    def login_handler(self) -> type[PasswordLoginHandler]:
        """Return the login page's handler class, bound to this users file."""
        return type(
            "UsersFileLoginHandler",
            (PasswordLoginHandler,),
            {
                "users_file": self.users_file,
                "_login_endpoint": self._login_endpoint,
                "_login_template": self._login_template,
            },
        )
