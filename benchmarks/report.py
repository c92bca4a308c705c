"""Write BENCHMARKS.md and the PNG plots from the results of the benchmark
scripts (inprocess.json, coldstart.json, http.json; any of them may be
missing).

    python benchmarks/report.py                       # benchmarks/results -> benchmarks/
    python benchmarks/report.py --results R --dest D

Everything in the page is computed from those files: the tables, the
targets met or missed, and the list of places where mlfast is not ahead.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import _common

ENGINE_SHORT = {
    "scikit-learn": "sklearn",
    "scikit-learn, OpenMP 1 thread": "sklearn, 1 OMP thread",
    "ONNX Runtime": "ONNX RT",
    "mlfast 1 thread": "mlfast 1 thr",
    "mlfast all cores": "mlfast all",
}
COLORS = {
    "scikit-learn": "#1f77b4",
    "scikit-learn, OpenMP 1 thread": "#aec7e8",
    "ONNX Runtime": "#7f7f7f",
    "mlfast 1 thread": "#ff7f0e",
    "mlfast all cores": "#d62728",
    "joblib + scikit-learn": "#1f77b4",
    "mlfast": "#d62728",
}
MLFAST_DEFAULT = "mlfast all cores"  # what a user gets without set_num_threads


def load(path: Path) -> Optional[dict]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def t(seconds: Optional[float]) -> str:
    return "—" if seconds is None else _common.fmt_seconds(seconds)


def ratio(a: Optional[float], b: Optional[float]) -> Optional[float]:
    if a is None or b is None or b <= 0:
        return None
    return a / b


def x(r: Optional[float]) -> str:
    if r is None:
        return "—"
    return f"{r:,.0f}×" if r >= 100 else f"{r:.1f}×" if r >= 10 else f"{r:.2f}×"


def med(d: Optional[dict], *path) -> Optional[float]:
    for p in path:
        if d is None:
            return None
        d = d.get(p)
    return d["median"] if isinstance(d, dict) and "median" in d else None


def yes(ok: Optional[bool]) -> str:
    return "—" if ok is None else ("**met**" if ok else "**not met**")


def rng(s: dict, fmt=t) -> str:
    return f"{fmt(s['median'])} ({fmt(s['min'])}–{fmt(s['max'])})"


# -- in-process -----------------------------------------------------------------


def latency_table(model: dict, engines: List[str]) -> List[str]:
    present = [e for e in engines if e in model["check"]]
    head = (
        "| rows | "
        + " | ".join(ENGINE_SHORT[e] for e in present)
        + " | sklearn ÷ mlfast 1 thr | sklearn ÷ mlfast all | ONNX RT ÷ mlfast all |"
    )
    lines = [head, "|" + "---|" * (len(present) + 4)]

    def row(label, timings):
        cells = [rng(timings[e]) if e in timings else "—" for e in present]
        sk = med(timings, "scikit-learn")
        lines.append(
            f"| {label} | "
            + " | ".join(cells)
            + f" | {x(ratio(sk, med(timings, 'mlfast 1 thread')))}"
            f" | {x(ratio(sk, med(timings, MLFAST_DEFAULT)))}"
            f" | {x(ratio(med(timings, 'ONNX Runtime'), med(timings, MLFAST_DEFAULT)))} |"
        )

    for b, timings in model["latency"].items():
        row(f"{int(b):,}" + (" (`x[None, :]`)" if b == "1" else ""), timings)
        if b == "1":
            row("1 (list → `np.array(features).reshape(1, -1)`)", model["latency_list_row"])
    return lines


def throughput_line(model: dict, rows: int) -> str:
    tp = model["throughput"]
    cells = []
    for e in [e for e in ENGINE_SHORT if e in tp]:
        cells.append(f"{ENGINE_SHORT[e]} {rows / tp[e]['median']:,.0f} rows/s")
    return "; ".join(cells)


def check_table(model: dict, rows_big: int) -> List[str]:
    lines = [
        "| engine | labels ≠ sklearn | max abs Δ predict_proba | single row same label | "
        f"labels ≠ sklearn on {rows_big:,} rows | note |",
        "|---|---|---|---|---|---|",
    ]
    for e, c in model["check"].items():
        diff = c.get("max_abs_proba_diff")
        lines.append(
            f"| {e} | {c['label_mismatches']} / {c['rows']:,} | "
            f"{'—' if diff is None else f'{diff:.2g}'} | {'yes' if c['single_row_equal'] else '**no**'} | "
            f"{c['throughput_rows_label_mismatches']} | {c.get('note', '')} |"
        )
    return lines


def plot_latency(inproc: dict, dest: Path) -> Optional[str]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    models = inproc["models"]
    cols = 2
    rows_ = (len(models) + 1 + cols - 1) // cols
    fig, axes = plt.subplots(rows_, cols, figsize=(11, 3.4 * rows_), squeeze=False)
    big = inproc["config"]["throughput_rows"]
    for ax, m in zip(axes.flat, models):
        for e in inproc["engines"]:
            xs, ys, lo, hi = [], [], [], []
            points = [(int(b), tm.get(e)) for b, tm in m["latency"].items()] + [
                (big, m["throughput"].get(e))
            ]
            for b, s in points:
                if s is None:
                    continue
                xs.append(b)
                ys.append(s["median"])
                lo.append(s["median"] - s["min"])
                hi.append(s["max"] - s["median"])
            if xs:
                ax.errorbar(
                    xs,
                    ys,
                    yerr=[lo, hi],
                    marker="o",
                    ms=3.5,
                    capsize=2,
                    lw=1.4,
                    label=e,
                    color=COLORS.get(e),
                )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(
            m["title"] + (f"  (ONNX {m['onnx']['dtype']})" if m["onnx"].get("dtype") else ""),
            fontsize=10,
        )
        ax.set_xlabel("rows per predict call")
        ax.set_ylabel("seconds per call")
        ax.grid(True, which="both", alpha=0.25)
    handles, labels = [], []
    for ax in axes.flat:  # every engine, including those only some models have
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    for ax in list(axes.flat)[len(models) :]:
        ax.axis("off")
    legend_ax = list(axes.flat)[len(models)] if len(models) < rows_ * cols else axes.flat[0]
    legend_ax.legend(
        handles, labels, loc="center", fontsize=10, title="median; bars: min–max over repeats"
    )
    fig.suptitle("predict() latency vs batch size (log-log; lower is better)", fontsize=12)
    fig.tight_layout()
    path = dest / "latency_vs_batch.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name


def inprocess_section(inproc: dict, dest: Path, out: List[str], plots: List[str]) -> None:
    cfg = inproc["config"]
    out += [
        "## In-process predict",
        "",
        f"`benchmarks/bench_inprocess.py`. Seconds per `predict(X)` call (labels), median over "
        f"{cfg['repeats']['small']} repeats for batches up to 1,000, {cfg['repeats']['10000']} at "
        f"10,000 and {cfg['repeats']['big']} at {cfg['throughput_rows']:,} rows, each repeat a loop "
        f"of ≥ {cfg['target_seconds_per_repeat'] * 1e3:.0f} ms; (min–max) beside it. Engines take "
        "turns inside each repeat. Ratios divide medians of the same run. Input: float64 rows, "
        "C order; one row is `x[None, :]`, and the lesson's `np.array(features).reshape(1, -1)` "
        "from a Python list is timed as well, its conversion included. ONNX Runtime gets the same "
        "float64 rows and, for a float32 graph, pays the cast. `mlfast all cores` = "
        f"`set_num_threads({cfg['all_cores']})`, mlfast's default.",
        "",
    ]
    if cfg.get("onnx_skipped"):
        out += [f"ONNX Runtime was not run: {cfg['onnx_skipped']}.", ""]
    name = plot_latency(inproc, dest)
    if name:
        plots.append(name)
        out += [f"![latency vs batch size]({name})", ""]
    for m in inproc["models"]:
        onnx = m["onnx"]
        out += [
            f"### {m['title']}",
            "",
            f"{m['describe']}. File `{m['file']}` ({m['file_bytes']:,} bytes); mlfast reads it as "
            f"`{m['mlfast_estimator']}`. ONNX Runtime graph: "
            + (f"**{onnx['dtype']}**" if onnx.get("dtype") else "none")
            + (
                f" (float64 graph refused: {onnx['note']})"
                if onnx.get("note") and onnx.get("dtype")
                else (f" ({onnx['note']})" if onnx.get("note") else "")
            )
            + ".",
            "",
        ]
        out += (
            ["Answers, checked before timing:", ""] + check_table(m, cfg["throughput_rows"]) + [""]
        )
        out += latency_table(m, inproc["engines"]) + [""]
        out += [
            f"Throughput at {cfg['throughput_rows']:,} rows: {throughput_line(m, cfg['throughput_rows'])}.",
            "",
        ]


# -- cold start ------------------------------------------------------------------


def plot_coldstart(cold: dict, dest: Path) -> Optional[str]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    models = cold["models"]
    engines = cold["engines"]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(12, 4))
    width = 0.8 / len(engines)
    for i, e in enumerate(engines):
        xs = [j + i * width for j, m in enumerate(models) if e in m["engines"]]
        a1.bar(
            xs,
            [m["engines"][e]["import_load"]["median"] for m in models if e in m["engines"]],
            width,
            label=e,
            color=COLORS.get(e),
        )
        a2.bar(
            xs,
            [
                m["engines"][e]["peak_rss_kib_load"]["median"] / 1024
                for m in models
                if e in m["engines"]
            ],
            width,
            label=e,
            color=COLORS.get(e),
        )
    for ax, title, unit in (
        (a1, "import + load (median)", "seconds"),
        (a2, "peak RSS after load (median)", "MiB"),
    ):
        ax.set_xticks([j + width * (len(engines) - 1) / 2 for j in range(len(models))])
        ax.set_xticklabels([m["key"] for m in models], rotation=30, fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.set_ylabel(unit)
        ax.grid(True, axis="y", alpha=0.25)
    a1.legend(fontsize=8)
    fig.suptitle("cold start in a fresh process (lower is better)", fontsize=12)
    fig.tight_layout()
    path = dest / "coldstart.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name


def coldstart_section(cold: dict, dest: Path, out: List[str], plots: List[str]) -> None:
    cfg = cold["config"]
    base = cold["baseline"]
    out += [
        "## Cold start and memory",
        "",
        f"`benchmarks/bench_coldstart.py`. A fresh `python -c` per run, {cfg['runs']} runs per engine "
        "and model after one untimed warm-up run each (page cache and `.pyc` files warm; the children run "
        "without `PYTHONDONTWRITEBYTECODE`, so an editable mlfast has its `.pyc` files as an installed "
        "scikit-learn does), engines "
        "taking turns; medians with (min–max). *import + load* is timed inside the child; *process* "
        "is the parent's wall time for the whole child (interpreter start and exit included); peak "
        "RSS is the child's `VmHWM` right after the load. An empty interpreter (`python -c pass`) "
        f"takes {t(base['process']['median'])} and peaks at {base['peak_rss_kib']['median'] / 1024:.1f} MiB.",
        "",
    ]
    if cfg.get("onnx_skipped"):
        out += [f"ONNX Runtime was not run: {cfg['onnx_skipped']}.", ""]
    name = plot_coldstart(cold, dest)
    if name:
        plots.append(name)
        out += [f"![cold start]({name})", ""]
    out += [
        "| model | engine | import | load | import + load | first predict | process | peak RSS "
        "after load | after first predict | joblib ÷ this (import + load) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for m in cold["models"]:
        ref = med(m["engines"].get("joblib + scikit-learn"), "import_load")
        for e, s in m["engines"].items():
            out.append(
                f"| {m['key']} | {e}{'' if s['answers_agree'] else ' (**answer differs**)'} | "
                f"{t(s['import']['median'])} | {t(s['load']['median'])} | {rng(s['import_load'])} | "
                f"{t(s['first_predict']['median'])} | {t(s['process']['median'])} | "
                f"{s['peak_rss_kib_load']['median'] / 1024:.1f} MiB | "
                f"{s['peak_rss_kib_predict']['median'] / 1024:.1f} MiB | "
                f"{x(ratio(ref, s['import_load']['median']))} |"
            )
    out.append("")


# -- HTTP -------------------------------------------------------------------------


def plot_http(http: dict, dest: Path) -> Optional[str]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    groups: Dict[Tuple[str, int], List[dict]] = {}
    for r in http["runs"]:
        if r.get("by_concurrency"):
            groups.setdefault((r["model"], r["workers"]), []).append(r)
    if not groups:
        return None
    fig, axes = plt.subplots(len(groups), 1, figsize=(11, 3.6 * len(groups)), squeeze=False)
    palette = {
        "lesson FastAPI": "#1f77b4",
        "mlfast FastAPI app": "#d62728",
        "mlfast serve": "#ff9896",
        "lesson Flask": "#2ca02c",
        "mlfast Flask app": "#ff7f0e",
        "mlfast serve (Flask)": "#ffbb78",
    }
    for ax, ((model, workers), runs) in zip(axes[:, 0], groups.items()):
        concs = sorted({int(c) for r in runs for c in r["by_concurrency"]})
        width = 0.8 / len(runs)
        for i, r in enumerate(runs):
            xs, ys, errs = [], [], []
            for j, c in enumerate(concs):
                s = r["by_concurrency"].get(str(c))
                if s:
                    xs.append(j + i * width)
                    ys.append(s["rps"]["median"])
                    errs.append(
                        [s["rps"]["median"] - s["rps"]["min"], s["rps"]["max"] - s["rps"]["median"]]
                    )
            bars = ax.bar(
                xs,
                ys,
                width,
                label=r["server"],
                color=palette.get(r["server"]),
                yerr=list(zip(*errs)) if errs else None,
                capsize=2,
            )
            for b, y in zip(bars, ys):
                ax.annotate(
                    f"{y:,.0f}",
                    (b.get_x() + b.get_width() / 2, y),
                    ha="center",
                    va="bottom",
                    fontsize=6,
                    rotation=90,
                    xytext=(0, 2),
                    textcoords="offset points",
                )
        ax.set_xticks([j + width * (len(runs) - 1) / 2 for j in range(len(concs))])
        ax.set_xticklabels([f"{c} connection{'s' if c > 1 else ''}" for c in concs])
        ax.set_ylabel("requests/s")
        ax.set_title(f"{model}: {workers} worker{'s' if workers > 1 else ''}", fontsize=10)
        ax.grid(True, axis="y", alpha=0.25)
        ax.margins(y=0.15)
        ax.legend(fontsize=7, ncol=3)
    fig.suptitle(
        "POST /predict under wrk: requests/s per server (median over rounds; higher is better)",
        fontsize=11,
    )
    fig.tight_layout()
    path = dest / "http_rps.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name


def cpu_req(s: dict) -> str:
    c = s.get("server_cpu_us_per_request")
    return "—" if not c else f"{c['median']:,.0f} µs"


def http_section(http: dict, dest: Path, out: List[str], plots: List[str]) -> None:
    cfg = http["config"]
    out += [
        "## HTTP",
        "",
        f"`benchmarks/bench_http.py`. `wrk` (`benchmarks/wrk_post.lua`) POSTs the lesson's "
        '`{"features": [...]}` for 256 test rows in turn to `/predict`. Per model and worker count '
        "all servers run side by side on 127.0.0.1, each checked against scikit-learn's answers "
        f"and warmed up ({cfg['warmup_seconds']} s), then wrk runs of {cfg['seconds']:g} s take turns "
        f"across servers, {cfg['rounds']} rounds; req/s, p50 and p99 are medians over rounds, errors "
        f"are summed (connect, read, write, timeout > {cfg['wrk_timeout_s']} s, non-2xx). wrk uses "
        f"{cfg['wrk_threads']} threads on the same 2 cores as the servers. Flask runs under gunicorn "
        f"with gthread workers ({cfg['gthread_threads']} threads) on both sides; FastAPI under uvicorn "
        "on both sides. *server CPU/req*: the server's own CPU time (utime + stime of its process group) "
        "over a run divided by the requests served, median over rounds; it moves far less with the "
        "machine's other load than req/s does. Memory: PSS summed over the server's processes after "
        "the load.",
        "",
    ]
    skipped = [s for s in http["servers"] if s.get("missing")]
    for s in skipped:
        out.append(f"- {s['name']} was not run: {s['missing']}.")
    if skipped:
        out.append("")
    name = plot_http(http, dest)
    if name:
        plots.append(name)
        out += [f"![requests per second]({name})", ""]
    servers = {s["name"]: s for s in http["servers"]}
    groups: Dict[Tuple[str, int], List[dict]] = {}
    for r in http["runs"]:
        groups.setdefault((r["model"], r["workers"]), []).append(r)
    for (model, workers), runs in groups.items():
        concs = sorted({int(c) for r in runs for c in r["by_concurrency"]})
        out += [
            f"### {model}, {workers} worker{'s' if workers > 1 else ''}",
            "",
            "| server | runs under | "
            + " | ".join(f"c={c}: req/s · p50 · p99 · server CPU/req" for c in concs)
            + " | errors | PSS | answers ≠ sklearn |",
            "|---|---|" + "---|" * len(concs) + "---|---|---|",
        ]
        for r in runs:
            if r.get("failed"):
                out.append(
                    f"| {r['server']} | {servers[r['server']]['server']} | failed: "
                    f"{r['failed'][:200].replace('|', '/')} |"
                )
                continue
            cells = []
            for c in concs:
                s = r["by_concurrency"].get(str(c))
                cells.append(
                    "—"
                    if not s
                    else f"{s['rps']['median']:,.0f} · {s['p50_us']['median'] / 1e3:.2f} ms"
                    f" · {s['p99_us']['median'] / 1e3:.2f} ms · {cpu_req(s)}"
                )
            errors = sum(s["errors"] for s in r["by_concurrency"].values())
            mem = r.get("memory")
            out.append(
                f"| {r['server']} | {servers[r['server']]['server']} | "
                + " | ".join(cells)
                + f" | {errors} | {'—' if not mem else format(mem['pss_mib'], '.0f') + ' MiB'} | "
                f"{r.get('answer_mismatches', '—')} |"
            )
        out.append("")


# -- headline, targets, reading -------------------------------------------------------


def model_by_key(data: Optional[dict], key: str) -> Optional[dict]:
    if not data:
        return None
    return next((m for m in data["models"] if m["key"] == key), None)


def http_run(http: Optional[dict], model: str, workers: int, server: str) -> Optional[dict]:
    if not http:
        return None
    return next(
        (
            r
            for r in http["runs"]
            if r["model"] == model
            and r["workers"] == workers
            and r["server"] == server
            and r.get("by_concurrency")
        ),
        None,
    )


def headline_and_targets(inproc, cold, http, out: List[str]) -> List[str]:
    """Headline tables and the issue's targets; returns findings for the reading."""
    findings: List[str] = []
    targets: List[Tuple[str, str, Optional[bool]]] = []
    single_targets = {
        "iris_lr": (1.5e-6, 25),
        "rf100": (10e-6, 200),
        "hgb100": (5e-6, 100),
        "pca_lr": (2e-6, 200),
    }
    if inproc:
        out += [
            "### Single row (`x[None, :]`), median per call",
            "",
            "| model | sklearn | mlfast | sklearn ÷ mlfast | ONNX RT | ONNX RT ÷ mlfast | "
            "lesson's list row: sklearn · mlfast |",
            "|---|---|---|---|---|---|---|",
        ]
        for m in inproc["models"]:
            one = m["latency"]["1"]
            sk, mf, ort = (
                med(one, "scikit-learn"),
                med(one, "mlfast 1 thread"),
                med(one, "ONNX Runtime"),
            )
            lst = m["latency_list_row"]
            out.append(
                f"| {m['title']} | {t(sk)} | {t(mf)} | {x(ratio(sk, mf))} | {t(ort)} | "
                f"{x(ratio(ort, mf))} | {t(med(lst, 'scikit-learn'))} · {t(med(lst, 'mlfast 1 thread'))} |"
            )
            if m["key"] in single_targets:
                limit, times = single_targets[m["key"]]
                r = ratio(sk, mf)
                targets.append(
                    (
                        f"{m['title']}: single row ≤ {limit * 1e6:g} µs",
                        t(mf),
                        None if mf is None else mf <= limit,
                    )
                )
                targets.append(
                    (
                        f"{m['title']}: single row ≥ {times}× sklearn",
                        x(r),
                        None if r is None else r >= times,
                    )
                )
            if "scikit-learn, OpenMP 1 thread" in one:
                sk1 = med(one, "scikit-learn, OpenMP 1 thread")
                findings.append(
                    f"{m['title']}: scikit-learn's single-row predict runs an OpenMP loop over all cores; "
                    f"on this shared machine that costs {t(sk)} a row against {t(sk1)} with OpenMP limited "
                    f"to one thread. Against that fairer figure mlfast is {x(ratio(sk1, mf))} faster, "
                    f"not {x(ratio(sk, mf))}."
                )
        out.append("")
        big = inproc["config"]["throughput_rows"]
        sizes = [b for b in inproc["config"]["batches"] if b >= 10]
        out += [
            "### Batches: sklearn ÷ mlfast and ONNX RT ÷ mlfast "
            "(mlfast all cores; > 1× means mlfast is faster)",
            "",
            "| model | "
            + " | ".join(f"{b:,} rows" for b in sizes)
            + f" | {big:,} rows (throughput) |",
            "|---|" + "---|" * (len(sizes) + 1),
        ]
        for m in inproc["models"]:
            cells = []
            for b in sizes:
                tm = m["latency"][str(b)]
                cells.append(
                    f"{x(ratio(med(tm, 'scikit-learn'), med(tm, MLFAST_DEFAULT)))} · "
                    f"{x(ratio(med(tm, 'ONNX Runtime'), med(tm, MLFAST_DEFAULT)))}"
                )
            tp = m["throughput"]
            cells.append(
                f"{x(ratio(med(tp, 'scikit-learn'), med(tp, MLFAST_DEFAULT)))} · "
                f"{x(ratio(med(tp, 'ONNX Runtime'), med(tp, MLFAST_DEFAULT)))}"
            )
            out.append(f"| {m['title']} | " + " | ".join(cells) + " |")
        out.append("")
        # targets over batches: >= 3x sklearn at every batch >= 10 rows, faster than ORT at every size
        worst_sk, worst_ort = None, None
        for m in inproc["models"]:
            points = [(b, m["latency"][str(b)]) for b in inproc["config"]["batches"]] + [
                (big, m["throughput"])
            ]
            for b, tm in points:
                mf = med(tm, MLFAST_DEFAULT)
                r_sk, r_ort = ratio(med(tm, "scikit-learn"), mf), ratio(med(tm, "ONNX Runtime"), mf)
                if b >= 10 and r_sk is not None and (worst_sk is None or r_sk < worst_sk[0]):
                    worst_sk = (r_sk, m["title"], b)
                if r_ort is not None and (worst_ort is None or r_ort < worst_ort[0]):
                    worst_ort = (r_ort, m["title"], b)
        # the tree models' target: 10,000 and 100,000 rows, >= 3x sklearn with the machine's cores
        trees = [m for m in inproc["models"] if m["key"] in ("rf100", "et100", "gb100", "hgb100")]
        tree_points = []
        for m in trees:
            for b, tm in ((10_000, m["latency"].get("10000")), (big, m["throughput"])):
                if tm is not None and b in (10_000, 100_000):
                    r = ratio(med(tm, "scikit-learn"), med(tm, MLFAST_DEFAULT))
                    if r is not None:
                        tree_points.append((r, m["title"], b))
        if tree_points:
            low = min(tree_points)
            targets.append(
                (
                    "tree models, 10,000 and 100,000 rows: ≥ 3× sklearn's throughput",
                    f"lowest {x(low[0])} ({low[1]}, {low[2]:,} rows)",
                    low[0] >= 3,
                )
            )
        if worst_sk:
            targets.append(
                (
                    "batches (10 rows and up): ≥ 3× sklearn's throughput, every model",
                    f"lowest {x(worst_sk[0])} ({worst_sk[1]}, {worst_sk[2]:,} rows)",
                    worst_sk[0] >= 3,
                )
            )
        if worst_ort:
            targets.append(
                (
                    "faster than ONNX Runtime at every batch size, every model",
                    f"lowest {x(worst_ort[0])} ({worst_ort[1]}, {worst_ort[2]:,} rows)",
                    worst_ort[0] > 1,
                )
            )
    if cold:
        out += [
            "### Cold start (import + load in a fresh process) and peak RSS, medians",
            "",
            "| model | joblib + sklearn | mlfast | ratio | ONNX RT | peak RSS: joblib · mlfast · ONNX RT |",
            "|---|---|---|---|---|---|",
        ]
        worst = None
        for m in cold["models"]:
            e = m["engines"]
            jl, mf, ort = (
                med(e.get("joblib + scikit-learn"), "import_load"),
                med(e.get("mlfast"), "import_load"),
                med(e.get("ONNX Runtime"), "import_load"),
            )
            rss = [
                med(e.get(k), "peak_rss_kib_load")
                for k in ("joblib + scikit-learn", "mlfast", "ONNX Runtime")
            ]
            out.append(
                f"| {m['title']} | {t(jl)} | {t(mf)} | {x(ratio(jl, mf))} | {t(ort)} | "
                + " · ".join("—" if r is None else f"{r / 1024:.0f} MiB" for r in rss)
                + " |"
            )
            r = ratio(jl, mf)
            lower = rss[1] is not None and rss[0] is not None and rss[1] < rss[0]
            if r is not None and (worst is None or r < worst[0]):
                worst = (r, m["title"])
            if not lower:
                findings.append(
                    f"cold start, {m['title']}: mlfast's peak RSS is not below joblib's."
                )
            if ort is not None and mf is not None and ort < mf:
                findings.append(
                    f"cold start, {m['title']}: ONNX Runtime imports and loads faster "
                    f"({t(ort)} against mlfast's {t(mf)})."
                )
            if rss[2] is not None and rss[1] is not None and rss[2] < rss[1]:
                findings.append(
                    f"cold start, {m['title']}: ONNX Runtime peaks lower "
                    f"({rss[2] / 1024:.0f} MiB against mlfast's {rss[1] / 1024:.0f} MiB)."
                )
        out.append("")
        if worst:
            all_lower = all(
                med(m["engines"].get("mlfast"), "peak_rss_kib_load")
                < med(m["engines"].get("joblib + scikit-learn"), "peak_rss_kib_load")
                for m in cold["models"]
            )
            targets.append(
                (
                    "cold start ≥ 4× faster than joblib, every model",
                    f"lowest {x(worst[0])} ({worst[1]})",
                    worst[0] >= 4,
                )
            )
            targets.append(
                (
                    "lower peak memory than joblib, every model",
                    "yes" if all_lower else "no",
                    all_lower,
                )
            )
    if http:
        want = {"iris_lr": 2, "rf100": 15}
        out += [
            "### HTTP: lesson app vs mlfast app, same server, same worker count",
            "",
            "| model | workers | framework | connections | lesson req/s · p99 | mlfast req/s · p99 | "
            "req/s ratio | p99 lower | server CPU/req: lesson · mlfast (ratio) |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for lesson, mine, fw in (
            ("lesson FastAPI", "mlfast FastAPI app", "FastAPI"),
            ("lesson Flask", "mlfast Flask app", "Flask"),
        ):
            for model in ("iris_lr", "rf100"):
                for workers in (1, 4):
                    a, b = (
                        http_run(http, model, workers, lesson),
                        http_run(http, model, workers, mine),
                    )
                    if not a or not b:
                        continue
                    ratios, p99_ok = [], True
                    for c, sa in a["by_concurrency"].items():
                        sb = b["by_concurrency"].get(c)
                        if not sb:
                            continue
                        rr = ratio(sb["rps"]["median"], sa["rps"]["median"])
                        lower = sb["p99_us"]["median"] < sa["p99_us"]["median"]
                        ratios.append(rr)
                        p99_ok &= lower
                        cpu_ratio = ratio(
                            med(sa, "server_cpu_us_per_request"),
                            med(sb, "server_cpu_us_per_request"),
                        )
                        out.append(
                            f"| {model} | {workers} | {fw} | {c} | {sa['rps']['median']:,.0f} · "
                            f"{sa['p99_us']['median'] / 1e3:.2f} ms | {sb['rps']['median']:,.0f} · "
                            f"{sb['p99_us']['median'] / 1e3:.2f} ms | {x(rr)} | "
                            f"{'yes' if lower else '**no**'} | "
                            f"{cpu_req(sa)} · {cpu_req(sb)} ({x(cpu_ratio)}) |"
                        )
                    if ratios and model in want:
                        targets.append(
                            (
                                f"HTTP {model}, {fw}, {workers} worker{'s' if workers > 1 else ''}: "
                                f"≥ {want[model]}× req/s with lower p99, every concurrency",
                                f"lowest {x(min(ratios))}; p99 lower: {'yes' if p99_ok else 'no'}",
                                min(ratios) >= want[model] and p99_ok,
                            )
                        )
        out.append("")
    out += ["### Targets from the issues", "", "| target | measured | |", "|---|---|---|"]
    out += [f"| {name} | {value} | {yes(ok)} |" for name, value, ok in targets]
    out.append("")
    return findings


