"""What the dashboard's pages share: one concern per module, no page scripts.

``pages/`` holds only the page scripts (one per step a user takes); they import
from here:

* :mod:`.keys`: every session-state key, widget key and query parameter;
* :mod:`.navigation`: the page files and ``st.navigation``; :mod:`.frame`: the
  frame around every page (``page_guard``);
* :mod:`.resources`: the store, the job manager, built-in simulators, loaded posteriors;
* :mod:`.session`: the current run and the URL (``?run=``, ``?truth=``), starting
  and following runs; :mod:`.tracker`: a run's events folded;
* :mod:`.owner`: which browser owns a run (a cookie, no accounts) and teacher mode;
* :mod:`.messages`: toasts and errors in plain words; :mod:`.naming` and
  :mod:`.format`: how runs, models, methods, times are named;
* :mod:`.model_choice`: the typed model the next run uses (:class:`~.model_choice.ModelChoice`);
* :mod:`.run_context`: what a stored run is about; :mod:`.sidebar`;
* widget groups and views of one page each: :mod:`.prior_editor`, :mod:`.model_gallery`,
  :mod:`.observation_input`, :mod:`.prior_predictive_view`, :mod:`.train_settings`,
  :mod:`.train_start`, :mod:`.estimate`, :mod:`.live_view`, :mod:`.rounds_view`,
  :mod:`.explorer`, :mod:`.spec_view`, :mod:`.axes`, :mod:`.gallery_view` (the teacher's class
  gallery), the Compare page's :mod:`.compare_form` / :mod:`.compare_view`, and the tabs of *Your model & data*
  in :mod:`.data`.

Nothing here does maths: that is :mod:`sbi_core`'s.
"""
