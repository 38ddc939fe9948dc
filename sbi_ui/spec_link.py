"""Links that rebuild a setup: ``?spec=<RunSpec.to_query()>`` read into the Model choice and the Train form.

A link is read once per session and string (the forms stay the user's to change
afterwards); the Train page then keeps the setup on screen in ``?spec=``
(:func:`keep_in_url`): the run it shows (:func:`url_setup`: until the form is changed), else the form's,
so the address bar always holds the setup on screen. What it holds is validated by the
one RunSpec validation and admitted like any spec from elsewhere
(:func:`sbi_core.uploads.files.admit_spec`): built-in models, or this server's
uploads; never another file path. A link that cannot be used says why and the
page goes on from the defaults.

The Train form shows the most used settings; the others a link may carry
(batch size, learning rate, validation fraction, posterior samples, threads)
are kept in :data:`keys.S_LINK_EXTRAS` and go into the next RunSpec, so a setup
survives the round trip link -> form -> link.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Optional
from urllib.parse import quote

import streamlit as st

from sbi_core import RunSpec, SBIError
from sbi_core.uploads.files import admit_spec

from sbi_ui import keys as K
from sbi_ui import prior_editor as pe
from sbi_ui.model_choice import ModelChoice
from sbi_ui.owner import owner_token
from sbi_ui.public_url import share_address
from sbi_ui.resources import store_root
from sbi_ui.session import forget_current_run
from sbi_ui.user_text import plain

__all__ = ["EXTRA_FIELDS", "sync_spec_link", "show_link_notice", "link_extras", "setup_link", "share_setup", "qr_svg",
           "keep_in_url", "url_setup", "page_url"]

EXTRA_FIELDS = ("batch_size", "learning_rate", "validation_fraction", "num_posterior_samples", "num_threads")
_FORM = {  # Train form widget key -> RunSpec field
    K.W_METHOD: "method",
    K.W_SIMS: "simulations_per_round",
    K.W_ROUNDS: "num_rounds",
    K.W_SEED: "seed",
    K.W_ESTIMATOR: "density_estimator",
    K.W_EMBEDDING: "embedding",
    K.W_HIDDEN: "hidden_features",
    K.W_TRANSFORMS: "num_transforms",
    K.W_MAX_EPOCHS: "max_epochs",
    K.W_PATIENCE: "patience",
    K.W_TITLE: "title",
}


def _upload_choice(spec: RunSpec, ref: dict) -> ModelChoice:
    """The choice for an upload of this server (admitted): the link must carry its prior and observation."""
    if spec.prior is None or spec.observation is None:
        raise SBIError("This link names an uploaded simulator but not its prior and observation, which live in "
                       "the file and are not read from a link. Share the run's RunSpec file (Runs page) instead.")
    path = Path(ref["path"])
    names = [m["name"] for m in spec.prior]
    key = f"upload_{path.parent.name}_link"
    pe.set_prior(key, spec.prior)
    return ModelChoice(simulator=f"upload:{path.name}", simulator_ref=ref, title=str(ref.get("name") or path.stem),
                       param_names=names, obs_names=[f"x{k + 1}" for k in range(len(spec.observation))],
                       prior=spec.prior, observation=spec.observation, true_theta=spec.true_theta,
                       obs_source="upload", prior_key=key, prior_text="the link's prior")


def _model_choice(spec: RunSpec) -> ModelChoice:
    """The Model page's choice for ``spec``'s model (a built-in, or an upload of this server), prior and observation."""
    ref = spec.simulator_ref
    if ref["kind"] == "upload":
        return _upload_choice(spec, ref)
    if ref["kind"] != "builtin":
        raise SBIError("This link names a table of simulations; a table travels in the run's RunSpec file "
                       "(download it on Runs and import it on Your model & data).")
    name = ref["name"]
    if spec.prior is not None:
        pe.set_prior(name, spec.prior)
    else:
        pe.forget_prior_edits(name)
    source = "default" if spec.observation is None else "typed"
    st.session_state[K.W_OBS_SOURCE] = source
    if spec.observation is not None:
        st.session_state[K.W_OBS_TYPED] = ", ".join(repr(float(v)) for v in spec.observation)
    return ModelChoice(simulator=name, prior=spec.prior, observation=spec.observation,
                       true_theta=spec.true_theta, obs_source=source)


def _apply(spec: RunSpec) -> None:
    _model_choice(spec).save()
    for key, field in _FORM.items():
        st.session_state[key] = getattr(spec, field)
    st.session_state[K.S_LINK_EXTRAS] = {f: getattr(spec, f) for f in EXTRA_FIELDS}


def sync_spec_link() -> None:
    """Read a new ``?spec=`` into this session (called first on every run, by the frame).

    Any failure while reading the link, a refused setting or a bug, becomes the link's message
    (:func:`show_link_notice`) and the page goes on from the defaults: a link never breaks a page."""
    query = st.query_params.get(K.QP_SPEC)
    if query is None or st.session_state.get(K.S_LINK_SEEN) == query:
        return  # no link, or the one this session wrote or read already
    st.session_state[K.S_LINK_SEEN] = query
    try:
        spec = admit_spec(RunSpec.from_query(query), store_root(), owner=owner_token())
        _apply(spec)
    except Exception as err:  # noqa: BLE001 - whatever a link holds, it never takes the page down
        if K.QP_SPEC in st.query_params:
            del st.query_params[K.QP_SPEC]
        why = (plain(err) if isinstance(err, SBIError)
               else f"it could not be read ({type(err).__name__}). Copy the whole link again, or ask for a new one.")
        st.session_state[K.S_LINK_NOTICE] = ("error", f"This link's setup could not be used: {why} "
                                                      "The page starts from the defaults instead.")
        return
    if K.QP_RUN not in st.query_params:
        forget_current_run()  # the page shows the new setup, not a run this session followed before
    what = spec.title or f"{spec.simulator_ref.get('name', 'the model')} with {spec.method.upper()}"
    st.session_state[K.S_LINK_NOTICE] = ("success", f"Set up from the link: {plain(what)}. Check it and press Start.")



def show_link_notice() -> None:
    """The outcome of the last link read, at the top of the page until dismissed."""
    notice = st.session_state.get(K.S_LINK_NOTICE)
    if not notice:
        return
    kind, text = notice
    # one row that gives the button its own width and the message the rest (a 12:1 column cut the
    # label to "Di..."); on a narrow screen the button wraps under the message instead
    row = st.container(horizontal=True, vertical_alignment="center", key="link_notice_row")
    (row.error if kind == "error" else row.success)(text, icon=":material/link:", width="stretch")
    if row.button("Dismiss", key=K.W_LINK_DISMISS, help="Hide this message.", width="content"):
        st.session_state[K.S_LINK_NOTICE] = None
        st.rerun()


def keep_in_url(spec: RunSpec) -> None:
    """The Train form's setup, kept in the URL as ``?spec=`` as it changes: a reload, a bookmark or a copied
    address rebuilds it (marked as read, so this session does not apply it back onto its own form)."""
    if spec.simulator_ref["kind"] == "table":
        return  # a table travels in its RunSpec file, not in a link
    query = spec.to_query()
    st.session_state[K.S_LINK_SEEN] = query
    if st.query_params.get(K.QP_SPEC) != query:
        st.query_params[K.QP_SPEC] = query


def url_setup(form: Optional[RunSpec], run_id: Optional[str], run_spec: Optional[RunSpec]) -> Optional[RunSpec]:
    """The setup the Train page keeps in ``?spec=``: the run on screen's own RunSpec, until the form changes.

    The address of a run (``?run=<id>&spec=...``) must describe that run: opened in
    another browser, the link's notice names its setup and the form holds it, so it
    carries the run's spec (the demo's, say), not the form's defaults that happened
    to sit in the closed "Set up a new run" box. Once the user edits the form (its
    setup differs from the one it held when this run came on screen), the address
    follows the form again, as the module docstring says. ``form``: the form's spec
    (``None`` while it has errors); ``run_id``, ``run_spec``: the run on screen, or ``None``.
    """
    if run_id is None or run_spec is None:
        return form
    query = form.to_query() if form is not None else None
    seen = st.session_state.get(K.S_LINK_RUN_FORM)
    if not seen or seen[0] != run_id:  # this run just came on screen: remember the form as it is
        st.session_state[K.S_LINK_RUN_FORM] = (run_id, query)
        return run_spec
    return run_spec if seen[1] == query else form


def link_extras() -> dict:
    """The RunSpec settings of the last link that the Train form does not show (empty without a link)."""
    return dict(st.session_state.get(K.S_LINK_EXTRAS) or {})


def setup_link(spec: RunSpec, base_url: Optional[str] = None) -> str:
    """The link that rebuilds ``spec`` here: ``<this page>?spec=...`` (a relative one without ``base_url``)."""
    query = "spec=" + quote(spec.to_query(), safe="")
    return f"{page_url(base_url)}?{query}"


def page_url(base_url: Optional[str] = None) -> str:
    """This page's address without its query (``""`` where there is no browser, as under AppTest)."""
    if base_url is None:
        try:
            base_url = st.context.url
        except Exception:  # noqa: BLE001 - no browser context (AppTest)
            base_url = None
    return (base_url or "").split("?")[0]


