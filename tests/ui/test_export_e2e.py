"""Downloads in Chromium: metrics CSV (tab 6), an array as .npy (tab 3), a PNG."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from sessions import Session

pytestmark = pytest.mark.ui


def _download(page: Any, control: Any, folder: Path) -> Path:
    """Click ``control`` once it shows; return the file the browser downloads."""
    control.wait_for(timeout=60_000)
    with page.expect_download(timeout=60_000) as info:
        control.click()
    download = info.value
    saved = folder / download.suggested_filename
    download.save_as(saved)
    return saved


def test_metrics_download_on_tab_6_gives_the_session_s_csv(
    page: Any, app_url: str, open_app: Any, demo_dir: Path, tmp_path: Path
) -> None:
    open_app(page, f"{app_url}?step=5&tab=6")
    button = page.get_by_role("button", name="Metrics of every step (CSV)")
    saved = _download(page, button, tmp_path)
    with Session(demo_dir / "demo.session") as session:
        last = session.n_steps - 1
        loss = session.series().loss
    assert saved.name == f"demo_metrics_steps0-{last}.csv"
    assert saved.read_text().startswith("# glassnet per-step metrics of session ")
    table = pd.read_csv(saved, comment="#")
    assert np.array_equal(table["loss"].to_numpy(), loss)


def test_a_plot_s_save_tool_downloads_a_png_named_after_session_and_step(
    page: Any, app_url: str, open_app: Any, tmp_path: Path
) -> None:
    open_app(page, f"{app_url}?step=7&tab=6")
    saved = _download(page, page.locator(".bk-tool-icon-save").first, tmp_path)
    assert saved.name.startswith("demo_step7_") and saved.name.endswith(".png")
    assert saved.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_npy_download_on_tab_3_gives_the_cursor_s_array(
    page: Any, app_url: str, open_app: Any, demo_dir: Path, tmp_path: Path
) -> None:
    # Operation 1 of step 7 is the weighted sum z of layer 1 (after the batch).
    open_app(page, f"{app_url}?step=7&op=1&tab=3")
    button = page.get_by_role("button", name="Download as .npy")
    saved = _download(page, button, tmp_path)
    assert saved.name == "demo_step7_weighted_sum_computed_layer1_z.npy"
    with Session(demo_dir / "demo.session") as session:
        (event,) = [
            e
            for e in session.step_events(7)
            if e.kind == "weighted_sum_computed" and e.layer == 0
        ]
    assert np.array_equal(np.load(saved, allow_pickle=False), event.z)
