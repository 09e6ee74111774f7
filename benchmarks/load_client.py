"""A student without a browser: a Bokeh client session that clicks like one.

``benchmarks/bench_load.py --driver client`` uses :class:`ClientUser` for its
concurrent users.  Each one asks the server for the app's page (so the server
builds the user's Bokeh session exactly as for a browser), joins that session
over the websocket with the page's token, pulls the document and then speaks
Bokeh's protocol: it sets the step slider's or the tabs' model values as
BokehJS would, and applies every patch the server sends to its copy of the
document.  Nothing is rendered, so 30 users cost the machine the server's work
and little else.

The copy of the document is plain JSON, not a :class:`bokeh.document.Document`:
every object the server defines is kept by id, and every reference in a
message must name an object defined before or in that message, as BokehJS
demands (a page reports "reference ... isn't known" otherwise).  A reference
the client does not know is an error, like a server message of type ERROR
or a websocket closed by the server.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import re
import time
import urllib.parse
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from tornado.httpclient import AsyncHTTPClient, HTTPRequest
from tornado.websocket import WebSocketClientConnection, websocket_connect

from ui.cursor import N_TABS

TOKEN = re.compile(r'"token"\s*:\s*"([^"]+)"')
RECOMPUTE_S = 30.0
"""BokehJS recomputes its document's objects this long after the last patch."""
MAX_MESSAGE = 20 * 1024 * 1024
"""The largest message the client accepts (Bokeh's client default)."""
OPAQUE = frozenset({"ndarray", "bytes", "typed_array"})
"""Serialized values whose inner ``{"id": ...}`` names a buffer, not an object."""


Reply = tuple[dict[str, Any], dict[str, Any]]
"""A message's header and content."""


class ProtocolFault(Exception):
    """The server sent something a page could not apply."""


class DocumentCopy:
    """The client's JSON copy of a Bokeh document: objects by id, and their kinds.

    Like BokehJS, the copy forgets the objects no root reaches any more once
    ``recompute_s`` have passed without a patch from the server (BokehJS
    defers that recompute, restarting its timer at each patch); until then a
    detached object may still be referred to.  A later reference to a
    forgotten object is unknown, as it is in a page.
    """

    def __init__(self, recompute_s: float = RECOMPUTE_S) -> None:
        self.kind: dict[str, str] = {}
        self.attrs: dict[str, dict[str, Any]] = {}
        self.roots: list[str] = []
        self.recompute_s = recompute_s
        self._last_patch = -math.inf

    def load(self, doc: dict[str, Any]) -> None:
        """Take in a PULL-DOC-REPLY's document."""
        self._take(doc)
        self.roots = [_ref(root) for root in doc.get("roots", [])]

    def patch(self, events: list[dict[str, Any]]) -> None:
        """Apply a PATCH-DOC's events; raise ProtocolFault on an unknown reference."""
        now = time.monotonic()
        if now - self._last_patch >= self.recompute_s:
            self.collect()  # BokehJS's deferred recompute ran in the quiet
        self._last_patch = now
        self._take(events)
        for event in events:
            kind = event.get("kind")
            if kind == "ModelChanged":
                ref = _ref(event["model"])
                self.attrs.setdefault(ref, {})[event["attr"]] = event["new"]
            elif kind == "RootAdded":
                self.roots.append(_ref(event["model"]))
            elif kind == "RootRemoved":
                ref = _ref(event["model"])
                self.roots = [root for root in self.roots if root != ref]

    def collect(self) -> None:
        """Forget every object no root reaches, as BokehJS's recompute does."""
        keep: set[str] = set()
        for root in self.roots:
            keep |= self.reach(root)
        for ref in [ref for ref in self.kind if ref not in keep]:
            del self.kind[ref], self.attrs[ref]

    def get(self, ref: str, attr: str, default: Any = None) -> Any:
        """Return attribute ``attr`` of object ``ref`` (``default`` if unset)."""
        return self.attrs.get(ref, {}).get(attr, default)

    def find(self, test: Callable[[str], bool]) -> str | None:
        """Return the first object id for which ``test(id)`` holds, or None."""
        return next((ref for ref in self.kind if test(ref)), None)

    def reach(self, start: str) -> set[str]:
        """Return the ids of every object reachable from object ``start``."""
        seen: set[str] = set()
        stack = [start]
        while stack:
            ref = stack.pop()
            if ref in seen or ref not in self.kind:
                continue
            seen.add(ref)
            stack.extend(_refs(self.attrs[ref]))
        return seen

    def _take(self, value: Any) -> None:
        # Define every object first: a message may refer to an object it
        # defines further on.  Then every reference must be known.
        objects, refs = _scan(value)
        for ref, name, attrs in objects:
            self.kind[ref] = name
            self.attrs[ref] = attrs
        unknown = [ref for ref in refs if ref not in self.kind]
        if unknown:
            raise ProtocolFault(f"reference {unknown[0]} isn't known")


