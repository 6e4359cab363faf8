"""Recurrent connectivity: E/I networks under Dale's law, the paper's Gaussian networks,
and the plastic inputs RLS trains, kept as a set of their own.

The recurrent weights are ``W = W_static + W_plastic``, both sparse:

* **in-lists** (CSR by postsynaptic neuron: ``indptr``, presynaptic ``indices``, ``weights``)
  are what RLS trains, row by row;
* **out-lists** (CSC by presynaptic neuron) are what the simulator scatters spikes over.
  :meth:`Network.out_lists` builds them, with the permutation that maps each plastic in-list
  entry to its out-list slot so trained weights can be copied over in O(nnz).

No dense N x N array is ever made unless asked for (:meth:`Network.dense`).

Weights are in units of the neuron model's input per unit of filtered spike train, with
``u = W r`` and ``r`` in spikes per model time unit (see :mod:`cortexfit.neurons.base`).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import scipy.sparse as sp

from .exceptions import ConfigError
from .neurons.base import NeuronModel, get_model
from .validation import check_nonnegative

__all__ = [
    "Network",
    "ei_network",
    "gaussian_network",
    "excitatory_from_cell_types",
]

_INHIBITORY_WORDS = ("fs", "fast", "inhib", "interneuron", "pv", "sst", "som", "vip", "narrow",
                     "gaba", "basket", "chandelier", "martinotti", "lts")
_EXCITATORY_WORDS = ("pyr", "pt", "it", "ct", "excit", "rs", "regular", "wide", "principal",
                     "stellate", "glut", "ib", "ch")


def _csr(n: int, rows: np.ndarray, cols: np.ndarray, weights: np.ndarray) -> sp.csr_array:
    """CSR from distinct (row, col) pairs, keeping explicit zeros (they are synapse slots)."""
    order = np.lexsort((cols, rows))
    rows, cols = np.asarray(rows)[order], np.asarray(cols)[order]
    indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=n))]).astype(np.int64)
    return sp.csr_array((np.asarray(weights, dtype=np.float32)[order], cols.astype(np.int32),
                         indptr), shape=(n, n))


@dataclass
class OutLists:
    """Spike-propagation lists (CSC by presynaptic neuron), static and plastic."""

    static_indptr: np.ndarray
    static_post: np.ndarray
    static_weights: np.ndarray
    plastic_indptr: np.ndarray
    plastic_post: np.ndarray
    plastic_weights: np.ndarray
    plastic_slot: np.ndarray
    """``plastic_weights[plastic_slot[k]] = network.plastic.data[k]`` (in-list order k)."""


@dataclass
class Network:
    """A recurrent spiking network: neuron model, E/I identity, static and plastic weights.

    Attributes
    ----------
    neuron_model
        The :class:`~cortexfit.neurons.base.NeuronModel` (by name in constructors).
    model_params
        The model's parameter record (defaults of the model when None).
    excitatory
        Boolean per neuron, or None when the network has no E/I identity (non-Dale).
    static, plastic
        ``scipy.sparse.csr_array`` (float32 weights, rows = postsynaptic neuron).
    plastic_sign
        Per plastic synapse (in-list order): +1 must stay >= 0, -1 must stay <= 0,
        0 unconstrained. Dale networks set it from the presynaptic neuron's type.
    tau_s
        Synaptic time constant in seconds (filtered spike trains and drive).
    """

    neuron_model: NeuronModel
    static: sp.csr_array
    plastic: sp.csr_array
    plastic_sign: np.ndarray
    tau_s: float
    excitatory: np.ndarray | None = None
    model_params: Any = None
    info: dict[str, Any] = field(default_factory=dict)
    _out: OutLists | None = field(default=None, repr=False)

    @property
    def n_neurons(self) -> int:
        return self.static.shape[0]

    @property
    def dale(self) -> bool:
        return self.excitatory is not None

    @property
    def params(self) -> Any:
        return self.model_params if self.model_params is not None else self.neuron_model.params

    def weights(self) -> sp.csr_array:
        """``W = W_static + W_plastic`` as a sparse matrix (rows: postsynaptic)."""
        return (self.static + self.plastic).tocsr()

    def dense(self) -> np.ndarray:
        """The full weight matrix as a dense array (small networks only)."""
        return self.weights().toarray()

    def out_lists(self) -> OutLists:
        """Propagation lists, built once and then kept in sync by :meth:`set_plastic_weights`."""
        if self._out is None:
            static_csc = self.static.tocsc()
            static_csc.sort_indices()
            n_plastic = self.plastic.nnz
            order = sp.csr_array(
                (np.arange(1, n_plastic + 1, dtype=np.float64), self.plastic.indices,
                 self.plastic.indptr), shape=self.plastic.shape,
            ).tocsc()
            order.sort_indices()
            slot = np.empty(n_plastic, dtype=np.int64)
            slot[order.data.astype(np.int64) - 1] = np.arange(n_plastic)
            self._out = OutLists(
                static_indptr=static_csc.indptr.astype(np.int64),
                static_post=static_csc.indices.astype(np.int32),
                static_weights=static_csc.data.astype(np.float32),
                plastic_indptr=order.indptr.astype(np.int64),
                plastic_post=order.indices.astype(np.int32),
                plastic_weights=np.zeros(n_plastic, dtype=np.float32),
                plastic_slot=slot,
            )
            self._out.plastic_weights[slot] = self.plastic.data
        return self._out

    def set_plastic_weights(self, weights: np.ndarray) -> None:
        """Replace the plastic weights (in-list order) and mirror them to the out-lists."""
        self.plastic.data[:] = weights
        if self._out is not None:
            self._out.plastic_weights[self._out.plastic_slot] = self.plastic.data

    def copy(self) -> "Network":
        return replace(self, static=self.static.copy(), plastic=self.plastic.copy(),
                       plastic_sign=self.plastic_sign.copy(),
                       excitatory=None if self.excitatory is None else self.excitatory.copy(),
                       info=dict(self.info), _out=None)

    def check_dale(self) -> bool:
        """True when every outgoing weight of an E neuron is >= 0 and of an I neuron <= 0."""
        if self.excitatory is None:
            return True
        w = self.weights().tocoo()
        pre_exc = self.excitatory[w.col]
        return bool(np.all(w.data[pre_exc] >= 0) and np.all(w.data[~pre_exc] <= 0))


def _bernoulli_edges(n: int, p: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Each ordered pair (post i, pre j), i != j, present with probability p. Row by row,
    so memory stays O(n p n) not O(n^2)."""
    rows, cols = [], []
    for i in range(n):
        mask = rng.random(n) < p
        mask[i] = False  # no autapses
        idx = np.flatnonzero(mask)
        rows.append(np.full(idx.size, i, dtype=np.int64))
        cols.append(idx)
    return np.concatenate(rows), np.concatenate(cols)


