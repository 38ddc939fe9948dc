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
QP_TRUTH = "truth"  # ?truth=hidden: the true parameter is hidden (sidebar toggle off); survives refresh
QP_TRUTH_HIDDEN = "hidden"
QP_LESSON = "lesson"  # ?lesson=<slug>&step=<n>: the lesson step shown (a teacher's link)
QP_STEP = "step"
QP_PROJECTOR = "projector"  # ?projector=on: larger fonts, high contrast, fewer controls
QP_PROJECTOR_ON = "on"
QP_SPEC = "spec"  # ?spec=<RunSpec.to_query()>: a link that rebuilds a setup (read once, then removed)
# the Rounds page's view (sbi_ui.view_state); other pages ignore them
QP_ROUND = "round"  # ?round=<k>: the round shown in "One round in detail", 1-based
QP_AXES = "axes"  # ?axes=<x name>,<y name>: the animation's axes, by parameter name

# ---- plain session state ----------------------------------------------------
S_CURRENT_RUN = "current_run_id"  # str | None: the run the sidebar and pages follow
S_MODEL_CFG = "model_config"  # ModelChoice (sbi_ui.model_choice): the model the next run uses
S_PRIOR_SPECS = "prior_specs"  # {model name: last valid prior spec (list of dicts)}
S_TRACKERS = "run_trackers"  # {run id: RunTracker} events folded so far
S_FLASH = "flash"  # (kind, message) shown once on the next page run
S_BOOTED = "booted"  # True once app.py's frame was drawn in this session
S_LINK_SEEN = "link_seen"  # str: the last ?spec= read in this session (a reload does not re-apply it)
S_LINK_NOTICE = "link_notice"  # (kind, message) of the last link read, shown until dismissed
S_LINK_EXTRAS = "link_extras"  # dict: the link's RunSpec settings the Train form does not show
S_LINK_RUN_FORM = "link_run_form"  # (run id, form query) when that run came on the Train page (spec_link.url_setup)
W_LINK_DISMISS = "link_dismiss"
S_LESSONS_SEEN = "lessons_seen"  # True once this session opened a lesson (the truth then starts hidden)
S_REVEAL_TRUE = "reveal_true_on"  # bool: show the true parameter (the sidebar toggle is drawn from it)
S_LESSON_RUNS = "lesson_runs"  # {lesson run name: run id} the runs lessons started in this session
W_LESSON_PICK = "lesson_pick"  # select box: which lesson
W_LESSON_REVEAL = "lesson_reveal"  # toggle: show the answer to the step's question
W_LESSON_PREV = "lesson_prev"
W_LESSON_NEXT = "lesson_next"
S_PROJECTOR = "projector"  # bool: projector mode is on (the toggle below is drawn from it)
W_PROJECTOR = "projector_mode"  # sidebar toggle: projector mode
W_ROUND_CSV = "export_round_csv"  # download: the chosen round's samples (Rounds)
W_RUN_NETCDF = "export_run_netcdf"  # download: the run as ArviZ NetCDF (Rounds)
W_RUN_REPORT = "export_run_report"  # download: the run's one-file HTML report (Rounds)
W_RUNS_REPORT = "runs_report"  # the same on the Runs page
W_ROUNDS_FIGURE = "export_rounds_figure"  # downloads: the rounds figure as PNG / SVG (key prefix)
W_CODE_TRAIN = "code_train"  # "Show code" panel of the Train page (its widgets' key prefix)
W_CODE_ROUNDS = "code_rounds"

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