def not_ahead(inproc, cold, http) -> List[str]:
    """Every measured point where another engine or server beats mlfast."""
    notes = []
    if inproc:
        big = inproc["config"]["throughput_rows"]
        for m in inproc["models"]:
            points = [(int(b), tm) for b, tm in m["latency"].items()] + [(big, m["throughput"])]
            for b, tm in points:
                mf = min(
                    v
                    for v in (med(tm, "mlfast 1 thread"), med(tm, MLFAST_DEFAULT))
                    if v is not None
                )
                for e in ("scikit-learn", "scikit-learn, OpenMP 1 thread", "ONNX Runtime"):
                    other = med(tm, e)
                    if other is not None and other < mf:
                        notes.append(
                            f"{m['title']}, {b:,} rows: {e} {t(other)} against mlfast's best {t(mf)}."
                        )
                one, allc = med(tm, "mlfast 1 thread"), med(tm, MLFAST_DEFAULT)
                if b >= 100 and one and allc and allc > 1.25 * one:
                    notes.append(
                        f"{m['title']}, {b:,} rows: mlfast with all cores ({t(allc)}) is slower than "
                        f"with one thread ({t(one)}): its threads cost more than they give here."
                    )
    if http:
        pairs = {
            "mlfast FastAPI app": "lesson FastAPI",
            "mlfast serve": "lesson FastAPI",
            "mlfast Flask app": "lesson Flask",
            "mlfast serve (Flask)": "lesson Flask",
        }
        for r in http["runs"]:
            ref = http_run(http, r["model"], r["workers"], pairs.get(r["server"], ""))
            if not ref or not r.get("by_concurrency"):
                continue
            for c, s in r["by_concurrency"].items():
                sr = ref["by_concurrency"].get(c)
                if not sr:
                    continue
                if s["rps"]["median"] <= sr["rps"]["median"]:
                    notes.append(
                        f"HTTP {r['model']}, {r['workers']} worker(s), c={c}: {r['server']} "
                        f"{s['rps']['median']:,.0f} req/s against {ref['server']}'s "
                        f"{sr['rps']['median']:,.0f}."
                    )
                if s["p99_us"]["median"] >= sr["p99_us"]["median"]:
                    notes.append(
                        f"HTTP {r['model']}, {r['workers']} worker(s), c={c}: {r['server']}'s p99 "
                        f"{s['p99_us']['median'] / 1e3:.2f} ms is not below {ref['server']}'s "
                        f"{sr['p99_us']['median'] / 1e3:.2f} ms."
                    )
    return notes


