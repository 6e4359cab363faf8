"""Self-contained HTML reports (figures embedded as PNG, no external files)."""
from .html import Section, write_report

__all__ = ["Section", "write_report"]
