"""Every session-state key, widget key and query-parameter name of the app, in one place.

Plain keys (``S_*``) hold app state the code writes itself; widget keys
(``W_*``) belong to one widget each and are stable, so browser tests can find
the widgets (Streamlit renders a keyed widget with the CSS class
``st-key-<key>``). Keys that depend on a name are built by the small functions
at the bottom.
"""

from __future__ import annotations

# ---- query parameters (the URL) -------------------------------------------
QP_RUN = "run"  # ?run=<run id>: the run a page shows; survives refresh and sharing

# ---- plain session state ----------------------------------------------------
S_CURRENT_RUN = "current_run_id"  # str | None: the run the sidebar and pages follow
S_MODEL_CFG = "model_config"  # dict: simulator, prior, observation, true_theta, obs_source
S_PRIOR_SPECS = "prior_specs"  # {model name: last valid prior spec (list of dicts)}
S_TRACKERS = "run_trackers"  # {run id: RunTracker} events folded so far
S_WATCH = "run_watch"  # {run id: signature last drawn} for pages that refresh on change
S_FLASH = "flash"  # (kind, message) shown once on the next page run
S_BOOTED = "booted"  # True once app.py's frame was drawn in this session

# ---- widget keys: sidebar -----------------------------------------------------
W_REVEAL_TRUE = "reveal_true"  # toggle: show the true parameter in plots and on the Model page
W_SIDEBAR_FORGET = "sidebar_forget_run"

# ---- widget keys: Home --------------------------------------------------------
W_START_DEMO = "home_start_demo"  # button "Start demo: two moons, 4 sequential rounds"

# ---- widget keys: Model -------------------------------------------------------
W_OBS_SOURCE = "model_obs_source"  # radio: default / simulate / typed
W_OBS_SEED = "model_obs_seed"
W_OBS_TYPED = "model_obs_typed"
W_PRIOR_RESET = "model_prior_reset"

# ---- widget keys: Train -------------------------------------------------------
W_METHOD = "train_method"
W_SIMS = "train_simulations"
W_ROUNDS = "train_rounds"
W_SEED = "train_seed"
W_ESTIMATOR = "train_estimator"
W_HIDDEN = "train_hidden_features"
W_TRANSFORMS = "train_num_transforms"
W_MAX_EPOCHS = "train_max_epochs"
W_PATIENCE = "train_patience"
W_TITLE = "train_title"
W_START = "train_start"
W_CANCEL = "train_cancel"

# ---- widget keys: Rounds ------------------------------------------------------
W_ROUNDS_RUN = "rounds_run"
W_AXIS_X = "rounds_axis_x"
W_AXIS_Y = "rounds_axis_y"
W_CORNER_ROUND = "rounds_corner_round"
W_CORNER_DOWNLOAD = "rounds_corner_download"

# ---- widget keys: Explore -----------------------------------------------------
W_EXPLORE_RUN = "explore_run"
W_EXPLORE_X = "explore_axis_x"
W_EXPLORE_Y = "explore_axis_y"
W_EXPLORE_RESET = "explore_reset"
W_PPC_SIMS = "explore_ppc_simulations"

# ---- widget keys: Runs --------------------------------------------------------
W_RUNS_SELECT = "runs_select"
W_RUNS_CANCEL = "runs_cancel"
W_RUNS_DELETE = "runs_delete"
W_RUNS_DELETE_CONFIRM = "runs_delete_confirm"
W_RUNS_RERUN = "runs_rerun"
W_RUNS_DOWNLOAD = "runs_download_spec"


def w_model_pick(name: str) -> str:
    """Gallery button that selects model ``name``."""
    return f"model_pick_{name}"


def w_prior_family(model: str, i: int) -> str:
    return f"prior_{model}_{i}_family"


def w_prior_number(model: str, i: int, family: str, number: str) -> str:
    return f"prior_{model}_{i}_{family}_{number}"


def w_obs_theta(model: str, i: int) -> str:
    """Slider for parameter ``i`` of the hidden "true" parameter."""
    return f"model_obs_theta_{model}_{i}"


def w_explore_x(run_id: str, k: int) -> str:
    """Explore-page slider for observation component ``k`` of run ``run_id``."""
    return f"explore_x_{run_id}_{k}"


def w_open_run(where: str, run_id: str) -> str:
    return f"{where}_open_{run_id}"
