"""The dashboard's page scripts, one file per step a user takes (``app.py`` registers them with
``st.navigation``). What they share (state keys, navigation, the current run, messages, the model
choice, widget groups and views) lives in the :mod:`sbi_ui` package.
"""
