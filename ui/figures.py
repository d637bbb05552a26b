"""Figures on a page with their exports: PNG/SVG from the plotly toolbar (client side), HTML and CSV downloads."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st


def plot_config(name: str, image_format: str) -> dict[str, Any]:
    """Plotly config: the toolbar camera saves `name`.png (at 2x) or `name`.svg."""
    options: dict[str, Any] = {"format": image_format, "filename": name}
    if image_format == "png":
        options["scale"] = 2
    return {"displaylogo": False, "toImageButtonOptions": options}


def figure_html(fig: go.Figure, name: str) -> str:
    """A standalone HTML page of the figure (plotly.js embedded, so it opens offline; its camera saves SVG)."""
    return fig.to_html(include_plotlyjs=True, full_html=True, config=plot_config(name, "svg"))


def table_csv(data: pd.DataFrame | Callable[[], pd.DataFrame]) -> str:
    """CSV text of a table (or of the table a function returns), 6 significant digits."""
    table = data() if callable(data) else data
    return table.to_csv(index=False, float_format="%.6g")


def show_figure(fig: go.Figure, data: pd.DataFrame | Callable[[], pd.DataFrame], name: str, key: str) -> None:
    """Draw `fig` with downloads of it as HTML and of `data` (the numbers behind it, or a function
    making them) as CSV. Both files are built only when their button is clicked, without a rerun.
    """
    st.plotly_chart(fig, key=f"{key}_chart", config=plot_config(name, st.session_state.get("image_format", "png")))
    left, right = st.columns(2)
    left.download_button("Figure (HTML)", data=lambda: figure_html(fig, name), file_name=f"{name}.html",
                         mime="text/html", key=f"{key}_html", on_click="ignore")
    right.download_button("Data (CSV)", data=lambda: table_csv(data),
                          file_name=f"{name}.csv", mime="text/csv", key=f"{key}_csv", on_click="ignore")
