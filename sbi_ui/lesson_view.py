"""Drawing a lesson: the step from the URL (``?lesson=<slug>&step=<n>``), its text, action and picture,
its question with the answer hidden until revealed, Back/Next, and a link (with QR code) to the step."""

from __future__ import annotations

from typing import Optional
from urllib.parse import urlencode

import streamlit as st

from sbi_ui import keys as K
from sbi_ui.lessons import LESSONS, Lesson, get_lesson
from sbi_ui.public_url import share_address
from sbi_ui.spec_link import page_url, qr_svg

__all__ = ["current_step", "lesson_picker", "step_view", "step_link"]


def _choice_label(lesson) -> str:
    """``"title: summary"``, without a colon after a title that ends in a question mark or a full stop."""
    sep = " " if lesson.title.rstrip().endswith(("?", ".", "!")) else ": "
    return f"{lesson.title}{sep}{lesson.summary}"


def current_step() -> tuple[Lesson, int]:
    """The lesson and 0-based step the URL names (the first lesson's first step if it names none or a bad one)."""
    lesson = get_lesson(st.query_params.get(K.QP_LESSON)) or LESSONS[0]
    try:
        step = int(st.query_params.get(K.QP_STEP, "1")) - 1
    except ValueError:
        step = 0
    return lesson, min(max(step, 0), len(lesson.steps) - 1)


def _go(slug: str, step: int) -> None:
    st.query_params[K.QP_LESSON] = slug
    st.query_params[K.QP_STEP] = str(step + 1)


def _picked() -> None:
    _go(st.session_state[K.W_LESSON_PICK], 0)


def lesson_picker(lesson: Lesson) -> None:
    """A select box of the lessons; choosing one opens its first step."""
    slugs = [les.slug for les in LESSONS]
    st.session_state[K.W_LESSON_PICK] = lesson.slug
    st.selectbox("Lesson", slugs, format_func=lambda s: _choice_label(get_lesson(s)),
                 key=K.W_LESSON_PICK, on_change=_picked)


def step_link(lesson: Lesson, step: int, base_url: Optional[str] = None) -> str:
    """The link that opens this step (keeps projector mode when it is on)."""
    params = {K.QP_LESSON: lesson.slug, K.QP_STEP: step + 1}
    if st.query_params.get(K.QP_PROJECTOR) == K.QP_PROJECTOR_ON:
        params[K.QP_PROJECTOR] = K.QP_PROJECTOR_ON
    return f"{page_url(base_url)}?{urlencode(params)}"


def _question(lesson: Lesson, step: int) -> None:
    s = lesson.steps[step]
    with st.container(border=True, key=f"lesson_question_{lesson.slug}_{step}"):
        st.markdown(f"**Question.** {s.question}")
        if st.toggle("Reveal the answer", key=f"{K.W_LESSON_REVEAL}_{lesson.slug}_{step}"):
            st.markdown(f"**Answer.** {s.answer}")


def _nav(lesson: Lesson, step: int) -> None:
    back, info, share, nxt = st.columns([1, 1.4, 1.6, 1.2], vertical_alignment="center")
    back.button("Back", key=K.W_LESSON_PREV, icon=":material/arrow_back:", disabled=step == 0,
                on_click=_go, args=(lesson.slug, step - 1), width="stretch")
    info.caption(f"Step {step + 1} of {len(lesson.steps)}")
    with share.popover("Share step", icon=":material/qr_code_2:", width="stretch"):
        address = share_address(page_url(), "lessons")  # not http://localhost: see sbi_ui.public_url
        link = step_link(lesson, step, address.url or page_url())
        st.code(link, language=None, wrap_lines=True)
        if address.url is None:
            st.warning(address.note, icon=":material/phonelink_off:")
        else:
            st.markdown(f"<div class='sbi-qr'>{qr_svg(link)}</div>", unsafe_allow_html=True)  # see spec_link
            st.caption(address.note)
    last = step == len(lesson.steps) - 1
    index = [les.slug for les in LESSONS].index(lesson.slug)
    if not last:
        nxt.button("Next", key=K.W_LESSON_NEXT, icon=":material/arrow_forward:", type="primary",
                   on_click=_go, args=(lesson.slug, step + 1), width="stretch")
    elif index + 1 < len(LESSONS):
        nxt.button("Next lesson", key=K.W_LESSON_NEXT, icon=":material/arrow_forward:", type="primary",
                   on_click=_go, args=(LESSONS[index + 1].slug, 0), width="stretch")


def step_view(lesson: Lesson, step: int) -> None:
    """Step ``step`` of ``lesson``: title, text, the action and its picture, the question, navigation."""
    s = lesson.steps[step]
    st.subheader(f"{lesson.title} · step {step + 1}: {s.title}")
    st.markdown(s.text)
    with st.container(key=f"lesson_action_{lesson.slug}_{step}"):
        s.draw(K.w_lesson(lesson.slug, step))
    _question(lesson, step)
    _nav(lesson, step)
