"""The HTML report and dashboard: the rollups as pages (a self-contained file, or served live
by `report.live.routes`). Every figure on a page is a rollup's value (`report.data`)."""

from .data import Report, RunDetail, Window, collect, run_detail, window
from .page import ReportError, render_report, write_report

__all__ = [
    "Report",
    "ReportError",
    "RunDetail",
    "Window",
    "collect",
    "render_report",
    "run_detail",
    "window",
    "write_report",
]
