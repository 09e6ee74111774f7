"""Downloads in Chromium: metrics CSV (tab 6), an array as .npy (tab 3), a PNG."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from sessions import Session

pytestmark = pytest.mark.ui


def test_metrics_download_on_tab_6_gives_the_session_s_csv(
    page: Any, app_url: str, open_app: Any, demo_dir: Path, tmp_path: Path
) -> None:
    open_app(page, f"{app_url}?step=5&tab=6")
    button = page.get_by_role("button", name="Metrics of every step (CSV)")
    button.wait_for(timeout=60_000)
    with page.expect_download(timeout=60_000) as info:
        button.click()
    download = info.value
    with Session(demo_dir / "demo.session") as session:
        last = session.n_steps - 1
        loss = session.series().loss
    assert download.suggested_filename == f"demo_metrics_steps0-{last}.csv"
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    assert saved.read_text().startswith("# glassnet per-step metrics of session ")
    table = pd.read_csv(saved, comment="#")
    assert np.array_equal(table["loss"].to_numpy(), loss)


def test_a_plot_s_save_tool_downloads_a_png_named_after_session_and_step(
    page: Any, app_url: str, open_app: Any, tmp_path: Path
) -> None:
    open_app(page, f"{app_url}?step=7&tab=6")
    save = page.locator(".bk-tool-icon-save").first
    save.wait_for(timeout=60_000)
    with page.expect_download(timeout=60_000) as info:
        save.click()
    download = info.value
    name = download.suggested_filename
    assert name.startswith("demo_step7_") and name.endswith(".png"), name
    saved = tmp_path / name
    download.save_as(saved)
    assert saved.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_npy_download_on_tab_3_gives_the_cursor_s_array(
    page: Any, app_url: str, open_app: Any, demo_dir: Path, tmp_path: Path
) -> None:
    # Operation 1 of step 7 is the weighted sum z of layer 1 (after the batch).
    open_app(page, f"{app_url}?step=7&op=1&tab=3")
    button = page.get_by_role("button", name="Download as .npy")
    button.wait_for(timeout=60_000)
    with page.expect_download(timeout=60_000) as info:
        button.click()
    download = info.value
    assert download.suggested_filename == (
        "demo_step7_weighted_sum_computed_layer1_z.npy"
    )
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    with Session(demo_dir / "demo.session") as session:
        (event,) = [
            e
            for e in session.step_events(7)
            if e.kind == "weighted_sum_computed" and e.layer == 0
        ]
    assert np.array_equal(np.load(saved, allow_pickle=False), event.z)
