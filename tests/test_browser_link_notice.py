"""The link notice's Dismiss button shows its whole label (it was cut to "Di..." in a 12:1 column)."""

from __future__ import annotations

from urllib.parse import quote

from browser_support import browser_test_marks, goto, new_page, wait_idle

pytestmark = browser_test_marks(300)

# JavaScript: whether any element inside the button hides part of its text (clipped or ellipsised)
CLIPPED_JS = """(btn) => [btn, ...btn.querySelectorAll('*')].some(e => e.scrollWidth > e.clientWidth + 1)"""


def test_dismiss_label_is_not_cut_on_a_runs_link(server, browser):
    from sbi_core import RunSpec
    from sbi_core.store.runs import RunStore

    demo = RunSpec.demo()
    store = RunStore(server.store_dir)
    rid = store.create_run(demo, title=demo.title)
    store.finish_run(rid, "cancelled")  # a run record to open; nothing trains
    for width in (1280, 1024):
        page = new_page(browser, server.url)
        page.set_viewport_size({"width": width, "height": 900})
        goto(page, f"/train?run={rid}&spec=" + quote(demo.to_query(), safe=""), 90_000)
        button = page.get_by_role("button", name="Dismiss")
        button.wait_for(timeout=60_000)
        wait_idle(page, 60_000)
        assert button.inner_text().strip() == "Dismiss"
        assert not button.evaluate(CLIPPED_JS), f"the Dismiss label is cut at {width} px"
        page.context.close()
