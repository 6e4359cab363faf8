"""The Run section: the stages and their times, the versions and the configuration."""
from __future__ import annotations

from ..html import Section
from ..runfiles import RunFiles


# ---------------------------------------------------------------------- run
def _run_section(run: RunFiles) -> Section:
    # the report stage is recorded after this page is written: its row is this page
    stage_rows = [[name, f"{rec.get('seconds', 0):.1f}", rec.get("summary", "")]
                  for name, rec in (run.stages or {}).items()
                  if "summary" in rec and name != "report"]
    stage_rows.append(["report", "", "this page (index.html)"])
    run_dir, versions = run.run_dir, run.versions
    return Section(
        "Run",
        paragraphs=[(f"Run folder: {run_dir.name}. Created {versions.get('created', '?')} "
                     f"on {versions.get('platform', '?')}. Re-render this page with "
                     f"`cortexfit report {run_dir.name}`.")],
        tables=[(["stage", "seconds", "summary"], stage_rows)],
        keyvalues=list(versions.get("packages", {}).items()),
        keyvalues_label="Versions:",
        details=[("Configuration (config.toml, every setting resolved)",
                  (run_dir / "config.toml").read_text(encoding="utf-8"))],
    )
