"""bench/ann/report.py - the report of bench/ann_peers.py: from the saved
curves (JSON) to Markdown tables and one recall-vs-QPS PNG per dataset.

The Markdown goes into bench/results/<date>.md between two marker lines, so
that other steps of `make bench` can keep their own sections in the same
file; the PNGs are bench/results/ann-<dataset>.png (fixed names, so the
README's links stay valid from one run to the next).

QPS at a recall target is read off each system's Pareto frontier (the
sweep points no other point beats on both recall and QPS), interpolated on
log QPS between the two frontier points around the target; a system that
never reaches the target has none.  "Best peer" is the fastest non-VexLake
system at that target in the same run.
"""
import datetime
import math
import os

BEGIN, END = "<!-- ann-bench begin -->", "<!-- ann-bench end -->"
TARGETS = (0.95, 0.99)
CLIP = 0.9999


def frontier(points):
    """(recall, qps) points no other point dominates, by recall ascending."""
    pts = sorted(((p[1], p[2]) for p in points), key=lambda x: (-x[0], -x[1]))
    out, best = [], -1.0
    for r, q in pts:  # recall descending: keep a point only if it is faster
        if q > best:
            out.append((r, q))
            best = q
    return out[::-1]


def qps_at(points, target):
    f = frontier(points)
    if not f or f[-1][0] < target:
        return None
    if f[0][0] >= target:
        return f[0][1]
    for (r0, q0), (r1, q1) in zip(f, f[1:]):
        if r0 < target <= r1:
            t = (target - r0) / (r1 - r0)
            return math.exp(math.log(q0) + t * (math.log(q1) - math.log(q0)))
    return None


def is_vexlake(name):
    return name.startswith("vexlake") and not is_baseline(name)


def is_baseline(name):
    """Another build run beside this one (ann_peers.py BENCH_BASELINE): its
    table row gives the same-run ratios; it is neither VexLake nor a peer."""
    return name.endswith("-base")


def fmt(x, spec=",.0f"):
    return "n/a" if x is None else format(x, spec)


def ratio(a, b):
    return "n/a" if a is None or b is None else f"{a / b:.2f}x"


def at_targets(ds):
    """{system: (qps@0.95, qps@0.99)} for the systems that ran."""
    return {s: tuple(qps_at(v["points"], t) for t in TARGETS)
            for s, v in ds["systems"].items() if v.get("status") == "ok"}


def best_of(at, pick):
    """(name, qps) per target of the fastest system pick() accepts."""
    out = []
    for i in range(len(TARGETS)):
        c = [(q[i], s) for s, q in at.items() if pick(s) and q[i] is not None]
        out.append(max(c)[::-1] if c else (None, None))
    return out


def plot(name, ds, path, started):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8.5, 5.5), dpi=100)
    systems = [s for s, v in ds["systems"].items() if v.get("status") == "ok" and v["points"]]
    ours = iter(["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple"])
    theirs = iter(plt.get_cmap("Dark2").colors + plt.get_cmap("Set1").colors)
    for s in systems:
        # Recall 1.0 cannot sit on a logit axis: it is drawn at 1 - 1e-4.
        pts = sorted((min(p[1], CLIP), p[2]) for p in ds["systems"][s]["points"] if p[1] >= 0.7)
        if not pts:
            continue
        vx = is_vexlake(s)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], label=s,
                color=next(ours) if vx else next(theirs), linewidth=2.4 if vx else 1.2,
                linestyle="-" if vx else "--", marker="o" if vx else "x", markersize=4)
    for t in TARGETS:
        ax.axvline(t, color="grey", linewidth=0.8, linestyle=":")
    ax.set_xscale("logit")
    ax.set_yscale("log")
    ax.set_xlim(0.7, CLIP * 1.00002)
    ax.set_xticks([0.7, 0.8, 0.9, 0.95, 0.99, 0.995, 0.999, CLIP])
    ax.set_xticklabels(["0.7", "0.8", "0.9", "0.95", "0.99", "0.995", "0.999", "1.0"])
    ax.minorticks_off()
    ax.set_xlabel("recall@10, tie-aware (logit scale)")
    ax.set_ylabel("queries per second, one thread (log)")
    ax.set_title(f"{name} (n={ds['n']:,}, d={ds['dim']}, {ds['metric']}), {started}", fontsize=10)
    ax.grid(True, which="major", linewidth=0.3)
    ax.legend(fontsize=7, ncol=2, loc="lower left")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def load_summary(res):
    loads = [ld for _, ld in res.get("load", [])]
    if not loads:
        return "not sampled"
    return (f"1-minute load average {min(loads):.2f} to {max(loads):.2f} "
            f"(mean {sum(loads) / len(loads):.2f}, {len(loads)} samples, one before each "
            f"system; the bench itself accounts for about 1.0) on {res['machine']['cores']} cores")


