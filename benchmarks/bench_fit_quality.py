"""Fit quality on recordings nobody tuned for: the default `cortexfit run` on every
development recording (cortexfit.datasets.devset), the embedded synthetic one and PMd, over
several seeds, with the scores side by side.

Run:  .venv/bin/python benchmarks/bench_fit_quality.py [--seeds 0 1] [--only few_units pmd]
          [--set training.noise=0.0 --set auxiliary.min_neurons=0] [--out /tmp/fitq]

Every run is `cortexfit.pipeline.run` with the recording's pipeline config
(`pipelines/dev_<name>.toml`, `pipelines/synthetic.toml`, `pipelines/pmd_yu2009.toml`), the
seed, diagnostics off and nothing else changed unless ``--set SECTION.KEY=VALUE`` says so
(for A/B comparisons of a setting: every recording and seed gets the same change; nothing
is set per recording). Scores are read from each run folder's ``scores.nc``: the test-trial
(held-out) Pearson r of the model's trial average, its noise ceiling, the fraction of the
ceiling (mean r over mean ceiling), test R², silent (condition, unit) pairs (model < 0.1 Hz
where the data fire >= 0.5 Hz), and model against data mean rates. The test trials choose
nothing: they are scored once, at the end.

Prints one line per run and a summary per recording (mean over seeds). A full run of the
default set (7 recordings x 2 seeds) takes about 30-40 min on 2 cores.
"""
from __future__ import annotations

import argparse
import json
import time
import tomllib
from pathlib import Path

import numpy as np
import xarray as xr

ROOT = Path(__file__).resolve().parents[1]
RECORDINGS = {
    "lif_clustered": "pipelines/dev_lif_clustered.toml",
    "low_rate": "pipelines/dev_low_rate.toml",
    "few_units": "pipelines/dev_few_units.toml",
    "long_ramps": "pipelines/dev_long_ramps.toml",
    "brief_difference": "pipelines/dev_brief_difference.toml",
    "synthetic": "pipelines/synthetic.toml",
    "pmd": "pipelines/pmd_yu2009.toml",
    "alm_nwb": "pipelines/alm_economo2018_nwb.toml",
}


def _value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _config(path: str, seed: int, sets: list[str]) -> dict:
    with open(ROOT / path, "rb") as fh:
        raw = tomllib.load(fh)
    raw.setdefault("run", {})["seed"] = seed
    raw.setdefault("diagnostics", {})["enabled"] = False
    for item in sets:
        key, _, value = item.partition("=")
        section, _, name = key.partition(".")
        raw.setdefault(section, {})[name] = _value(value)
    return raw


def _scores(out: Path) -> dict:
    with xr.open_dataset(out / "scores.nc") as ds:
        s = ds.load()
    with xr.open_dataset(out / "targets.nc") as ds:
        targets = ds.load()
    res = {"units": int(targets.sizes["unit"]), "neurons": int(targets.sizes.get("neuron", 0))}
    if "pearson_heldout" in s:
        r = s["pearson_heldout"]
        ceiling = s["noise_ceiling"]
        ok = np.isfinite(r) & np.isfinite(ceiling)
        res["r_test"] = float(r.where(ok).mean())
        res["ceiling"] = float(ceiling.where(ok).mean())
        res["fraction"] = res["r_test"] / res["ceiling"]
        res["r2_test"] = float(s["r2_heldout"].mean())
    res["r_train"] = float(s["pearson_train"].mean())
    model = s["model_rate"].mean("time")
    data = targets["rate"].mean("time").sel(condition=model["condition"], unit=model["unit"])
    res["model_hz"] = float(model.mean())
    res["data_hz"] = float(data.mean())
    res["silent"] = int(((model < 0.1) & (data >= 0.5)).sum())
    res["pairs"] = int(model.size)
    return res


def main() -> None:
    from cortexfit.pipeline import run

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--only", nargs="+", choices=sorted(RECORDINGS), default=None)
    ap.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE")
    ap.add_argument("--out", default="/tmp/cortexfit-fit-quality")
    args = ap.parse_args()
    names = args.only or list(RECORDINGS)
    rows = []
    print(f"settings changed from the defaults: {args.set or 'none'}")
    header = (f"{'recording':18s} {'seed':>4s} {'units':>5s} {'neur':>5s} {'r_test':>6s} "
              f"{'ceil':>5s} {'frac':>5s} {'R2':>6s} {'silent':>7s} {'model Hz':>8s} "
              f"{'data Hz':>7s} {'time':>6s}")
    print(header)
    for name in names:
        for seed in args.seeds:
            out = Path(args.out) / f"{name}_{seed}"
            t0 = time.perf_counter()
            run(_config(RECORDINGS[name], seed, args.set), out, verbosity=0, force=True)
            res = {"recording": name, "seed": seed, "seconds": time.perf_counter() - t0,
                   **_scores(out)}
            rows.append(res)
            print(f"{name:18s} {seed:4d} {res['units']:5d} {res['neurons']:5d} "
                  f"{res.get('r_test', float('nan')):6.2f} {res.get('ceiling', float('nan')):5.2f} "
                  f"{res.get('fraction', float('nan')):5.2f} {res.get('r2_test', float('nan')):6.2f} "
                  f"{res['silent']:3d}/{res['pairs']:<3d} {res['model_hz']:8.1f} "
                  f"{res['data_hz']:7.1f} {res['seconds']:5.0f}s", flush=True)
    print("\nmean over seeds")
    for name in names:
        mine = [r for r in rows if r["recording"] == name]
        frac = np.mean([r.get("fraction", np.nan) for r in mine])
        r_test = np.mean([r.get("r_test", np.nan) for r in mine])
        r2 = np.mean([r.get("r2_test", np.nan) for r in mine])
        silent = sum(r["silent"] for r in mine)
        print(f"{name:18s} r_test {r_test:.2f}  fraction of ceiling {frac:.2f}  R2 {r2:.2f}  "
              f"silent {silent}")
    (Path(args.out) / "results.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
