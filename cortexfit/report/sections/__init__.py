"""The sections of the report, one function per part of the page, each taking the run
folder's :class:`~cortexfit.report.runfiles.RunFiles` (called by
:func:`cortexfit.report.build.build_report`, in this order):

* :mod:`.summary`: the red box of problems (``_alerts``) and Summary;
* :mod:`.data`: Recording and Targets;
* :mod:`.fit`: Training, Fit (model against data, rasters) and Per unit;
* :mod:`.diagnostics`: Taking the network apart;
* :mod:`.run`: Run (stages, versions, configuration).

What several sections share: :mod:`.common` (number and sentence formatting, CSV and SVG
downloads) and :mod:`.spikes` (spike rasters as CSV rows).
"""