def markdown(res, pngs):
    m = res["machine"]
    lines = [BEGIN, f"## In-process ANN, one thread ({res['started']} to {res.get('finished', '?')})",
             "",
             f"Machine: {m['cores']} cores, {m['arch']} ({m['cpu']}), kernel {m['kernel']}, "
             f"Python {m['python']}; shared with other sessions: {load_summary(res)}; "
             f"bench niceness {res.get('nice', 0)}.",
             "QPS is queries per second of the process's CPU time (best pass), recall@10 is "
             "tie-aware; ratios at equal recall come from each system's Pareto frontier, "
             "log-interpolated.  Build time is CPU seconds on one thread.  Bytes per vector: "
             "the index as the library sizes it (serialised), including the float32 rows the "
             "search re-ranks with (VexLake's compressed indexes also without them, in brackets: "
             "the engine's row store serves them); RSS growth is the process's resident memory added by the "
             "build (peers only).",
             "", f"Command: `{res['command']}`", ""]
    head = ["", "### Headline: QPS at recall@10 (best VexLake index vs hnswlib and the best peer)", "",
            "| dataset | recall | best VexLake | QPS | hnswlib QPS | vs hnswlib | best peer | QPS | vs best peer |",
            "|---|---:|---|---:|---:|---:|---|---:|---:|"]
    body, failed, versions = [], {}, {}
    for name, ds in res["datasets"].items():
        at = at_targets(ds)
        vx = best_of(at, is_vexlake)
        pe = best_of(at, lambda s: not is_vexlake(s) and not is_baseline(s))
        h = at.get("hnswlib", (None, None))
        for i, t in enumerate(TARGETS):
            head.append(f"| {name} | {t} | {vx[i][0] or 'n/a'} | {fmt(vx[i][1])} | {fmt(h[i])} | "
                        f"{ratio(vx[i][1], h[i])} | {pe[i][0] or 'n/a'} | {fmt(pe[i][1])} | "
                        f"{ratio(vx[i][1], pe[i][1])} |")
        hb = ds["systems"].get("hnswlib", {})
        body += ["", f"### {name} (n={ds['n']:,}, dim={ds['dim']}, {ds['metric']}, "
                 f"IVF nlist={ds['nlist']})", ""]
        if name in pngs:
            body += [f"![{name}]({pngs[name]})", ""]
        body += ["| system | knob | build s | vs hnswlib | B/vector | vs hnswlib | RSS growth B/vector "
                 "| QPS@0.95 | vs hnswlib | vs best peer | QPS@0.99 | vs hnswlib | vs best peer |",
                 "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for s, v in ds["systems"].items():
            if v.get("version"):
                versions[s] = v["version"]
            if v.get("status") != "ok":
                failed.setdefault(s, []).append(f"{name}: {v.get('status')}")
                continue
            q = at[s]
            body.append(
                f"| {s} | {v.get('knob', '')} | {fmt(v.get('build_s'), '.2f')} | "
                f"{ratio(v.get('build_s'), hb.get('build_s'))} | {fmt(v.get('index_bpv'))}"
                + (f" ({fmt(v['external_bpv'])} without rows)" if v.get("external_bpv") else "")
                + " | "
                f"{ratio(v.get('index_bpv'), hb.get('index_bpv'))} | {fmt(v.get('rss_bpv'))} | "
                f"{fmt(q[0])} | {ratio(q[0], h[0])} | {ratio(q[0], pe[0][1])} | "
                f"{fmt(q[1])} | {ratio(q[1], h[1])} | {ratio(q[1], pe[1][1])} |")
        body += ["", "<details><summary>sweep points (knob, recall, QPS by CPU, QPS by wall)</summary>",
                 "", "| system | knob | recall@10 | QPS (CPU) | QPS (wall) |", "|---|---:|---:|---:|---:|"]
        for s, v in ds["systems"].items():
            for p in v["points"]:
                body.append(f"| {s} | {p[0]} | {p[1]:.4f} | {p[2]:,.0f} | {p[3]:,.0f} |")
        body += ["", "</details>"]
    lines += head
    if failed:
        lines += ["", "### Peers that did not run", ""]
        lines += [f"- **{s}**: " + "; ".join(why) for s, why in failed.items()]
    from . import peers

    lines += ["", "### Systems", ""]
    lines += [f"- **vexlake-hnsw / -sq8**: this tree's HNSW (M={peers.M}, ef_construction="
              f"{peers.EF_CONSTRUCTION}) walked on float32, or on SQ8 codes with a float32 "
              "re-rank (same graph)",
              "- **vexlake-ivf / -sq8 / -rabitq**: this tree's IVF (nlist = 2 sqrt(n)) over "
              "float32, SQ8 or RaBitQ codes, candidates re-ranked in float32; one query per call"]
    lines += [f"- **{s}** ({peers.PACKAGE[s]} {versions.get(s, '?')}): {d}"
              for s, d in peers.DESCRIBE.items()]
    cmds = []
    for ds in res["datasets"].values():
        for s, v in ds["systems"].items():
            c = " ".join(v.get("cmd", []))
            if c and c not in cmds:
                cmds.append(c)
    lines += ["", "<details><summary>every command line of this run</summary>", ""]
    lines += [f"    {c}" for c in cmds]
    lines += ["", "</details>"]
    lines += body + ["", END]
    return "\n".join(lines) + "\n"


def write(res, out_dir):
    """Write the PNGs and the Markdown section; return the headline text."""
    os.makedirs(out_dir, exist_ok=True)
    pngs = {}
    for name, ds in res["datasets"].items():
        fn = f"ann-{name}.png"
        try:
            plot(name, ds, os.path.join(out_dir, fn), res["started"])
            pngs[name] = fn
        except ImportError as e:  # matplotlib missing: tables only
            print(f"ann report: no plot ({e})")
    day = res["started"][:10] if res.get("started") else datetime.date.today().isoformat()
    md_path = os.path.join(out_dir, f"{day}.md")
    section = markdown(res, pngs)
    old = open(md_path).read() if os.path.exists(md_path) else f"# Benchmarks, {day}\n\n"
    if BEGIN in old and END in old:
        new = old[:old.index(BEGIN)] + section + old[old.index(END) + len(END) + 1:]
    else:
        new = old.rstrip("\n") + "\n\n" + section
    with open(md_path, "w") as f:
        f.write(new)
    head = section.split("### Headline", 1)[1].split("\n\n### ", 1)[0]
    return f"### Headline{head}\nann report: {md_path}"