def machine_section(parts: Dict[str, dict], out: List[str]) -> None:
    first = next(iter(parts.values()))["machine"]
    v = first["versions"]
    ob = first["openblas_env"]
    found = ", ".join(f"{k}={val}" for k, val in ob["found"].items() if val) or "neither set"
    used = ", ".join(f"{k}={val}" for k, val in ob["in_benchmark"].items() if val) or "neither set"
    kernels = "; ".join(
        f"{b['prefix']} {b['version']} → {b['architecture']} kernel, {b['num_threads']} threads "
        f"({Path(str(b['filepath'])).parent.name})"
        for b in first["blas"]
        if b.get("internal_api") == "openblas"
    )
    openmp = "; ".join(
        f"{b['prefix']} ({b['num_threads']} threads)"
        for b in first["blas"]
        if b.get("internal_api") == "openmp"
    )
    out += [
        "## Machine",
        "",
        "| | |",
        "|---|---|",
        f"| CPU | {first['cpu']}, {first['cpus']} cores available to the process |",
        f"| platform | {first['platform']} |",
        f"| Python | {v.get('python')} |",
        f"| numpy · scikit-learn · joblib | {v.get('numpy')} · {v.get('scikit-learn')} · {v.get('joblib')} |",
        f"| onnxruntime · skl2onnx · onnx | {v.get('onnxruntime')} · {v.get('skl2onnx')} · {v.get('onnx')} |",
        f"| fastapi · uvicorn · flask · gunicorn · wrk | {v.get('fastapi')} · {v.get('uvicorn')} · "
        f"{v.get('flask')} · {v.get('gunicorn')} · {v.get('wrk')} |",
        f"| mlfast | {v.get('mlfast')}, revision {first.get('mlfast_revision')} |",
        f"| OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE | in the calling environment: {found}; "
        f"in the benchmark processes: {used} |",
        f"| BLAS kernels (threadpoolctl) | {kernels or '—'} |",
        f"| OpenMP | {openmp or '—'} |",
    ]
    for name, data in parts.items():
        m = data["machine"]
        end = m.get("loadavg_end")
        out.append(
            f"| load average, {name} | start {m['loadavg_start'][0]:.1f}, end "
            f"{'—' if not end else format(end[0], '.1f')} ({m['date']}) |"
        )
    out.append("")


