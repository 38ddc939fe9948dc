"""A headless Streamlit client that speaks the app's own websocket protocol, as its frontend does.

One :class:`StreamlitClient` is one browser tab, without the rendering: it opens
``ws://HOST:PORT/_stcore/stream`` (subprotocol ``streamlit``, the first entry of
``Sec-WebSocket-Protocol`` that Streamlit's frontend sends; the XSRF entry is only
checked for Streamlit's own login cookies, which this app does not use), with the
cookies a browser would send (``Cookie:`` in the handshake), and then does what the
frontend (``App.tsx``, ``WidgetStateManager``, ``ForwardMsgCache``) does:

* asks for the first script run with the page and query string of the URL
  (``BackMsg.rerun_script``: ``ClientState.page_name`` / ``query_string``), and
  follows the server's page and query changes (``new_session.page_script_hash``,
  ``page_info_changed``), so ``st.switch_page`` works;
* presses a button: a rerun with a ``WidgetState(id=<button id>, trigger_value=True)``
  (the id comes from the button element's delta; a keyed widget's id ends in
  ``-<key>``);
* reruns fragments by itself: every ``auto_rerun`` message (interval and
  fragment id) starts a timer that sends ``rerun_script(fragment_id=...,
  is_auto_rerun=True)`` every interval, whether or not a run is in progress, as
  the frontend's ``setInterval`` does; a full script run (a ``new_session``
  without fragment ids) or ``stop_auto_rerun`` clears them;
* keeps the forward-message cache: cacheable messages are kept by hash, their
  hashes go out with every rerun request (``cached_message_hashes``), a
  ``ref_hash`` message is answered from the cache, and entries age out after
  ``max_cached_message_age`` script runs, as in the frontend.

Widget values are not echoed back (the frontend sends the values of every widget
on the page; the server then takes their defaults or their ``st.session_state``
values, which is the same for a page nobody typed into). Every new element is
handed to :attr:`on_element` as ``(client, delta_path, element)`` so a load test
can time what it waits for.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from typing import Callable, Optional

from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState

__all__ = ["StreamlitClient", "widget_key_matches"]


def widget_key_matches(element_id: str, key: str) -> bool:
    """Whether a widget or chart id (``$$ID-<hash>-<key>``) was made with user key ``key``."""
    return element_id.endswith("-" + key)


class StreamlitClient:
    """One browser tab of a Streamlit app, over its websocket."""

    def __init__(self, base_url: str, cookies: Optional[dict] = None,
                 on_element: Optional[Callable] = None) -> None:
        self.ws_url = base_url.replace("http://", "ws://").replace("https://", "wss://").rstrip("/") \
            + "/_stcore/stream"
        self.cookies = dict(cookies or {})
        self.on_element = on_element
        self.page_script_hash = ""
        self.page_name = ""
        self.query_string = ""
        self.buttons: dict = {}  # button id -> Button proto (the latest delta of it)
        self.run_count = 0  # full or fragment script runs finished
        self.full_runs = 0  # full script runs finished
        self.received = 0
        self.received_bytes = 0
        self._ws = None
        self._reader: Optional[asyncio.Task] = None
        self._timers: dict = {}  # fragment id -> (interval, task)
        self._cache: dict = {}  # hash -> [raw bytes, run count when last used, fragment id]
        self._expired: "OrderedDict[str, list]" = OrderedDict()  # aged out, still answered (see _age_cache)
        self.cache_misses = 0
        self.trace: list[str] = []  # the last messages' kinds, with seconds since the client was made
        self._t0 = time.monotonic()
        self._last_kind = ""
        self.errors: list = []  # messages this client could not handle
        self._max_age = 2
        self._finished = asyncio.Condition()
        self._closed = False

    # ---- connection ---------------------------------------------------------------
    async def connect(self, page_name: str = "", query_string: str = "") -> None:
        """Open the websocket and ask for the first run of ``page_name`` (the URL path) and
        ``query_string`` (without ``?``)."""
        from websockets.asyncio.client import connect

        headers = {}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        self._ws = await connect(self.ws_url, subprotocols=["streamlit"], additional_headers=headers,
                                 max_size=None, open_timeout=60, ping_interval=None)
        self._reader = asyncio.create_task(self._read())
        self.page_name, self.query_string = page_name, query_string
        await self.rerun()

    async def close(self) -> None:
        self._closed = True
        for _, task in self._timers.values():
            task.cancel()
        self._timers.clear()
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(BaseException):
                await self._reader

    async def __aenter__(self) -> "StreamlitClient":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    # ---- what the user does -------------------------------------------------------------
    async def rerun(self, widget_states: Optional[list] = None, fragment_id: str = "",
                    is_auto_rerun: bool = False) -> None:
        msg = BackMsg()
        cs = msg.rerun_script
        cs.query_string = self.query_string
        cs.page_script_hash = self.page_script_hash
        if not self.page_script_hash:
            cs.page_name = self.page_name
        if fragment_id:
            cs.fragment_id = fragment_id
        cs.is_auto_rerun = is_auto_rerun
        self._note("sent", f"rerun {fragment_id[:6]}{' (auto)' if is_auto_rerun else ''}"
                           f"{' (click)' if widget_states else ''}")
        cs.widget_states.widgets.extend(widget_states or [])
        cs.cached_message_hashes.extend(self._cache)
        cs.context_info.timezone = "UTC"
        cs.context_info.timezone_offset = 0
        cs.context_info.locale = "en-US"
        cs.context_info.is_embedded = False
        cs.context_info.color_scheme = "light"
        await self._ws.send(msg.SerializeToString())

    async def click(self, button_id: str) -> None:
        """Press the button ``button_id`` (a trigger: true for this one run)."""
        await self.rerun([WidgetState(id=button_id, trigger_value=True)])

    def button(self, key: Optional[str] = None, label: Optional[str] = None, enabled: bool = True):
        """The id of a button drawn so far, by user key or label (None if there is none)."""
        for bid, b in reversed(list(self.buttons.items())):
            if key is not None and not widget_key_matches(bid, key):
                continue
            if label is not None and b.label != label:
                continue
            if enabled and b.disabled:
                continue
            return bid
        return None

    async def wait_for(self, predicate: Callable[[], object], timeout: float):
        """Wait (up to ``timeout`` s) until ``predicate()`` is truthy after a message; return it."""
        async def _wait():
            async with self._finished:
                while True:
                    value = predicate()
                    if value:
                        return value
                    if self._closed:
                        raise ConnectionError("websocket closed")
                    await self._finished.wait()
        return await asyncio.wait_for(_wait(), timeout)

    # ---- the server's messages ------------------------------------------------------------
    async def _read(self) -> None:
        try:
            async for raw in self._ws:
                self.received += 1
                self.received_bytes += len(raw)
                msg = ForwardMsg()
                msg.ParseFromString(raw)
                try:
                    self._handle(msg, raw)
                except Exception as err:  # noqa: BLE001 - one odd message must not end the tab
                    self.errors.append(f"{type(err).__name__}: {err}")
                async with self._finished:
                    self._finished.notify_all()
        except Exception:  # noqa: BLE001 - closed or broken: waiters learn it from _closed
            pass
        finally:
            self._closed = True
            for _, task in self._timers.values():
                task.cancel()
            async with self._finished:
                self._finished.notify_all()

    def _note(self, kind: str, text: str = "") -> None:
        """One line of :attr:`trace` (the last 16 kept), with seconds since the client was made."""
        self._last_kind = kind
        self.trace.append(f"{time.monotonic() - self._t0:.1f} {kind} {text}".rstrip())
        del self.trace[:-16]

    def _log(self, msg: ForwardMsg, kind: str) -> None:
        """Note a received message for a load test's failure report: a script run's start and end with
        its fragments, auto-reruns, and one line for a run of deltas."""
        if kind == "delta" and self._last_kind == "delta":
            return
        text = ""
        if kind in ("new_session", "script_finished"):
            frags = ",".join(f[:6] for f in msg.metadata.run.fragment_ids)
            status = str(msg.script_finished) if kind == "script_finished" else ""
            text = " ".join(t for t in (status, f"[{frags}]" if frags else "") if t)
        elif kind == "auto_rerun":
            text = f"{msg.auto_rerun.fragment_id[:6]}/{msg.auto_rerun.interval:g}s"
        elif kind == "stop_auto_rerun":
            text = ",".join(f[:6] for f in msg.stop_auto_rerun.fragment_ids)
        self._note(kind, text)

    def _handle(self, msg: ForwardMsg, raw: bytes) -> None:
        kind = msg.WhichOneof("type")
        if kind == "ref_hash":
            entry = self._cache.get(msg.ref_hash) or self._expired.pop(msg.ref_hash, None)
            if entry is None:  # not expected: count it, and go on as the page would (without it)
                self.cache_misses += 1
                return
            self._cache[msg.ref_hash] = entry
            entry[1] = self.run_count
            cached = ForwardMsg()
            cached.ParseFromString(entry[0])
            cached.metadata.CopyFrom(msg.metadata)  # the delta path is the reference's
            msg, kind = cached, cached.WhichOneof("type")
        elif msg.metadata.cacheable and msg.hash and msg.hash not in self._cache:
            frag = msg.delta.fragment_id if kind == "delta" else ""
            self._cache[msg.hash] = [raw, self.run_count, frag]
        self._log(msg, kind)
        if kind == "new_session":
            ns = msg.new_session
            self.page_script_hash = ns.page_script_hash or self.page_script_hash
            if ns.config.max_cached_message_age:
                self._max_age = ns.config.max_cached_message_age
            if not list(msg.metadata.run.fragment_ids):
                self._clear_timers()
        elif kind == "page_info_changed":
            self.query_string = msg.page_info_changed.query_string
        elif kind == "navigation":
            if msg.navigation.page_script_hash:
                self.page_script_hash = msg.navigation.page_script_hash
        elif kind == "auto_rerun":
            self._start_timer(msg.auto_rerun.fragment_id, msg.auto_rerun.interval)
        elif kind == "stop_auto_rerun":
            for fid in msg.stop_auto_rerun.fragment_ids:
                self._stop_timer(fid)
        elif kind == "script_finished":
            if msg.script_finished != ForwardMsg.FINISHED_EARLY_FOR_RERUN:
                self._age_cache(list(msg.metadata.run.fragment_ids))
                if not list(msg.metadata.run.fragment_ids):
                    self.full_runs += 1
        elif kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
            el = msg.delta.new_element
            if el.WhichOneof("type") == "button":
                self.buttons[el.button.id] = el.button
            if self.on_element is not None:
                self.on_element(self, tuple(msg.metadata.delta_path), el)

    def _age_cache(self, fragment_ids: list) -> None:
        """The frontend's ``ForwardMsgCache.incrementRunCount``: drop entries not used for
        ``max_cached_message_age`` runs (a fragment run ages only that fragment's entries).

        A dropped entry is no longer offered to the server, but kept a little longer: a rerun
        request sent before it aged out may still be answered with its reference."""
        self.run_count += 1
        for h, entry in list(self._cache.items()):
            _, used, frag = entry
            if fragment_ids and (not frag or frag not in fragment_ids):
                continue
            if self.run_count - used > self._max_age:
                self._expired[h] = self._cache.pop(h)
        while len(self._expired) > 64:
            self._expired.popitem(last=False)

    # ---- fragment auto-reruns -------------------------------------------------------------
    def _start_timer(self, fragment_id: str, interval: float) -> None:
        if not fragment_id:
            return
        old = self._timers.get(fragment_id)
        if old is not None and old[0] == interval:
            return
        self._stop_timer(fragment_id)
        self._timers[fragment_id] = (interval, asyncio.create_task(self._tick(fragment_id, interval)))

    def _stop_timer(self, fragment_id: str) -> None:
        old = self._timers.pop(fragment_id, None)
        if old is not None:
            old[1].cancel()

    def _clear_timers(self) -> None:
        for fid in list(self._timers):
            self._stop_timer(fid)

    async def _tick(self, fragment_id: str, interval: float) -> None:
        while not self._closed:
            await asyncio.sleep(interval)
            try:
                await self.rerun(fragment_id=fragment_id, is_auto_rerun=True)
            except Exception:  # noqa: BLE001 - the connection went away
                return
