"""The dashboard's Streamlit helpers: shared sidebar controls, cached model loaders, figure export.

Only `app.py`, `pages/` and this package import Streamlit; everything they show is computed by `memgru`.
"""
