"""Lessons: short guided lessons that drive the app's own pages and real runs."""

from __future__ import annotations

import streamlit as st

from sbi_ui.frame import page_guard
from sbi_ui.lesson_view import current_step, lesson_picker, step_view
from sbi_ui.session import hide_truth_for_class

page_guard()
hide_truth_for_class()

st.title("Lessons")
st.markdown(
    "Six short lessons for a class, from *what is a simulator* to *can I trust it at my observation*. Each step has "
    "a little text, one thing to do, one picture and one question; the answer stays hidden until you reveal "
    "it. The true parameter stays hidden until you turn on *Show the true parameter* in the sidebar. "
    "Send a step's link (with its QR code) to put every student on the same step."
)
lesson, step = current_step()
lesson_picker(lesson)
step_view(lesson, step)