def _plastic_edges(n: int, k: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """K distinct presynaptic neurons per neuron (no autapses)."""
    if k >= n:
        raise ConfigError("more plastic inputs than other neurons", field="k_plastic",
                          found=k, expected=f"< {n} (the network size)")
    rows = np.repeat(np.arange(n), k)
    cols = np.empty(n * k, dtype=np.int64)
    for i in range(n):
        pick = rng.choice(n - 1, size=k, replace=False)
        pick[pick >= i] += 1
        cols[i * k:(i + 1) * k] = np.sort(pick)
    return rows, cols


def excitatory_from_cell_types(cell_types: Sequence[Any], *, default: bool | None = None) -> np.ndarray:
    """E (True) / I (False) from cell-type labels such as ``"pyramidal"``, ``"PTlower"``,
    ``"FS"``, ``"interneuron"``. Unknown labels take ``default``; with ``default=None`` they
    raise a :class:`ConfigError` listing them."""
    out = np.empty(len(cell_types), dtype=bool)
    unknown = []
    for k, label in enumerate(cell_types):
        text = str(label).lower()
        if any(text.startswith(w) or w in text.split() for w in _INHIBITORY_WORDS):
            out[k] = False
        elif any(text.startswith(w) or w in text.split() for w in _EXCITATORY_WORDS):
            out[k] = True
        elif default is not None:
            out[k] = default
        else:
            unknown.append(str(label))
    if unknown:
        raise ConfigError("cell types that are neither excitatory nor inhibitory",
                          field="cell_type", found=sorted(set(unknown))[:10],
                          expected="labels such as pyramidal / PT / FS / interneuron, or pass "
                          "default=True/False")
    return out


def ei_network(
    n_neurons: int,
    *,
    frac_exc: float = 0.8,
    p: float = 0.1,
    J: float = 1.0,
    g: float = 5.0,
    tau_s: float,
    k_plastic: int | str = "all",
    plastic_scale: float = 0.0,
    zero_row_sum: bool = False,
    excitatory: Sequence[bool] | None = None,
    neuron_model: str | NeuronModel = "theta",
    model_params: Any = None,
    seed: int | np.random.Generator = 0,
) -> Network:
    """An excitatory/inhibitory network that respects Dale's law (the paper's Figure 4).

    ``tau_s`` (s) has no default here: the paper's figures use different values (Figure 4:
    60 ms, Figure 5: 50 ms, METHOD.md); the fitting API's one default is
    :class:`~cortexfit.fit.RLSFit`'s ``tau_s`` (50 ms).

    Every ordered pair (no autapses) is connected with probability ``p``; E synapses have
    strength ``J / sqrt(N p)``, I synapses ``-g J / sqrt(N p)``.

    ``k_plastic="all"``: every initial synapse is plastic (the paper), the static part is
    empty. An integer K: the recurrent synapses above stay static and each neuron gets K
    plastic inputs of its own, drawn at random, starting at ``plastic_scale / sqrt(K)``
    times the sign of their presynaptic neuron (0 by default) - the scalable form.

    ``zero_row_sum``: each neuron's I synapses are scaled so that its E and I inputs cancel
    exactly (row sum 0; rows without E or without I inputs are left as they are): the
    balance that ``g = frac_exc / (1 - frac_exc)`` gives only on average.

    ``excitatory`` gives the E/I identity per neuron (e.g. from
    :func:`excitatory_from_cell_types`); otherwise the first ``round(frac_exc N)`` are E.
    """
    n = int(n_neurons)
    if n < 2:
        raise ConfigError("a network needs at least 2 neurons", field="n_neurons", found=n_neurons,
                          expected=">= 2")
    if not 0 < p <= 1:
        raise ConfigError("connection probability out of range", field="p", found=p,
                          expected="0 < p <= 1")
    check_nonnegative("J", J, allow_zero=True)
    check_nonnegative("g", g, allow_zero=True)
    check_nonnegative("tau_s", tau_s)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    if excitatory is None:
        if not 0 <= frac_exc <= 1:
            raise ConfigError("frac_exc out of range", field="frac_exc", found=frac_exc,
                              expected="0 <= frac_exc <= 1")
        exc = np.zeros(n, dtype=bool)
        exc[: int(round(frac_exc * n))] = True
    else:
        exc = np.asarray(excitatory, dtype=bool)
        if exc.shape != (n,):
            raise ConfigError("excitatory does not match the network size", field="excitatory",
                              found=exc.shape, expected=(n,))
    rows, cols = _bernoulli_edges(n, p, rng)
    scale = J / np.sqrt(n * p)
    weights = np.where(exc[cols], scale, -g * scale)
    if zero_row_sum and rows.size:
        e_in = np.bincount(rows, weights=np.where(exc[cols], weights, 0.0), minlength=n)
        i_in = np.bincount(rows, weights=np.where(exc[cols], 0.0, weights), minlength=n)
        ok = (e_in > 0) & (i_in < 0)
        factor = np.where(ok, -e_in / np.where(ok, i_in, -1.0), 1.0)
        weights = np.where(exc[cols], weights, weights * factor[rows])
    recurrent = _csr(n, rows, cols, weights)
    empty = _csr(n, np.zeros(0, int), np.zeros(0, int), np.zeros(0))
    if k_plastic == "all":
        static, plastic = empty, recurrent
    else:
        k = int(k_plastic)
        if k < 1:
            raise ConfigError("k_plastic must be 'all' or a positive integer", field="k_plastic",
                              found=k_plastic, expected="'all' or K >= 1")
        p_rows, p_cols = _plastic_edges(n, k, rng)
        init = np.where(exc[p_cols], 1.0, -1.0) * plastic_scale / np.sqrt(k)
        static = recurrent
        plastic = _csr(n, p_rows, p_cols, init)
    sign = np.where(exc[plastic.indices], 1, -1).astype(np.int8)
    return Network(
        neuron_model=get_model(neuron_model), static=static, plastic=plastic, plastic_sign=sign,
        tau_s=float(tau_s), excitatory=exc, model_params=model_params,
        info={"kind": "ei", "p": p, "J": J, "g": g, "frac_exc": float(exc.mean()),
              "zero_row_sum": zero_row_sum,
              "k_plastic": k_plastic, "seed": seed if isinstance(seed, int) else None},
    )


def gaussian_network(
    n_neurons: int,
    *,
    p: float = 0.3,
    sigma: float = 1.0,
    zero_row_sum: bool = False,
    tau_s: float,
    neuron_model: str | NeuronModel = "theta",
    model_params: Any = None,
    seed: int | np.random.Generator = 0,
) -> Network:
    """The paper's non-Dale network (``tau_s`` required, see :func:`ei_network`): each pair
    (no autapses) connected with probability p,
    weights ~ N(0, sigma^2 / (N p)); ``zero_row_sum`` subtracts each row's mean of its
    nonzero entries (Figure 1). ``sigma = 0`` gives zero initial weights on the same
    random mask (Figures 6-7). Every synapse is plastic and sign-unconstrained."""
    n = int(n_neurons)
    if n < 2:
        raise ConfigError("a network needs at least 2 neurons", field="n_neurons",
                          found=n_neurons, expected=">= 2")
    if not 0 < p <= 1:
        raise ConfigError("connection probability out of range", field="p", found=p,
                          expected="0 < p <= 1")
    check_nonnegative("sigma", sigma, allow_zero=True)
    check_nonnegative("tau_s", tau_s)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    rows, cols = _bernoulli_edges(n, p, rng)
    weights = rng.standard_normal(rows.size) * sigma / np.sqrt(n * p)
    if zero_row_sum and rows.size:
        counts = np.bincount(rows, minlength=n)
        means = np.bincount(rows, weights=weights, minlength=n) / np.maximum(counts, 1)
        weights = weights - means[rows]
    plastic = _csr(n, rows, cols, weights)  # sigma = 0 keeps the mask as zero-weight slots
    empty = _csr(n, np.zeros(0, int), np.zeros(0, int), np.zeros(0))
    return Network(
        neuron_model=get_model(neuron_model), static=empty, plastic=plastic,
        plastic_sign=np.zeros(plastic.nnz, dtype=np.int8), tau_s=float(tau_s), excitatory=None,
        model_params=model_params,
        info={"kind": "gaussian", "p": p, "sigma": sigma, "zero_row_sum": zero_row_sum,
              "seed": seed if isinstance(seed, int) else None},
    )