def share_setup(spec: RunSpec) -> None:
    """A "Share this setup" popover: the link that puts anyone on this exact setup, with a copy button."""
    if spec.simulator_ref["kind"] == "table":
        return  # a table travels in the RunSpec file (Your model & data), not in a link
    with st.popover("Share this setup", icon=":material/link:", help="A link that opens this model, prior, "
                    "observation and these settings on this server, for students or for later."):
        # a link built on http://localhost would send every phone to itself: use the address students reach
        address = share_address(page_url(), "train")
        link = setup_link(spec, address.url or page_url())
        where = (" on this server (the link names its uploaded simulator)" if spec.simulator_ref["kind"] == "upload"
                 else "")
        st.markdown(f"Anyone opening this link{where} gets this setup on the Train page (nothing starts by itself):")
        st.code(link, language=None, wrap_lines=True)
        if address.url is None:  # no QR code a phone could use: say why instead
            st.warning(address.note, icon=":material/phonelink_off:")
            return
        # st.html strips SVG; the markup is ours (segno's QR code of our own link), so markdown may keep it
        st.markdown(f"<div class='sbi-qr' title='Scan for the link'>{qr_svg(link)}</div>", unsafe_allow_html=True)
        st.caption(address.note)


@functools.lru_cache(maxsize=256)
def qr_svg(text: str, scale: int = 4) -> str:
    """The QR code of ``text`` as inline SVG (``segno``; medium error correction, dark on white).

    Kept per text: the share box draws it on every run of its page (an expander's content is
    built even while it is closed), and encoding a link takes segno about 50 ms."""
    import segno

    return segno.make(text, error="m").svg_inline(scale=scale, dark="#000", light="#fff")