# ---- Your model & data (pages/data.py, sbi_ui/data/) -----------------------------
# plain state: the last *valid* upload of each kind (a rejected upload never replaces it),
# the last rejection's message, and the id of the uploaded file last looked at
S_DATA_SIM = "data_sim"  # dict: saved path, file name, title, doc, PRIOR/OBSERVATION of the file, K
S_DATA_SIM_ERROR = "data_sim_error"  # dict: file name, message, kind, line  | None
S_DATA_SIM_SEEN = "data_sim_seen"  # file id of the simulator upload last processed
S_DATA_TABLE = "data_table"  # dict: saved path, file name, columns, rows
S_DATA_TABLE_ERROR = "data_table_error"
S_DATA_TABLE_SEEN = "data_table_seen"
S_DATA_TABLE_COLS = "data_table_cols"  # dict: table sha, confirmed theta and x columns
S_DATA_TABLE_OBS = "data_table_obs"  # list[float]: last valid observation for a table run
S_DATA_TABLE_OBS_ERROR = "data_table_obs_error"
S_DATA_TABLE_OBS_SEEN = "data_table_obs_seen"
S_DATA_OBS = "data_obs"  # dict: file name, rows (M, K), k: last valid observations file (amortized view)
S_DATA_OBS_ERROR = "data_obs_error"
S_DATA_OBS_SEEN = "data_obs_seen"
S_DATA_PRIOR_MSG = "data_prior_msg"  # (kind, message) of the last prior import
S_DATA_PRIOR_SEEN = "data_prior_seen"
S_DATA_SPEC = "data_spec"  # dict: last valid imported RunSpec
S_DATA_SPEC_ERROR = "data_spec_error"
S_DATA_SPEC_SEEN = "data_spec_seen"

# widget keys
W_DATA_TABS = "data_tabs"
W_DATA_SIM_FILE = "data_sim_file"  # file uploader (.py)
W_DATA_SIM_NAMES = "data_sim_param_names"  # text: parameter names when the file has no PRIOR
W_DATA_SIM_CHECK = "data_sim_check"  # button "Check the simulator with this prior"
W_DATA_SIM_OBS_SOURCE = "data_sim_obs_source"
W_DATA_SIM_OBS_TYPED = "data_sim_obs_typed"  # prefix: see w_data_sim_obs_typed
W_DATA_SIM_USE = "data_sim_use"  # button "Use this simulator"
W_DATA_SIM_FORGET = "data_sim_forget"
W_DATA_TABLE_FILE = "data_table_file"  # file uploader (.csv, .parquet)
W_DATA_THETA_COLS = "data_theta_columns"  # multiselect: parameter columns
W_DATA_X_COLS = "data_x_columns"  # multiselect: simulated-data columns
W_DATA_TABLE_COLS_OK = "data_table_cols_ok"  # button "Use these columns" (confirms the mapping)
W_DATA_TABLE_OBS_SOURCE = "data_table_obs_source"
W_DATA_TABLE_OBS_TYPED = "data_table_obs_typed"  # prefix: see w_data_table_obs_typed
W_DATA_TABLE_OBS_FILE = "data_table_obs_file"
W_DATA_TABLE_EPOCHS = "data_table_max_epochs"
W_DATA_TABLE_SEED = "data_table_seed"
W_DATA_TABLE_TRAIN = "data_table_train"  # button "Train amortized NPE on this table"
W_DATA_TABLE_FORGET = "data_table_forget"
W_DATA_OBS_RUN = "data_obs_run"  # run picker (amortized runs)
W_DATA_OBS_FILE = "data_obs_file"  # file uploader: observations CSV
W_DATA_OBS_AXIS_X = "data_obs_axis_x"
W_DATA_OBS_AXIS_Y = "data_obs_axis_y"
W_DATA_PRIOR_FILE = "data_prior_file"
W_DATA_PRIOR_TEXT = "data_prior_text"
W_DATA_PRIOR_APPLY = "data_prior_apply"
W_DATA_PRIOR_DOWNLOAD = "data_prior_download"
W_DATA_SPEC_DOWNLOAD = "data_spec_download"
W_DATA_SPEC_FILE = "data_spec_file"
W_DATA_SPEC_TEXT = "data_spec_text"
W_DATA_SPEC_CHECK = "data_spec_check"
W_DATA_SPEC_START = "data_spec_start"
W_RUN_MISSING_FORGET = "run_missing_forget"  # button "Forget it" under "run ... was not found" on a page
W_DATA_SPEC_CONFIRM = "data_spec_start_confirm"  # "Yes, start this long run" for an imported RunSpec
W_DATA_SPEC_BACK = "data_spec_start_back"  # "No, change the settings" for an imported RunSpec
S_DATA_SPEC_PENDING = "data_spec_start_pending"  # dict: the imported RunSpec waiting for a confirmation
C_DATA_SPEC_CONFIRM = "data_spec_confirm_box"  # the imported RunSpec's long-run confirmation