STATIC_NOTES = """\
## Method notes

- **Shared, noisy machine.** Two cores shared with other workers (see the load averages above: a
  load of 2 means both cores are busy before the benchmark starts). Every figure is a median over
  repeats with its min–max, engines take turns inside a repeat so a burst of load hits them alike,
  and every ratio divides medians of the same run. Absolute numbers on a quiet machine will be lower
  for everybody; small ratios (under ~1.3×) are within the noise.
- **What "mlfast" is here.** `mlfast.load(path)` of the same `joblib.dump` file scikit-learn reads;
  `mlfast 1 thread` is after `mlfast.set_num_threads(1)`, `mlfast all cores` is the default
  (`set_num_threads(<cpus>)`); mlfast splits a call across threads only above a fixed amount of work.
- **ONNX Runtime.** skl2onnx's graph of the unpickled estimator, `zipmap=False`, default session
  options (its own thread pool over all cores), only the label output requested. float64 graphs where
  skl2onnx's graph runs in ONNX Runtime; for ExtraTrees, GradientBoosting and HistGradientBoosting its
  float64 graphs fail ONNX Runtime's type check (a double output where the tree-ensemble operator
  gives float), so those run float32 (inputs
  and thresholds rounded to float32: small probability differences, and occasionally a different
  label, are the cost of that, and are reported above rather than hidden). skl2onnx 1.20 cannot
  convert any HistGradientBoosting model with onnx ≥ 1.18 (it passes Python's `False` where onnx wants
  an int); `bench_models.py` casts that one flag, which changes nothing else.
- **scikit-learn** is called as the lesson calls it: `model.predict(X)` on the estimator
  `joblib.load` returns, default threading (a forest with `n_jobs=None`; HistGradientBoosting's
  OpenMP loop over all cores — also timed with OpenMP limited to one thread).
- **HTTP.** The lesson's apps are copied as written into `benchmarks/lesson_apps/` (only the model
  path read from `MODEL_PATH`). wrk and the servers share the two cores, so the req/s figures compare
  servers under the same handicap rather than measure the machine's capacity; a 4-worker server on 2
  cores is oversubscribed on purpose (it is what the lesson's scale-out advice leads to).
"""


