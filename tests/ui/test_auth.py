"""Sign-in helpers: the throttle on wrong passwords and the provider's handler."""

from __future__ import annotations

from pathlib import Path

import pytest
from panel.auth import BasicAuthProvider

from ui.auth import LOGIN_TEMPLATE, LoginThrottle, PasswordAuthProvider, new_secret


def test_the_throttle_refuses_after_the_limit_then_forgets() -> None:
    throttle = LoginThrottle(limit=3, window=60.0)
    key = ("10.0.0.1", "alice")
    for t in (0.0, 1.0, 2.0):
        assert throttle.allows(key, now=t)
        throttle.failed(key, now=t)
    assert not throttle.allows(key, now=3.0)
    # Another name, or the same name from another address, is not held up.
    assert throttle.allows(("10.0.0.1", "bob"), now=3.0)
    assert throttle.allows(("10.0.0.2", "alice"), now=3.0)
    # Failures older than the window no longer count.
    assert throttle.allows(key, now=61.5)
    throttle.failed(key, now=61.5)
    assert throttle.allows(key, now=61.6)
    throttle.succeeded(key)
    assert throttle.allows(key, now=61.7)


def test_the_throttle_drops_old_keys_when_it_grows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("ui.auth._MAX_KEYS", 5)
    throttle = LoginThrottle(limit=2, window=10.0)
    for i in range(5):
        throttle.failed(("ip", f"name{i}"), now=0.0)
    throttle.failed(("ip", "late"), now=100.0)
    assert list(throttle._failures) == [("ip", "late")]


def test_the_provider_serves_glassnet_pages_and_checks_its_users_file(
    tmp_path: Path,
) -> None:
    users = tmp_path / "users.json"
    provider = PasswordAuthProvider(users)
    assert isinstance(provider, BasicAuthProvider)
    handler = provider.login_handler
    assert handler.users_file == users
    assert provider.login_url == "/login" and provider.logout_url == "/logout"
    page = handler._login_template.render(
        login_endpoint="/login", errormessage="<b>x</b>", PANEL_CDN="https://cdn/"
    )
    # Nothing is loaded from outside the server, and messages are escaped.
    assert "https://" not in page and "<b>x</b>" not in page
    assert 'name="username"' in page and 'name="password"' in page
    assert LOGIN_TEMPLATE.is_file()
    assert new_secret() != new_secret() and len(new_secret()) >= 48
