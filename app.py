"""SBI dashboard: the entry point (``streamlit run app.py``).

It sets the page up, keeps the current run in the URL (``?run=<id>``), draws
the shared sidebar and runs the page the user chose with ``st.navigation``.

The app's local Dask cluster (:mod:`sbi_core.jobs.dask_executor`) starts its
workers with multiprocessing's *spawn*, which runs the parent's main module again
in each new process, as ``__mp_main__``; under ``streamlit run`` that module is
this file. A worker has no page to draw, so there :func:`main` is not called: the
worker loads only what its runs need (torch, the methods), not Streamlit, plotly,
pandas and every page -- about 100 MB and two seconds less per worker.
"""

from __future__ import annotations


def main() -> None:
    """Draw the page the user chose, inside the app's frame and error boundary."""
    import streamlit as st

    import sbi_ui.preload  # noqa: F401 - first: every page's modules loaded once, before any page runs
    from sbi_ui.frame import entry, frame
    from sbi_ui.messages import show_error
    from sbi_ui.navigation import PAGE_CONFIG, navigation_pages

    st.set_page_config(**PAGE_CONFIG)
    page = st.navigation(navigation_pages())
    entry(True)
    try:  # the error boundary holds the whole page, its frame (URL, link, sidebar) included
        frame(page.url_path)
        page.run()
    except Exception as err:  # a bug: friendly message, never a raw traceback
        show_error(err, f"drawing the {page.title} page")
    finally:
        entry(False)


if __name__ != "__mp_main__":  # a process spawned by the server (a Dask worker): nothing to draw
    main()
