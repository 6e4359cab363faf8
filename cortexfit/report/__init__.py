"""Self-contained HTML reports (figures embedded as PNG, no external files)."""
from .build import build_report
from .html import Section, write_report

__all__ = ["Section", "build_report", "write_report"]