def _ref(value: Any) -> str:
    if isinstance(value, dict) and "id" in value:
        return str(value["id"])
    raise ProtocolFault(f"expected a reference to an object, got {value!r:.80}")


def _scan(value: Any) -> tuple[list[tuple[str, str, dict[str, Any]]], list[str]]:
    """Return the objects defined in a JSON value, and the ids it refers to."""
    objects: list[tuple[str, str, dict[str, Any]]] = []
    refs: list[str] = []
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            kind = item.get("type")
            if kind in OPAQUE:
                continue
            if kind == "object" and "id" in item:
                attrs = item.get("attributes") or {}
                name = str(item.get("name")).rpartition(".")[2]
                objects.append((str(item["id"]), name, attrs))
                stack.append(attrs)
            elif set(item) == {"id"}:
                refs.append(str(item["id"]))
            else:
                stack.extend(item.values())
    return objects, refs


def _refs(attrs: dict[str, Any]) -> Iterator[str]:
    objects, refs = _scan(list(attrs.values()))
    yield from refs
    yield from (ref for ref, _, _ in objects)


class Student:
    """What every load-test user does; a driver says how it shows a tab and moves.

    Subclasses set ``rng`` and define :meth:`show_tab` and :meth:`move`;
    :meth:`session` is the same walk through the app for every driver.
    """

    rng: np.random.Generator

    async def show_tab(self, tab: int) -> None:
        """Switch to tab ``tab`` (0-based) and wait until it is drawn."""
        raise NotImplementedError

    async def move(self, n_steps: int) -> None:
        """Move the cursor to a random other step and time until it is shown."""
        raise NotImplementedError

    def other_step(self, current: int, n_steps: int) -> int:
        """Return a random step of ``n_steps`` other than ``current``."""
        step = int(self.rng.integers(0, n_steps - 1))
        return step + (step >= current)

    async def think(self, think: tuple[float, float]) -> None:
        """Pause like a student reading the screen."""
        await asyncio.sleep(float(self.rng.uniform(*think)))

    async def session(
        self, n_steps: int, moves: int, tabs: int, think: tuple[float, float]
    ) -> None:
        """Visit ``tabs`` random tabs, moving the cursor ``moves`` times in all."""
        order = [int(t) for t in self.rng.permutation(N_TABS)[:tabs]]
        per_tab = np.array_split(np.arange(moves), len(order))
        for tab, chunk in zip(order, per_tab, strict=True):
            await self.show_tab(tab)
            for _ in chunk:
                await self.think(think)
                await self.move(n_steps)


