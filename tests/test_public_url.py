"""The address a shared link and its QR code point to (:mod:`sbi_ui.public_url`).

Issue 19: the QR code encoded ``http://localhost:8501/...`` while the page said "students can scan the
code with a phone": on a phone, localhost is the phone itself.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest
from streamlit.testing.v1 import AppTest

from sbi_ui.public_url import PUBLIC_URL_ENV, is_local_host, share_address

APP = str(Path(__file__).resolve().parent.parent / "app.py")

LOCAL = "http://localhost:8501/train"


def config(**values):
    """A Streamlit config reader with these options set (``server_address`` -> ``server.address``)."""
    options = {k.replace("_", ".", 1): v for k, v in values.items()}
    return lambda name: options.get(name)


def no_lan():
    return None


def test_localhost_and_loopback_are_local():
    for host in ("localhost", "127.0.0.1", "127.0.1.1", "::1", "[::1]", "0.0.0.0", "", None, "app.localhost"):
        assert is_local_host(host), host
    for host in ("192.168.1.20", "10.0.0.5", "sbi.school.example", "fe80::1"):
        assert not is_local_host(host), host


def test_public_url_setting_wins_on_localhost():
    env = {PUBLIC_URL_ENV: "https://sbi.school.example/"}
    got = share_address(LOCAL, "train", env=env, lan=lambda: "192.168.1.20", option=config())
    assert got.url == "https://sbi.school.example/train" and got.source == "public_url"
    # also with a path prefix (a proxy) and without a scheme
    got = share_address(LOCAL, "lessons", env={PUBLIC_URL_ENV: "10.0.0.7:8600/sbi"}, lan=no_lan, option=config())
    assert got.url == "http://10.0.0.7:8600/sbi/lessons"


def test_localhost_browser_gets_the_lan_address_with_the_port():
    got = share_address("http://127.0.0.1:8765/train?spec=abc", "train", env={},
                        lan=lambda: "192.168.1.20", option=config())
    assert got.url == "http://192.168.1.20:8765/train" and got.source == "lan"
    assert "192.168.1.20" in got.note and PUBLIC_URL_ENV in got.note


def test_browser_on_a_reachable_address_keeps_it():
    got = share_address("http://192.168.1.20:8501/train", "train", env={}, lan=lambda: "10.9.9.9",
                        option=config())
    assert got.url == "http://192.168.1.20:8501/train" and got.source == "browser"


def test_streamlit_server_address_is_used_before_guessing():
    opts = config(browser_serverAddress="sbi.lab.example", browser_serverPort=80)
    got = share_address(LOCAL, "train", env={}, lan=lambda: "192.168.1.20", option=opts)
    assert got.url == "http://sbi.lab.example:80/train" and got.source == "server_address"


@pytest.mark.parametrize("why, kwargs", [
    ("no network", dict(lan=no_lan, option=config())),
    ("listens on localhost only", dict(lan=lambda: "192.168.1.20", option=config(server_address="127.0.0.1"))),
])
def test_without_a_reachable_address_it_says_why(why, kwargs):
    got = share_address(LOCAL, "train", env={}, **kwargs)
    assert got.url is None and got.source == "none", why
    assert "localhost" in got.note and "phone" in got.note and PUBLIC_URL_ENV in got.note


def _share_popover(at: AppTest):
    """The "Share this setup" popover's code block and the texts under it."""
    pop = next(p for p in at.get("popover") if "Share this setup" in p.proto.popover.label)
    codes = [c.value for c in pop.get("code")]
    texts = [e.value for kind in ("caption", "warning") for e in pop.get(kind)]
    return codes, texts, pop


def test_train_share_popover_uses_the_public_url(tmp_path, monkeypatch):
    monkeypatch.setenv("SBI_STORE_DIR", str(tmp_path / "store"))
    monkeypatch.setenv(PUBLIC_URL_ENV, "http://sbi.school.example:8501")
    at = AppTest.from_file(APP, default_timeout=90)
    at.switch_page("pages/train.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    codes, texts, _ = _share_popover(at)
    link = codes[0]
    assert link.startswith("http://sbi.school.example:8501/train?spec="), link
    assert urlsplit(link).hostname == "sbi.school.example"
    assert any("scan the code with a phone" in t for t in texts), texts


def test_train_share_popover_says_why_a_phone_cannot_use_it(tmp_path, monkeypatch):
    monkeypatch.setenv("SBI_STORE_DIR", str(tmp_path / "store"))
    monkeypatch.delenv(PUBLIC_URL_ENV, raising=False)
    monkeypatch.setattr("sbi_ui.public_url.lan_address", no_lan)  # a laptop without a network
    at = AppTest.from_file(APP, default_timeout=90)
    at.switch_page("pages/train.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    _, texts, pop = _share_popover(at)
    assert any("no phone can open the link" in t and PUBLIC_URL_ENV in t for t in texts), texts
    assert not [m for m in pop.get("markdown") if "sbi-qr" in m.value], "no QR code a phone cannot use"
    codes, _, _ = _share_popover(at)
    assert "?spec=" in codes[0], codes  # the link itself is still shown, for use on this computer
