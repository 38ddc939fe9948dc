"""The app's pages: their files, titles and sections for ``st.navigation``, and the page setup."""

from __future__ import annotations

import streamlit as st

from sbi_ui.owner import teacher_mode_available

__all__ = ["HOME", "LESSONS", "MODEL", "DATA", "TRAIN", "ROUNDS", "EXPLORE", "CHECK", "COMPARE", "RUNS", "GALLERY",
           "TRAIN_PATH", "PAGE_CONFIG", "navigation_pages"]

# ---- page files (st.navigation registers them in app.py) --------------------
HOME = "pages/home.py"
MODEL = "pages/model.py"
TRAIN = "pages/train.py"
TRAIN_PATH = "train"  # its URL path
ROUNDS = "pages/rounds.py"
EXPLORE = "pages/explore.py"
CHECK = "pages/check.py"
COMPARE = "pages/compare.py"
LESSONS = "pages/lessons.py"
RUNS = "pages/runs.py"
DATA = "pages/data.py"
GALLERY = "pages/gallery.py"

PAGE_CONFIG = dict(
    page_title="SBI dashboard",
    page_icon=":material/scatter_plot:",
    layout="wide",
    initial_sidebar_state="expanded",
)


def navigation_pages() -> dict:
    """The app's pages for ``st.navigation``, in sections.

    The Class gallery is always routed (its link works) but listed only where the operator set a
    teacher key (:mod:`sbi_ui.owner`); it asks for the key itself.
    """
    gallery_shown = "visible" if teacher_mode_available() else "hidden"
    return {
        "Learn": [
            st.Page(HOME, title="Home", icon=":material/home:", default=True),
            st.Page(LESSONS, title="Lessons", icon=":material/school:", url_path="lessons"),
        ],
        "Infer": [
            st.Page(MODEL, title="Model", icon=":material/tune:", url_path="model"),
            st.Page(DATA, title="Your model & data", icon=":material/upload_file:", url_path="data"),
            st.Page(TRAIN, title="Train", icon=":material/monitoring:", url_path=TRAIN_PATH),
            st.Page(ROUNDS, title="Rounds", icon=":material/animation:", url_path="rounds"),
            st.Page(EXPLORE, title="Explore", icon=":material/explore:", url_path="explore"),
            st.Page(CHECK, title="Check", icon=":material/fact_check:", url_path="check"),
            st.Page(COMPARE, title="Compare", icon=":material/compare:", url_path="compare"),
        ],
        "Manage": [
            st.Page(RUNS, title="Runs", icon=":material/list_alt:", url_path="runs"),
            st.Page(GALLERY, title="Class gallery", icon=":material/grid_view:", url_path="gallery",
                    visibility=gallery_shown),
        ],
    }
