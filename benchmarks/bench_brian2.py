"""Peer benchmark: the same theta network simulated by cortexfit and by Brian2.

Not a test: it prints a side-by-side table (wall time, ratio to cortexfit, mean rate) and
checks that the mean rates agree within 5 %. Run it from the bench environment, which has
Brian2 (kept out of .venv because Brian2 constrains numpy)::

    python3 -m venv .venv-bench
    .venv-bench/bin/python -m pip install -e ".[bench]"
    .venv-bench/bin/python benchmarks/bench_brian2.py

The network: ``ei_network(2000, p=0.1, J=2, g=5, tau_s=0.06, seed=0)``, bias 0.5, a
per-neuron stimulus U[-1, 1] (seed 1) on 0.1-0.2 s, theta0 from ``initial_state(net, 0)``,
1 s at dt = 0.1 ms. The exact float32 weights and initial phases go to Brian2.

The Brian2 model reproduces cortexfit's step exactly (time in seconds, tau = 10 ms):

* ``x = u + bias + stimulus(t)`` is a plain variable set once at the start of every step
  (``run_regularly(when='start')``), so Brian2's ``rk4`` holds the input fixed over the step
  like cortexfit does (a differential equation for u would integrate u's decay inside the
  step, and a TimedArray inside the ODE would be sampled at t + dt/2 and t + dt);
* the same operation decays ``u`` and ``r`` exactly, ``*= exp(-dt / tau_s)``, and wraps
  theta < -pi (cortexfit does this after the update; the dynamics are 2 pi periodic, so the
  order is immaterial);
* ``theta > pi`` spikes, reset ``theta -= 2*pi; r += jump``, ``on_pre: u_post += w*jump``
  with ``jump = 1 / (tau_s / tau)``: r in spikes per tau, u = W r, as in cortexfit.

Every Brian2 mode runs in its own subprocess (this file with ``--worker``), so devices
never mix. Caches are cold by default (a fresh NUMBA_CACHE_DIR, Cython cache and standalone
directory), so "build" is a first-time compile; ``--warm-cache`` uses the usual caches.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np

# --------------------------------------------------------------------------------------
# The benchmark network (cortexfit's parameters)
# --------------------------------------------------------------------------------------

N = 2000
P = 0.1
J = 2.0  # J = 6 is chaotic enough that 1e-5 rad of initial jitter moves the 1 s mean rate
G = 5.0  # by up to 20 %; at J = 2 the spread is < 1 %, so a 5 % check is meaningful
TAU_S = 0.06
BIAS = 0.5
STIM_ON, STIM_OFF = 0.1, 0.2
DT = 1e-4
TAU = 0.010  # theta neuron's time unit (cortexfit.neurons.theta.TAU)
RATE_TOLERANCE = 0.05

ALL_MODES = ("numpy", "cython", "cpp_standalone", "cpp_standalone_omp2")


# --------------------------------------------------------------------------------------
# Brian2 worker (runs in a subprocess; imports nothing from cortexfit)
# --------------------------------------------------------------------------------------


def brian2_worker(mode: str, data_path: str, out_path: str, work_dir: str, repeats: int,
                  warm_cache: bool, float32: bool) -> None:
    t_import = time.perf_counter()
    import brian2 as b2
    from brian2 import ms, second
    t_import = time.perf_counter() - t_import

    b2.prefs.logging.file_log = False
    b2.BrianLogger.log_level_error()
    if float32:
        b2.prefs.core.default_float_dtype = np.float32
    standalone = mode.startswith("cpp_standalone")
    build_dir = os.path.join(work_dir, f"standalone_{mode}")
    if standalone:
        b2.set_device("cpp_standalone", build_on_run=False, directory=build_dir)
        b2.prefs.devices.cpp_standalone.openmp_threads = 2 if mode.endswith("omp2") else 0
    else:
        b2.prefs.codegen.target = mode
        if mode == "cython" and not warm_cache:
            b2.prefs.codegen.runtime.cython.cache_dir = os.path.join(work_dir, "cython_cache")

    d = np.load(data_path)
    n, duration, dt = int(d["n"]), float(d["duration"]), float(d["dt"])
    tau_s, tau = float(d["tau_s"]), float(d["tau"])
    n_steps = int(round(duration / dt))
    jump = 1.0 / (tau_s / tau)  # exactly cortexfit's: tau_s in model units, 1/tau_s per spike
    decay = float(np.exp(-dt / tau_s))
    window = np.zeros(n_steps + 1)
    window[int(round(float(d["stim_on"]) / dt)):int(round(float(d["stim_off"]) / dt))] = 1.0

    t_setup = time.perf_counter()
    b2.defaultclock.dt = dt * second
    stim_window = b2.TimedArray(window, dt=dt * second)
    eqs = """
    dtheta/dt = (1 - cos(theta) + x*(1 + cos(theta))) / tau : 1
    x : 1
    u : 1
    r : 1
    bias : 1 (constant)
    stim_amp : 1 (constant)
    """
    namespace = {"tau": tau * second, "jump": jump, "decay": decay, "stim_window": stim_window}
    group = b2.NeuronGroup(n, eqs, threshold="theta > pi", reset="theta -= 2*pi\nr += jump",
                           method="rk4", namespace=namespace, name="theta_neurons")
    group.run_regularly(
        "x = u + bias + stim_amp*stim_window(t)\n"
        "u = u*decay\n"
        "r = r*decay\n"
        "theta = theta + 2*pi*int(theta < -pi)",
        when="start", name="input_and_decay")
    group.theta = d["theta0"]
    group.bias = d["bias"]
    group.stim_amp = d["amp"]
    syn = b2.Synapses(group, group, "w : 1 (constant)", on_pre="u_post += w*jump",
                      namespace=namespace, name="recurrent")
    syn.connect(i=d["pre"], j=d["post"])
    syn.w = d["w"]
    spikes = b2.SpikeMonitor(group, name="spikes")
    net = b2.Network(group, syn, spikes)
    t_setup = time.perf_counter() - t_setup

    result = {"mode": mode, "brian2": b2.__version__, "numpy": np.__version__,
              "import_s": t_import, "float": "float32" if float32 else "float64",
              "n_synapses": int(len(syn))}
    run_times = []
    if standalone:
        t = time.perf_counter()
        net.run(duration * second, namespace=namespace)  # records the run; nothing executes
        t_codegen_record = time.perf_counter() - t
        t = time.perf_counter()
        b2.device.build(directory=build_dir, compile=True, run=False, with_output=False)
        t_build = time.perf_counter() - t
        result["setup_s"] = t_setup + t_codegen_record
        result["build_s"] = t_build
        result["compile_make_s"] = b2.device.timers["compile"].get("make")
        inner = []
        for _ in range(repeats):
            t = time.perf_counter()
            b2.device.run(directory=build_dir, with_output=False)
            run_times.append(time.perf_counter() - t)
            inner.append(b2.device._last_run_time)
        result["run_inner_s"] = min(inner)  # the network loop alone, timed inside the binary
        result["run_all_s"] = run_times
    else:
        net.store("start")
        t = time.perf_counter()
        net.run(0 * ms, namespace=namespace)  # code generation (+ Cython compile) only
        result["build_s"] = time.perf_counter() - t
        result["setup_s"] = t_setup
        for k in range(repeats):
            if k:
                net.restore("start")
            t = time.perf_counter()
            net.run(duration * second, namespace=namespace)
            run_times.append(time.perf_counter() - t)
        result["run_all_s"] = run_times
    result["run_s"] = min(run_times)
    i = np.asarray(spikes.i[:], dtype=np.int64)
    ts = np.asarray(spikes.t[:] / second, dtype=np.float64)
    steps = np.round(ts / dt).astype(np.int64)  # Brian2 stamps a spike of step k with k*dt
    if np.any(np.diff(steps) < 0):  # restore() should have emptied the monitor
        raise RuntimeError("spike monitor holds more than one run")
    np.savez(out_path + ".npz", neuron=i, step=steps)
    result["n_spikes"] = int(i.size)
    result["mean_rate_hz"] = i.size / n / duration
    with open(out_path, "w") as f:
        json.dump(result, f)


# --------------------------------------------------------------------------------------
# cortexfit side
# --------------------------------------------------------------------------------------


def build_inputs(n: int):
    from cortexfit.network import ei_network
    from cortexfit.simulate import Stimulus, initial_state

    net = ei_network(n, p=P, J=J, g=G, tau_s=TAU_S, seed=0)
    amp = np.random.default_rng(1).uniform(-1.0, 1.0, n).astype(np.float32)
    state0 = initial_state(net, 0)
    return net, Stimulus(amp, STIM_ON, STIM_OFF), state0


def run_cortexfit(net, stim, state0, duration: float, repeats: int, precision: str = "float32"):
    from cortexfit.simulate import simulate

    def once():
        t = time.perf_counter()
        res = simulate(net, duration, dt=DT, bias=BIAS, stimulus=stim, state=state0,
                       precision=precision)
        return time.perf_counter() - t, res

    first, res = once()
    warm = [once()[0] for _ in range(repeats)]
    steps = np.round(res.spike_times / DT).astype(np.int64) - 1  # cortexfit stamps (k+1)*dt
    best = min(warm) if warm else first
    return {"first_s": first, "run_s": best, "run_all_s": warm,
            "build_s": max(first - best, 0.0), "n_spikes": int(res.spike_neurons.size),
            "mean_rate_hz": float(res.rates().mean())}, (res.spike_neurons, steps)


def profile_cortexfit(net, stim, state0, duration: float) -> dict:
    """Where cortexfit's time goes: the same kernel with the out-lists emptied (neuron update,
    decay and spike bookkeeping, no scatter), and a bare loop of the theta RK4 step."""
    import numba
    from cortexfit.neurons import theta
    from cortexfit.simulate import simulate

    out = {}
    t = time.perf_counter()
    full = simulate(net, duration, dt=DT, bias=BIAS, stimulus=stim, state=state0)
    out["full_s"] = time.perf_counter() - t
    out["full_spikes"] = int(full.spike_neurons.size)
    lonely = net.copy()
    lists = lonely.out_lists()
    lists.plastic_indptr[:] = 0  # no synapse reached: the scatter does nothing
    lists.static_indptr[:] = 0
    simulate(lonely, 0.01, dt=DT, bias=BIAS, stimulus=stim, state=state0)
    t = time.perf_counter()
    res = simulate(lonely, duration, dt=DT, bias=BIAS, stimulus=stim, state=state0)
    out["no_scatter_s"] = time.perf_counter() - t
    out["no_scatter_spikes"] = int(res.spike_neurons.size)

    @numba.njit
    def theta_only(state, params, x, dt, n_steps):
        spikes = 0
        for _ in range(n_steps):
            for i in range(state.shape[1]):
                spikes += theta.step(state, params, i, x[i], dt)
        return spikes

    n_steps = int(round(duration / DT))
    state = state0.neuron.copy()
    params = np.zeros((1, state.shape[1]), np.float32)
    x = np.full(state.shape[1], BIAS, np.float32)
    dtm = np.float32(DT / TAU)
    theta_only(state.copy(), params, x, dtm, 10)
    t = time.perf_counter()
    theta_only(state, params, x, dtm, n_steps)
    out["theta_rk4_only_s"] = time.perf_counter() - t
    out["neuron_steps"] = n_steps * state.shape[1]
    return out


def first_divergence(a, b) -> tuple[int | None, int]:
    """First step at which two spike rasters (neuron, step) differ, and the number of
    spikes identical before it."""
    (na, sa), (nb, sb) = a, b
    last = int(max(sa.max(initial=-1), sb.max(initial=-1)))
    ka = np.lexsort((na, sa))
    kb = np.lexsort((nb, sb))
    na, sa, nb, sb = na[ka], sa[ka], nb[kb], sb[kb]
    m = min(na.size, nb.size)
    diff = np.flatnonzero((na[:m] != nb[:m]) | (sa[:m] != sb[:m]))
    if diff.size == 0:
        if na.size == nb.size:
            return None, m
        k = m
    else:
        k = int(diff[0])
    step = min(sa[k] if k < sa.size else last + 1, sb[k] if k < sb.size else last + 1)
    return int(step), k


def machine_info() -> dict:
    cpu = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "?"
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024**2:.1f} GiB"
                break
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu": cpu, "memory": mem,
            "python": platform.python_version()}


# --------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--modes", default=",".join(ALL_MODES),
                    help=f"Brian2 modes, comma-separated, from {ALL_MODES}")
    ap.add_argument("--n", type=int, default=N)
    ap.add_argument("--duration", type=float, default=1.0, help="simulated seconds")
    ap.add_argument("--repeats", type=int, default=3,
                    help="timed runs after the first (best is reported); numpy mode runs once")
    ap.add_argument("--warm-cache", action="store_true",
                    help="use the usual numba/Cython caches instead of fresh ones")
    ap.add_argument("--brian-float32", action="store_true",
                    help="Brian2 in float32 (prefs.core.default_float_dtype) like cortexfit")
    ap.add_argument("--no-profile", action="store_true", help="skip the cortexfit profile")
    ap.add_argument("--json", help="also write all figures to this JSON file")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("--work-dir", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.worker:
        brian2_worker(args.worker, args.data, args.out, args.work_dir, args.repeats,
                      args.warm_cache, args.brian_float32)
        return 0

    modes = [m for m in args.modes.split(",") if m]
    unknown = set(modes) - set(ALL_MODES)
    if unknown:
        ap.error(f"unknown modes {sorted(unknown)}")
    work = tempfile.TemporaryDirectory(prefix="bench_brian2_")
    if not args.warm_cache:
        os.environ["NUMBA_CACHE_DIR"] = os.path.join(work.name, "numba_cache")
    import numba  # after NUMBA_CACHE_DIR is set

    from importlib.metadata import version

    info = machine_info()
    print(f"machine: {info['nproc']} cores, {info['cpu']}, {info['memory']}; "
          f"python {info['python']}, numpy {np.__version__}, numba {numba.__version__}, "
          f"cortexfit {version('cortexfit')}, brian2 {version('brian2')}")
    print(f"network: N={args.n}, p={P}, J={J}, g={G}, tau_s={TAU_S} s, bias={BIAS}, "
          f"stimulus U[-1,1] on {STIM_ON}-{STIM_OFF} s, {args.duration} s at dt={DT * 1e3} ms; "
          f"caches {'warm' if args.warm_cache else 'cold'}")

    net, stim, state0 = build_inputs(args.n)
    assert net.neuron_model.time_unit == TAU, "the theta neuron's time unit changed"
    coo = net.weights().tocoo()  # rows = postsynaptic
    data_path = os.path.join(work.name, "network.npz")
    np.savez(data_path, n=args.n, duration=args.duration, dt=DT, tau_s=net.tau_s, tau=TAU,
             stim_on=STIM_ON, stim_off=STIM_OFF,
             pre=coo.col.astype(np.int64), post=coo.row.astype(np.int64),
             w=coo.data.astype(np.float64), theta0=state0.neuron[0].astype(np.float64),
             bias=np.full(args.n, BIAS), amp=stim.amplitude.astype(np.float64))

    print("cortexfit ...", flush=True)
    cf, cf_raster = run_cortexfit(net, stim, state0, args.duration, args.repeats)
    cf64, cf64_raster = run_cortexfit(net, stim, state0, args.duration, 1, precision="float64")

    results = {}
    for mode in modes:
        print(f"brian2 {mode} ...", flush=True)
        out_path = os.path.join(work.name, f"{mode}.json")
        cmd = [sys.executable, os.path.abspath(__file__), "--worker", mode, "--data", data_path,
               "--out", out_path, "--work-dir", work.name,
               "--repeats", str(1 if mode == "numpy" else args.repeats)]
        if args.warm_cache:
            cmd.append("--warm-cache")
        if args.brian_float32:
            cmd.append("--brian-float32")
        t = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.perf_counter() - t
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            print(f"  {mode} failed: {' | '.join(tail)}")
            results[mode] = {"mode": mode, "error": "\n".join(tail)}
            continue
        with open(out_path) as f:
            res = json.load(f)
        res["process_s"] = wall
        sp = np.load(out_path + ".npz")
        raster = (sp["neuron"], sp["step"])
        ref = cf64_raster if res["float"] == "float64" else cf_raster
        res["diverge_step"], res["identical_spikes"] = first_divergence(ref, raster)
        results[mode] = res

    # cortexfit again, after Brian2, so that a load change on a shared machine shows up
    again = [run_cortexfit(net, stim, state0, args.duration, 0)[0]["first_s"]
             for _ in range(args.repeats)]
    cf["run_after_s"] = again
    cf["run_s"] = min(cf["run_s"], *again)

    # ---- table ----
    base = cf["run_s"]
    ref_rate = cf["mean_rate_hz"]
    rows = [("cortexfit (numba, float32)", 1, cf["build_s"], cf["run_s"], cf["mean_rate_hz"],
             "build = numba JIT (first call - warm)")]
    for mode, res in results.items():
        if "error" in res:
            rows.append((f"brian2 {mode}", 0, np.nan, np.nan, np.nan, "FAILED"))
            continue
        note = "build = setup + codegen" + (" + compile" if mode != "numpy" else "")
        if "run_inner_s" in res:
            note += (f"; loop alone {res['run_inner_s']:.3f} s "
                     f"({res['run_inner_s'] / base:.2f}x)")
        threads = 2 if mode.endswith("omp2") else 1
        rows.append((f"brian2 {mode} ({res['float']})", threads,
                     res["setup_s"] + res["build_s"], res["run_s"], res["mean_rate_hz"], note))
    print()
    print(f"{'mode':<36} {'thr':>3} {'build (s)':>9} {'run (s)':>8} {'run/cortexfit':>13} "
          f"{'rate (Hz)':>9} {'rate diff':>9}  notes")
    ok = True
    for name, threads, build, run, rate, note in rows:
        dr = (rate - ref_rate) / ref_rate
        flag = ""
        if np.isfinite(rate) and abs(dr) > RATE_TOLERANCE:
            ok, flag = False, " !"
        print(f"{name:<36} {threads:>3} {build:>9.2f} {run:>8.3f} {run / base:>13.2f} "
              f"{rate:>9.2f} {100 * dr:>+8.2f}%{flag}  {note}")
    print("run = best wall-clock time of the timed runs (Brian2 standalone: the whole binary, "
          "including loading the synapses; 'loop alone' is its own timer of the network loop)")
    print(f"cortexfit: first call (compile + run) {cf['first_s']:.2f} s; warm runs "
          f"{', '.join(f'{x:.3f}' for x in cf['run_all_s'])} s before Brian2, "
          f"{', '.join(f'{x:.3f}' for x in again)} s after; float64 reference "
          f"{cf64['mean_rate_hz']:.2f} Hz in {cf64['run_s']:.3f} s")
    for mode, res in results.items():
        if "error" in res:
            continue
        extra = ""
        if res.get("compile_make_s") is not None:
            extra = f" (make {res['compile_make_s']:.1f} s)"
        div = res["diverge_step"]
        div_txt = "none" if div is None else f"first difference at t = {div * DT * 1e3:.1f} ms"
        print(f"brian2 {mode}: setup {res['setup_s']:.2f} s, build {res['build_s']:.2f} s"
              f"{extra}; runs {', '.join(f'{x:.3f}' for x in res['run_all_s'])} s; "
              f"{res['n_synapses']} synapses, {res['n_spikes']} spikes; "
              f"identical to cortexfit {res['float']} for the first {res['identical_spikes']} "
              f"spikes, {div_txt}")
    fine = {m: r for m, r in results.items() if "error" not in r}
    if fine:
        t_fast, m_fast = min((r["run_s"], m) for m, r in fine.items())
        if t_fast < base:
            print(f"\ncortexfit ({base:.3f} s) is SLOWER than Brian2 {m_fast} "
                  f"({t_fast:.3f} s): {base / t_fast:.2f}x its time")
        else:
            print(f"\ncortexfit ({base:.3f} s) is faster than every Brian2 mode "
                  f"(fastest: {m_fast}, {t_fast:.3f} s, {t_fast / base:.2f}x cortexfit's time)")

    prof = None
    if not args.no_profile:
        prof = profile_cortexfit(net, stim, state0, args.duration)
        per = 1e9 / prof["neuron_steps"]
        print(f"cortexfit profile (ns per neuron-step): full kernel {per * prof['full_s']:.1f} "
              f"({prof['full_spikes']} spikes); spike scatter removed "
              f"{per * prof['no_scatter_s']:.1f} ({prof['no_scatter_spikes']} spikes); bare "
              f"theta RK4 loop {per * prof['theta_rk4_only_s']:.1f}")

    failed = [m for m, r in results.items() if "error" in r]
    verdict = "within" if ok else "NOT within"
    print(f"\nmean rates {verdict} {100 * RATE_TOLERANCE:.0f} % of cortexfit's for every mode run"
          + (f"; FAILED modes: {', '.join(failed)}" if failed else ""))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": info, "cortexfit": cf, "cortexfit_float64": cf64,
                       "brian2": results, "profile": prof}, f, indent=1)
    work.cleanup()
    return 0 if ok and not failed else 1


if __name__ == "__main__":
    sys.exit(main())
