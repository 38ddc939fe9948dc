"""The address students can reach: what a shared link and its QR code point to.

A teacher usually runs the app on the laptop at the projector and opens it as
``http://localhost:8501``. That address means "this computer" on every device, so a link or QR code
built from it sends each student's phone to the phone itself. :func:`share_address` picks, in order:

1. ``SBI_PUBLIC_URL`` (the app's root as students reach it, e.g. ``http://192.168.1.20:8501`` or
   ``https://sbi.school.example``): always wins, for a server behind a proxy or a name;
2. the browser's own address, when it is not this computer (the page was opened by a reachable name);
3. Streamlit's ``browser.serverAddress``, when set to something other than localhost;
4. this machine's address on its network (:func:`lan_address`) with the page's port, unless the
   server listens on this computer only (``server.address`` set to localhost);

and otherwise no address, with a note that says why a phone cannot use the link and what to set.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from dataclasses import dataclass
from typing import Callable, Mapping, Optional
from urllib.parse import urlsplit

__all__ = ["PUBLIC_URL_ENV", "ShareAddress", "share_address", "lan_address", "is_local_host"]

PUBLIC_URL_ENV = "SBI_PUBLIC_URL"

_HOW_TO_FIX = (f"Set {PUBLIC_URL_ENV} to the address students can reach (e.g. http://192.168.1.20:8501; see "
               "the README) and restart the app, or open this page by that address instead of localhost.")


@dataclass(frozen=True)
class ShareAddress:
    """Where a shared link points (``url``: the page's address, ``None`` when no phone could reach one)."""

    url: Optional[str]
    source: str
    """``"public_url"``, ``"browser"``, ``"server_address"``, ``"lan"`` or ``"none"``."""
    note: str
    """What to tell the person sharing (shown under the QR code, or instead of it)."""


def is_local_host(host: Optional[str]) -> bool:
    """True for an address that means "this computer" on every device (localhost, 127.x, ::1, 0.0.0.0)."""
    host = (host or "").strip("[]").lower()
    if host in ("", "localhost", "localhost.localdomain") or host.endswith(".localhost"):
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    return ip.is_loopback or ip.is_unspecified


def lan_address() -> Optional[str]:
    """This machine's IPv4 address on its network: the interface a packet to a private address would
    leave by (a UDP ``connect`` sends nothing). ``None`` without a network."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("10.255.255.255", 1))
            ip = s.getsockname()[0]
    except OSError:
        return None
    return None if is_local_host(ip) else ip


def _streamlit_option(name: str):
    try:
        from streamlit import config

        return config.get_option(name)
    except Exception:  # noqa: BLE001 - no Streamlit config (plain Python): treat as unset
        return None


def _join(root: str, page: str) -> str:
    return root.rstrip("/") + "/" + page.strip("/") if page.strip("/") else root.rstrip("/") + "/"


def share_address(browser_url: Optional[str], page: str, *, env: Optional[Mapping[str, str]] = None,
                  lan: Optional[Callable[[], Optional[str]]] = None,
                  option: Optional[Callable[[str], object]] = None) -> ShareAddress:
    """The address of app page ``page`` (its url path, e.g. ``"train"``) that students can open.

    ``browser_url`` is the address the page is open at (``st.context.url``; ``None`` without a browser).
    ``env`` (default ``os.environ``), ``lan`` (default :func:`lan_address`) and ``option`` (a Streamlit
    config reader) are injectable for tests.
    """
    env = os.environ if env is None else env
    lan = lan or lan_address
    option = option or _streamlit_option
    public = (env.get(PUBLIC_URL_ENV) or "").strip()
    if public:
        parts = urlsplit(public if "://" in public else "http://" + public)
        if parts.scheme in ("http", "https") and parts.hostname:
            return ShareAddress(_join(f"{parts.scheme}://{parts.netloc}{parts.path}", page), "public_url",
                                "Students can scan the code with a phone.")
    base_path = str(option("server.baseUrlPath") or "").strip("/")
    browser = urlsplit(browser_url or "")
    if browser.hostname and not is_local_host(browser.hostname):
        root = f"{browser.scheme or 'http'}://{browser.netloc}/{base_path}"
        return ShareAddress(_join(root, page), "browser",
                            "Students can scan the code with a phone that reaches this address "
                            "(usually: on the same network).")
    server_address = str(option("browser.serverAddress") or "")
    if server_address and not is_local_host(server_address):
        port = option("browser.serverPort") or option("server.port") or 8501
        return ShareAddress(_join(f"http://{server_address}:{port}/{base_path}", page), "server_address",
                            "Students can scan the code with a phone that reaches this address "
                            "(usually: on the same network).")
    listen = str(option("server.address") or "")
    if listen and is_local_host(listen):
        return ShareAddress(None, "none",
                            f"This page is open at localhost, which on a phone means the phone itself, and "
                            f"the app listens on this computer only (server.address = {listen}), so no "
                            f"phone can open the link. {_HOW_TO_FIX}")
    ip = lan()
    if ip:
        try:
            port = browser.port or option("server.port") or 8501
        except ValueError:
            port = option("server.port") or 8501
        return ShareAddress(_join(f"http://{ip}:{port}/{base_path}", page), "lan",
                            f"The code uses this computer's network address ({ip}) instead of localhost: "
                            "students on the same network (Wi-Fi) can scan it with a phone; a firewall may "
                            f"still block it. To use another address, set {PUBLIC_URL_ENV}.")
    return ShareAddress(None, "none",
                        "This page is open at localhost, which on a phone means the phone itself, and this "
                        f"computer has no network address to use instead, so no phone can open the link. "
                        f"{_HOW_TO_FIX}")
