"""The app served to a class in Chromium: sign in, own workspace, read-only library.

``glassnet serve --users`` runs on a class folder holding the demo in the
library and one run in alice's workspace; students and the instructor sign in
through the login page in separate browser contexts (separate cookies).
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from sessions.library import set_title
from sessions.users import add_user
from sessions.workspace import class_folder
from ui.served import free_port

pytestmark = pytest.mark.ui

ROOT = Path(__file__).resolve().parents[2]
PASSWORDS = {
    "alice": "alice-pass-1",
    "bob": "bob-pass-22",
    "carol": "carol-pass-4",
    "teacher": "teach-pass-3",
}


@pytest.fixture(scope="module")
def classroom(
    tmp_path_factory: pytest.TempPathFactory, demo_dir: Path
) -> Iterator[tuple[str, Path]]:
    """Serve a class with three accounts; yield (app URL, class folder)."""
    base = tmp_path_factory.mktemp("classroom")
    users = base / "users.json"
    for name, password in PASSWORDS.items():
        add_user(users, name, password, instructor=name == "teacher")
    root = base / "class"
    demo = demo_dir / "demo.session"
    shutil.copy(demo, class_folder(root, "library") / "demo.session")
    mine = class_folder(root, "users", "alice") / "mine.session"
    shutil.copy(demo, mine)
    set_title(mine, "Alice's private run")
    lesson = class_folder(root, "users", "teacher") / "lesson.session"
    shutil.copy(demo, lesson)
    set_title(lesson, "Lesson one")
    port = free_port()
    log = io.BytesIO()
    proc = subprocess.Popen(
        [sys.executable, "-m", "ui.cli", "serve", "--sessions", str(root),
         "--users", str(users), "--port", str(port), "--no-show"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                log.write(proc.stdout.read() if proc.stdout else b"")
                pytest.fail(f"glassnet serve exited:\n{log.getvalue().decode()}")
            try:
                live = f"http://127.0.0.1:{port}/liveness"
                with urllib.request.urlopen(live, timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("glassnet serve --users did not answer")
                time.sleep(0.3)
        yield f"http://127.0.0.1:{port}/app", root
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=15)


def _sign_in(browser: Any, url: str, name: str, password: str | None = None) -> Any:
    """Open ``url`` in a fresh context, sign in as ``name``; return the page."""
    page = browser.new_context().new_page()
    page.goto(url)
    assert "/login" in page.url  # nobody gets in without signing in
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", password or PASSWORDS[name])
    with page.expect_console_message(
        lambda m: "Websocket connection 0 is now open" in m.text, timeout=60_000
    ):
        page.get_by_role("button", name="Sign in").click()
    page.locator(".glassnet-user").first.wait_for(timeout=30_000)
    return page


def _sidebar_text(page: Any) -> str:
    return " ".join(page.locator(".glassnet-entry").all_inner_texts())


def test_a_wrong_password_stays_on_the_sign_in_page(
    browser: Any, classroom: tuple[str, Path]
) -> None:
    url, _ = classroom
    page = browser.new_context().new_page()
    page.goto(url)
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", "not-her-password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator(".error")).to_have_text("Wrong user name or password.")
    assert "/login" in page.url
    page.context.close()


def _post_sign_in(url: str, name: str, password: str) -> str:
    """Post the sign-in form without a browser; return where it redirects to."""
    login = url.rsplit("/", 1)[0] + "/login"
    data = urllib.parse.urlencode({"username": name, "password": password}).encode()

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        opener.open(login, data=data, timeout=30)
    except urllib.error.HTTPError as err:
        return str(err.headers["Location"])
    raise AssertionError("the sign-in form did not redirect")


def test_repeated_wrong_passwords_are_throttled(classroom: tuple[str, Path]) -> None:
    url, _ = classroom
    for _ in range(10):
        assert "Wrong+user+name" in _post_sign_in(url, "carol", "guess-guess")
    # Now even the right password waits, for this name from this address.
    assert "Too+many" in _post_sign_in(url, "carol", PASSWORDS["carol"])
    assert "Too+many" not in _post_sign_in(url, "bob", "guess-guess")


def test_a_student_sees_her_workspace_and_a_read_only_library(
    browser: Any, classroom: tuple[str, Path]
) -> None:
    url, root = classroom
    page = _sign_in(browser, url, "alice")
    expect(page.locator(".glassnet-user").first).to_contain_text("alice (student)")
    page.get_by_text("Alice's private run").first.wait_for(timeout=15_000)
    expect(page.get_by_text("(read-only)").first).to_be_visible()
    texts = _sidebar_text(page)
    assert "mine.session" in texts and "demo.session" in texts
    assert "lesson.session" not in texts  # the instructor's own workspace
    # The library's demo is open: its title cannot be changed, nor copied.
    title = page.locator(".glassnet-title-text", has_text="Demo: Iris flowers")
    title.first.wait_for(timeout=15_000)
    expect(page.get_by_role("button", name="Save title")).to_be_disabled()
    expect(page.get_by_role("button", name="Copy to the class library")).to_have_count(
        0
    )
    assert sorted(p.name for p in (root / "library").glob("*.session")) == [
        "demo.session"
    ]
    page.context.close()


def test_another_student_cannot_see_or_open_her_session(
    browser: Any, classroom: tuple[str, Path]
) -> None:
    url, _ = classroom
    page = _sign_in(browser, url, "bob")
    page.get_by_text("No session files in this folder yet.").first.wait_for()
    page.locator(".glassnet-entry", has_text="demo.session").first.wait_for()
    assert "mine.session" not in _sidebar_text(page)
    expect(page.get_by_text("Alice's private run")).to_have_count(0)
    page.context.close()
    # Not even through a link naming her file.
    page = _sign_in(browser, f"{url}?session=mine.session", "bob")
    alert = page.locator(".glassnet-message").first
    expect(alert).to_contain_text("There is no session 'mine.session'")
    expect(page.get_by_text("Alice's private run")).to_have_count(0)
    page.context.close()


def test_the_instructor_copies_a_session_into_the_library(
    browser: Any, classroom: tuple[str, Path]
) -> None:
    url, root = classroom
    page = _sign_in(browser, url, "teacher")
    expect(page.locator(".glassnet-user").first).to_contain_text("teacher (instructor)")
    page.get_by_text("Class library").first.wait_for()
    expect(page.get_by_text("(read-only)")).to_have_count(0)
    # The first Open button is the instructor's own lesson.
    page.get_by_role("button", name="Open", exact=True).first.click()
    page.locator(".glassnet-title-text", has_text="Lesson one").first.wait_for()
    page.get_by_role("button", name="Copy to the class library").click()
    page.locator(".glassnet-entry", has_text="lesson.session").nth(1).wait_for()
    copied = root / "library" / "lesson.session"
    assert copied.is_file()
    page.context.close()
    # Every student now finds it in the library.
    page = _sign_in(browser, url, "bob")
    page.get_by_text("Lesson one").first.wait_for(timeout=15_000)
    page.context.close()


def test_signing_out_ends_access(browser: Any, classroom: tuple[str, Path]) -> None:
    url, _ = classroom
    page = _sign_in(browser, url, "alice")
    page.get_by_role("link", name="Sign out").click()
    page.get_by_text("Signed out").first.wait_for()
    page.goto(url)
    assert "/login" in page.url
    page.context.close()