class ClientUser(Student):
    """One student as a Bokeh client session; same interface as the browser user.

    Parameters
    ----------
    url : str
        The app's page, with its query (``http://127.0.0.1:PORT/app?session=...``).
    seed : int
        Seeds the user's choice of tabs, steps and think times.
    log : Any
        Where the user's figures and errors go (``bench_load.UserLog``).
    open_timeout, move_timeout : float
        Seconds allowed for opening the app and for a cursor move to show.
    """

    def __init__(
        self,
        url: str,
        seed: int,
        log: Any,
        open_timeout: float = 300.0,
        move_timeout: float = 30.0,
    ) -> None:
        self.url = url
        self.rng = np.random.default_rng(seed)
        self.log = log
        self.open_timeout = open_timeout
        self.move_timeout = move_timeout
        self.doc = DocumentCopy()
        self._socket: WebSocketClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()
        self._replies: dict[str, asyncio.Future[Reply]] = {}
        self._ids = itertools.count(1)
        self._leaving = False
        self._pulled = False
        self._acked = asyncio.Event()
        self._tabs = self._slider = self._box = ""

    # -- what a student does ---------------------------------------------------

    async def open(self) -> None:
        """Load the page, join its session and wait until the app's models are in."""
        t0 = time.perf_counter()
        page = await AsyncHTTPClient().fetch(
            HTTPRequest(self.url, request_timeout=self.open_timeout)
        )
        found = TOKEN.search(page.body.decode("utf-8", errors="replace"))
        if found is None:
            raise ProtocolFault("the app's page carries no session token")
        parts = urllib.parse.urlsplit(self.url)
        ws_url = f"ws://{parts.netloc}{parts.path.rstrip('/')}/ws"
        self._socket = await websocket_connect(
            HTTPRequest(ws_url, request_timeout=self.open_timeout),
            subprotocols=["bokeh", found.group(1)],
            max_message_size=MAX_MESSAGE,
        )
        self._reader = asyncio.create_task(self._read())
        # As BokehJS does, say nothing before the server's ACK: until then it
        # may still be building the session, and drops what comes in.
        await asyncio.wait_for(self._acked.wait(), self.open_timeout)
        # The reply is taken in as it is read (see _handle), before any
        # patch that follows it.
        await self._request("PULL-DOC-REQ", {}, "PULL-DOC-REPLY")
        # BokehJS says so once the page has rendered; Panel then runs its
        # on-load callbacks (the app's URL sync among them).
        await self._send(
            "PATCH-DOC",
            {"events": [_event("MessageSent", msg_type="bokeh_event", msg_data={
                "type": "event", "name": "document_ready", "values": {"type": "map"},
            })]},
        )  # fmt: skip
        self._find_controls()
        self.log.open_s = time.perf_counter() - t0
        await asyncio.sleep(1.0)  # a student looks before the first click

    async def show_tab(self, tab: int) -> None:
        """Switch to tab ``tab`` (0-based) and wait until its content has come."""
        t0 = time.perf_counter()
        await self._set(self._tabs, "active", tab)

        def shown() -> bool:
            # Panel answers with new tab panels: the shown tab's holds its
            # content, each hidden one's a Spacer.
            panel = _ref(self.doc.get(self._tabs, "tabs")[tab])
            child = self.doc.get(panel, "child")
            return child is not None and self.doc.kind.get(_ref(child)) != "Spacer"

        if await self._wait(shown, self.move_timeout):
            self.log.tab_ms.append(1e3 * (time.perf_counter() - t0))
        else:
            self.log.errors.append(
                f"tab {tab + 1} not shown within {self.move_timeout:.0f} s"
            )

    async def move(self, n_steps: int) -> None:
        """Move the cursor to a random other step and time until it is shown."""
        current = int(self.doc.get(self._slider, "value", 0))
        step = self.other_step(current, n_steps)
        follows = bool(self._marks(current))
        t0 = time.perf_counter()
        await self._set(self._slider, "value", step)

        def shown() -> bool:
            box = self.doc.get(self._box, "value")
            return box == step and (not follows or bool(self._marks(step)))

        if await self._wait(shown, self.move_timeout):
            self.log.move_ms.append(1e3 * (time.perf_counter() - t0))
            self.log.followed.append(follows)
        else:
            self.log.errors.append(
                f"cursor move to step {step} not shown within "
                f"{1e3 * self.move_timeout:.0f} ms"
            )

    async def leave(self) -> None:
        """Close the websocket, as closing the browser tab does."""
        self._leaving = True
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)
            self._reader = None

    # -- the app's models ------------------------------------------------------

    def _find_controls(self) -> None:
        doc = self.doc
        tabs = doc.find(
            lambda r: doc.kind[r] == "Tabs" and len(doc.get(r, "tabs", [])) == N_TABS
        )
        slider = doc.find(
            lambda r: doc.kind[r] == "Slider" and doc.get(r, "title") == "Step"
        )
        box = doc.find(
            lambda r: doc.get(r, "title") == "Go to step" and "value" in doc.attrs[r]
        )
        if tabs is None or slider is None or box is None:
            raise ProtocolFault("the app's tabs, step slider or step box is missing")
        self._tabs, self._slider, self._box = tabs, slider, box

    def _marks(self, step: int) -> list[str]:
        """Return the visible tab's cursor marks that show ``step``."""
        doc = self.doc
        active = int(doc.get(self._tabs, "active", 0))
        child = doc.get(_ref(doc.get(self._tabs, "tabs")[active]), "child")
        pattern = re.compile(rf"Step {step}(?![0-9])")
        marks = []
        for ref in doc.reach(_ref(child)):
            if doc.kind[ref] == "Span":
                if doc.get(ref, "location") == step:
                    marks.append(ref)
            else:
                text = doc.get(ref, "text")
                if isinstance(text, str) and pattern.search(text):
                    marks.append(ref)
        return marks

    # -- Bokeh's protocol ------------------------------------------------------

    async def _set(self, ref: str, attr: str, value: Any) -> None:
        self.doc.attrs[ref][attr] = value
        event = _event("ModelChanged", model={"id": ref}, attr=attr, new=value)
        await self._request("PATCH-DOC", {"events": [event]}, "OK")

    async def _wait(self, done: Callable[[], bool], timeout: float) -> bool:
        deadline = time.perf_counter() + timeout
        while not done():
            left = deadline - time.perf_counter()
            if left <= 0 or self._socket is None:
                return False
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), left)
            except TimeoutError:
                return done()
        return True

    async def _send(
        self, msgtype: str, content: dict[str, Any], msgid: str | None = None
    ) -> None:
        if self._socket is None:
            raise ProtocolFault("the websocket is closed")
        header = {"msgid": msgid or str(next(self._ids)), "msgtype": msgtype}
        for part in (header, {}, content):
            await self._socket.write_message(json.dumps(part))

    async def _request(
        self, msgtype: str, content: dict[str, Any], reply: str
    ) -> dict[str, Any]:
        """Send a message and return the content of the server's reply to it."""
        msgid = str(next(self._ids))
        future = self._replies[msgid] = asyncio.get_running_loop().create_future()
        await self._send(msgtype, content, msgid)
        header, body = await asyncio.wait_for(future, self.open_timeout)
        if header["msgtype"] != reply:
            raise ProtocolFault(f"the server answered {msgtype} with {body!r:.200}")
        return body

    async def _read(self) -> None:
        try:
            await self._read_messages()
        except Exception as err:  # a dead reader must not leave a request waiting
            self.log.errors.append(f"reading the server: {type(err).__name__}: {err}")
        finally:
            self._socket = None
            for future in self._replies.values():
                if not future.done():
                    future.set_exception(ProtocolFault("the websocket is closed"))
            self._replies.clear()
            self._acked.set()
            self._changed.set()

    async def _read_messages(self) -> None:
        socket = self._socket  # leave() may drop self._socket while a read waits
        assert socket is not None
        parts: list[dict[str, Any]] = []
        buffers = 0
        while True:
            fragment = await socket.read_message()
            if fragment is None:
                if not self._leaving:
                    self.log.errors.append("websocket closed by the server")
                return
            if buffers:  # a buffer header, then its bytes: nothing we look at
                buffers -= isinstance(fragment, bytes)
                continue
            parts.append(json.loads(fragment))
            if len(parts) < 3:
                continue
            header, _, content = parts
            parts = []
            buffers = int(header.get("num_buffers", 0))
            self._handle(header, content)

    def _handle(self, header: dict[str, Any], content: dict[str, Any]) -> None:
        future = self._replies.pop(header.get("reqid"), None)
        if future is not None:
            if not future.done():
                future.set_result((header, content))
        if header["msgtype"] == "ACK":
            self._acked.set()
        elif header["msgtype"] == "PULL-DOC-REPLY":
            self.doc.load(content["doc"])
            self._pulled = True
        elif header["msgtype"] == "PATCH-DOC" and self._pulled:
            # As BokehJS does, patches before the document are dropped: the
            # document the server sends already holds what they changed.
            try:
                self.doc.patch(content["events"])
            except ProtocolFault as err:
                self.log.errors.append(f"patch from the server: {err}")
        elif header["msgtype"] == "ERROR" and future is None:
            self.log.errors.append(f"server error: {content!r:.300}")
        self._changed.set()


def _event(kind: str, **fields: Any) -> dict[str, Any]:
    return {"kind": kind, **fields}