# ---- widget keys: Train -------------------------------------------------------
W_METHOD = "train_method"
W_SIMS = "train_simulations"
W_ROUNDS = "train_rounds"
W_SEED = "train_seed"
W_ESTIMATOR = "train_estimator"
W_EMBEDDING = "train_embedding"
W_DATA_TABLE_SHAPE = "data_table_shape"
W_HIDDEN = "train_hidden_features"
W_TRANSFORMS = "train_num_transforms"
W_MAX_EPOCHS = "train_max_epochs"
W_PATIENCE = "train_patience"
W_TITLE = "train_title"
W_START = "train_start"
W_START_CONFIRM = "train_start_confirm"  # button "Yes, start this long run" (after the time estimate)
W_START_BACK = "train_start_back"  # button "No, change the settings"
W_CANCEL = "train_cancel"
W_STOP_KEEP = "train_stop_keep"  # button "Stop and keep what is trained"
S_LIVE_WATCH = "train_live_watch"  # {run id: sbi_ui.live_cache.ViewWatch}: has the live view kept up
W_LIVE_RELOAD = "train_live_reload"  # button "Reload" under "This view stopped updating"
S_START_PENDING = "train_start_pending"  # dict: the RunSpec waiting for a long-run confirmation
# containers (keyed so browser tests find them)
C_START_CONFIRM = "train_confirm_box"  # the long-run confirmation
C_RUN_HEADER = "train_run_header"  # the run title, badge, spec line and Stop / Cancel
C_METRICS = "train_metrics"  # the one-line summary of rounds, simulations, epochs, time
C_GLOSSARY = "train_glossary"  # expander "What the words on this page mean"
C_TRAIN_MODEL = "train_model_banner"  # the model the next run uses, at the top of the form
C_DATA_SIM_TOP = "data_sim_top"  # right after an accepted simulator upload: "Use this simulator"

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
W_EXPLORE_START = "explore_start_npe"  # button "Train an amortized posterior" (no amortized run yet)

# ---- widget keys: Check (pages/check.py, sbi_ui/check_*.py) --------------------------
W_CHECK_RUN = "check_run"  # run picker
W_CHECK_DATASETS = "check_num_datasets"  # number input: test datasets
W_CHECK_SAMPLES = "check_num_samples"  # number input: posterior draws per dataset
W_CHECK_ENSEMBLE = "check_ensemble_members"  # selectbox: estimators to compare at the observation (0: off)
W_CHECK_START = "check_start"  # button "Run the checks" / "Check again"
W_CHECK_CANCEL = "check_cancel"  # button "Cancel the checks"
W_CHECK_BREAK = "check_break_it"  # button "Break it: train it badly and compare"
W_CHECK_TWIN_CANCEL = "check_twin_cancel"  # button: cancel the broken twin's run and checks
C_CHECK_STATUS = "check_status"  # container: the check job's status and progress bar
C_CHECK_OVERALL = "check_overall"  # container: the overall verdict of a column


def c_check_chart(name: str, column: int) -> str:
    """Check-page chart ``name`` (``"sbc_ranks"``, ``"coverage"``, ...) of column ``column`` (0: this run,
    1: its broken twin)."""
    return f"check_{name}_{column}"


# ---- widget keys: Runs --------------------------------------------------------
W_RUNS_SELECT = "runs_select"
W_RUNS_CANCEL = "runs_cancel"
W_RUNS_DELETE = "runs_delete"
W_RUNS_DELETE_CONFIRM = "runs_delete_confirm"  # prefix: see w_runs_confirm (one box per run and action)
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


