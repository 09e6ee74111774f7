"""The seven tabs of the app, one ``pn.viewable.Viewer`` each, in tab order."""

from __future__ import annotations

from ui.tabs.analysis import AnalysisTab
from ui.tabs.dataset import DatasetTab
from ui.tabs.forward import ForwardTab
from ui.tabs.loss import LossTab
from ui.tabs.network import NetworkTab
from ui.tabs.results import ResultsTab
from ui.tabs.training import TrainingTab

TABS = (
    NetworkTab,
    DatasetTab,
    ForwardTab,
    LossTab,
    TrainingTab,
    ResultsTab,
    AnalysisTab,
)
"""The tab classes in the order the app shows them (tab index 0 to 6)."""

__all__ = [
    "TABS",
    "AnalysisTab",
    "DatasetTab",
    "ForwardTab",
    "LossTab",
    "NetworkTab",
    "ResultsTab",
    "TrainingTab",
]
