"""Which comparison a session shows: its run ids, kept in ``?compare=<id1>,<id2>,...`` and in the session.

The URL wins (a reload, a shared link: a read-only view for whoever has it);
without one, the session's comparison is put back into the URL, as
:func:`sbi_ui.session.sync_current_run` does for ``?run=``.
"""

from __future__ import annotations

import streamlit as st

from sbi_core.run.compare import parse_run_ids

from sbi_ui import keys as K

__all__ = ["comparison_ids", "set_comparison", "forget_comparison"]


def comparison_ids() -> list[str]:
    """The run ids of the comparison shown (well-formed ids only; possibly no longer in the store)."""
    qp = st.query_params.get(K.QP_COMPARE)
    if qp:
        ids = parse_run_ids(qp)
        st.session_state[K.S_COMPARE] = ids
        return ids
    ids = parse_run_ids(",".join(st.session_state.get(K.S_COMPARE) or []))
    if ids:
        st.query_params[K.QP_COMPARE] = ",".join(ids)
    return ids


def set_comparison(ids: list[str]) -> None:
    """Make ``ids`` this session's comparison (and the URL's)."""
    st.session_state[K.S_COMPARE] = list(ids)
    st.query_params[K.QP_COMPARE] = ",".join(ids)


def forget_comparison() -> None:
    st.session_state[K.S_COMPARE] = []
    if K.QP_COMPARE in st.query_params:
        del st.query_params[K.QP_COMPARE]
