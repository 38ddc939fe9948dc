"""Class gallery (teacher mode): everyone's latest posterior for one model, side by side.

Open to a session that entered the teacher key (:mod:`sbi_ui.owner`); anyone else is told it needs
the key, and sees no run of anyone.
"""

from __future__ import annotations

import streamlit as st

from sbi_ui.frame import page_guard
from sbi_ui.gallery_view import gallery_view
from sbi_ui.owner import TEACHER_ENV, is_teacher, teacher_key_box, teacher_mode_available

page_guard()
teacher_key_box()

st.title("Class gallery")
st.markdown(
    "Every student's newest finished posterior for the same model, one panel each: with the projector on, "
    "the class sees at once how the answer moves with the observation."
)
if not teacher_mode_available():
    st.info(f"The class gallery needs the teacher key, and this server has none. Whoever starts the app sets "
            f"one in the environment variable `{TEACHER_ENV}` (for example `{TEACHER_ENV}=pick-a-phrase "
            "streamlit run app.py`).", icon=":material/lock:")
    st.stop()
if not is_teacher():
    st.info("The class gallery needs the teacher key: type it into **Teacher key** in the sidebar.",
            icon=":material/lock:")
    st.stop()
gallery_view()