def build(results: Path, dest: Path, command: str) -> Path:
    inproc = load(results / "inprocess.json")
    cold = load(results / "coldstart.json")
    http = load(results / "http.json")
    parts = {k: v for k, v in (("in-process", inproc), ("cold start", cold), ("HTTP", http)) if v}
    if not parts:
        raise SystemExit(f"no results in {results}")
    dest.mkdir(parents=True, exist_ok=True)
    quick = any(p["config"].get("quick") for p in parts.values())
    out = ["# mlfast benchmarks", ""]
    if quick:
        out += [
            "> **Quick run** (`--quick`: tiny models, a few repeats). It checks that the scripts run; "
            "its numbers mean nothing.",
            "",
        ]
    out += [
        "mlfast side by side with scikit-learn (the lesson's `joblib.load` + `model.predict`), ONNX "
        "Runtime (via skl2onnx) and the lesson's Flask and FastAPI apps. Generated by "
        "`benchmarks/report.py` from `benchmarks/results/*.json`; do not edit by hand.",
        "",
        f"Produced by: `{command}` (run from the repository root).",
        "",
    ]
    machine_section(parts, out)
    plots: List[str] = []
    out += ["## Headline", ""]
    findings = headline_and_targets(inproc, cold, http, out)
    notes = not_ahead(inproc, cold, http)
    out += ["## Reading", ""]
    out += [f"- {f}" for f in findings]
    if notes:
        out += [
            "- **Where mlfast is not ahead** (every measured point where another engine or the "
            "lesson's server beats it):"
        ]
        out += [f"    - {n}" for n in notes]
    else:
        out.append("- mlfast was ahead at every measured point.")
    out.append("")
    # Notes written by hand about one run: kept only while they describe the
    # results beside them (their first line names the run's date).
    extra = results / "READING.md"
    if extra.exists() and inproc:
        text = extra.read_text()
        if f"run: {inproc['machine']['date']}" in text.splitlines()[0]:
            out += ["\n".join(text.splitlines()[1:]).strip(), ""]
        else:
            out += [
                "(The hand-written notes in `results/READING.md` describe another run and are left "
                "out.)",
                "",
            ]
    if inproc:
        inprocess_section(inproc, dest, out, plots)
    if cold:
        coldstart_section(cold, dest, out, plots)
    if http:
        http_section(http, dest, out, plots)
    out.append(STATIC_NOTES)
    page = dest / "BENCHMARKS.md"
    page.write_text("\n".join(out))
    return page


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--results", type=Path, default=_common.RESULTS)
    p.add_argument("--dest", type=Path, default=_common.HERE)
    p.add_argument("--command", default="make bench")
    args = p.parse_args(argv)
    page = build(args.results, args.dest, args.command)
    print(f"wrote {page}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
