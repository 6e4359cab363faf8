"""Diagnostics of a fitted network: take it apart and see what the fit rests on.

Each function takes a fitted :class:`cortexfit.fit.RLSFit` (never modified; perturbation and
lyapunov also accept a plain :class:`cortexfit.network.Network`) and returns an
``xarray.Dataset`` with named dimensions, labelled coordinates and ``units`` attributes,
which can be written with ``ds.to_netcdf(path, engine="h5netcdf")``.

* :func:`lesion`: cut the outgoing synapses of a fraction of neurons (Figure 3d).
* :func:`shuffle`: permute the trained weights between recorded neurons (Figure 5f).
* :func:`spectrum`: eigenvalues of W before and after training (Figure 4h).
* :func:`quasistatic`: how well ``u = W phi(u + I)`` (Eq 1) holds on a test trial.
* :func:`perturbation`: delete one spike and follow the divergence (Figure 4c, f, g).
* :func:`lyapunov`: the largest Lyapunov exponent before and after training (Benettin).
* :func:`save_diagnostics` / :func:`load_diagnostics`: all of them in one NetCDF file.
"""
from .chaos import lyapunov
from .files import load_diagnostics, save_diagnostics
from .lesion import cut_outputs, lesion
from .perturbation import initial_network, perturbation
from .quasistatic import quasistatic
from .shuffle import permute_weights, shuffle, shuffle_candidates
from .spectrum import eigenvalues, spectrum

__all__ = [
    "lesion",
    "cut_outputs",
    "shuffle",
    "shuffle_candidates",
    "permute_weights",
    "spectrum",
    "eigenvalues",
    "quasistatic",
    "perturbation",
    "initial_network",
    "lyapunov",
    "save_diagnostics",
    "load_diagnostics",
]
