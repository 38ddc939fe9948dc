"""The dashboard's pages (one file per step a user takes) and their shared UI helpers.

``app.py`` registers the page files with ``st.navigation``; ``ui_state`` names
every session-state key and query parameter, ``ui_common`` holds what the pages
share (store, job manager, current run, sidebar, event reading, errors).
"""