def w_runs_confirm(action: str, run_id: str) -> str:
    """Runs-page box "Yes, <action> this run" for run ``run_id``: a tick confirms one action on one
    run, so it can never carry over to the run shown next."""
    return f"runs_{action}_confirm_{run_id}"


def w_data_sim_obs_typed(upload: str) -> str:
    """Typed observation for the uploaded simulator ``upload`` (its content hash)."""
    return f"{W_DATA_SIM_OBS_TYPED}_{upload}"


def w_data_sim_shape(upload: str) -> str:
    """How the uploaded simulator ``upload``'s simulations are read (a series, an image, separate numbers)."""
    return f"data_sim_shape_{upload}"


def w_data_table_obs_typed(k: int) -> str:
    """Typed observation of ``k`` numbers for a run on a table."""
    return f"{W_DATA_TABLE_OBS_TYPED}_{k}"


def s_lesson_seen(run_id: str) -> str:
    """The last status of a lesson's run that its step has drawn (a finished run redraws the step once)."""
    return f"lesson_seen_{run_id}"


def w_lesson(slug: str, step: int) -> str:
    """Key prefix of the widgets of step ``step`` (0-based) of lesson ``slug``."""
    return f"lesson_{slug}_{step}"


# ---- Compare (pages/compare.py, sbi_ui/compare_*.py) --------------------------------
QP_COMPARE = "compare"  # ?compare=<id1>,<id2>,...: the runs of the comparison shown; survives refresh
S_COMPARE = "compare_run_ids"  # list[str]: this session's comparison (the URL wins on a reload)
W_COMPARE_METHODS = "compare_methods"  # multiselect: the methods to race
W_COMPARE_BUDGETS = "compare_budgets"  # text: total simulations per method, comma-separated
W_COMPARE_ROUNDS = "compare_rounds"  # number: rounds of a sequential method
W_COMPARE_EPOCHS = "compare_max_epochs"
W_COMPARE_SEED = "compare_seed"
W_COMPARE_START = "compare_start"  # button "Start comparison"
W_COMPARE_CANCEL = "compare_cancel"  # button: cancel the comparison's queued and running runs
W_COMPARE_AXIS_X = "compare_axis_x"
W_COMPARE_AXIS_Y = "compare_axis_y"
C_COMPARE_STATUS = "compare_status"  # container: one row per run (status, round, simulations, time, link)
C_COMPARE_CLOUDS = "compare_clouds_chart"  # chart: the final clouds side by side
C_COMPARE_C2ST = "compare_c2st_chart"  # chart: C2ST against simulations
C_COMPARE_TABLE = "compare_table"  # the results table
W_COMPARE_FORGET = "compare_forget"  # button "Clear this comparison" (its runs stay in the store)


# ---- owners and teacher mode (sbi_ui/owner.py, pages/gallery.py) ----------------------
S_OWNER = "owner_token"  # str: this browser's owner token (also in the cookie sbi_owner)
S_TEACHER = "teacher_mode"  # bool: the teacher key was entered in this session (never in the URL)
W_TEACHER_KEY = "teacher_key"  # password box in the sidebar of Runs and Class gallery
W_TEACHER_LEAVE = "teacher_leave"  # button "Leave teacher mode"
C_OWNER_COOKIE = "owner_cookie"  # container of the script that writes the cookie (takes no room)
C_READ_ONLY = "run_read_only"  # container: "You are viewing someone else's run (read-only)"
W_GALLERY_MODEL = "gallery_model"  # select box: the built-in model of the class gallery
W_GALLERY_AXIS_X = "gallery_axis_x"
W_GALLERY_AXIS_Y = "gallery_axis_y"
C_GALLERY_CHART = "gallery_chart"  # chart: everyone's latest posterior, one panel per owner
W_RESUME = "run_resume"  # button "Resume from round k" of a failed or cancelled run (live view)
W_RUNS_RESUME = "runs_resume"  # the same button on the Runs page
W_COMPARE_SUMMARIES = "compare_summaries"  # multiselect: the summaries of the data to compare (data that is not a vector)
