#!/usr/bin/env python3
"""Draws the charts of BENCHMARKS.md (SVG, standard library only) from one run's outputs, and
prints the "Cost at scale" tables.

    cargo bench -p benches --bench scale | tee target/scale.log     # criterion + SCALE_MEM lines
    benches/load.sh | tee target/load.log                            # wrk, every variant
    python3 benches/charts.py --load target/load.log --scale target/scale.log

Writes benches/charts/load.svg (requests/s of every variant and peer as % of no-auth, the
median of load.sh's paired rounds, as load.sh prints it) and benches/charts/scale.svg (the
per-check cost of each scale benchmark against its smallest size, from criterion's medians in
<target>/criterion/scale_*/<bench>/<size>/new/estimates.json). <target> is $CARGO_TARGET_DIR
if set, else target/ (or --criterion DIR).
"""

import argparse
import json
import os
import re
import sys
from html import escape
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FONT = 'font-family="DejaVu Sans, Helvetica, Arial, sans-serif"'
COLOURS = ["#1f5fa8", "#d9730d", "#2e8b57", "#b03060", "#6a5acd", "#8b6914"]

# The scale panels: criterion group, title, the benchmarks in it with their labels, x label.
PANELS = [
    ("scale_api_keys", "API keys", [("same_key", "same key"), ("every_key_in_turn", "every key in turn")], "keys configured"),
    ("scale_issuers", "OIDC issuers", [("cached", "cached token"), ("cold", "cold (EdDSA)")], "issuers"),
    ("scale_role_rules", "Role rules (whole layer)", [("exact", "exact paths"), ("service", "/pkg.Service/* rules")], "rules"),
    ("scale_token_cache", "Token cache", [("same_token", "same token"), ("every_token_in_turn", "every token in turn")], "tokens held"),
]


def fmt_ns(ns):
    if ns < 1000:
        return f"{ns:.0f} ns"
    if ns < 1_000_000:
        return f"{ns / 1000:.2f} µs"
    return f"{ns / 1e6:.2f} ms"


def fmt_count(n):
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n >= 1000 and n % 1000 == 0:
        return f"{n // 1000}k"
    return str(n)


def text(x, y, s, size=12, anchor="start", weight="normal", fill="#222"):
    return (f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
            f'font-weight="{weight}" fill="{fill}" {FONT}>{escape(s)}</text>')


def svg(width, height, body):
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}">\n'
            f'<rect width="{width}" height="{height}" fill="white"/>\n' + "\n".join(body) + "\n</svg>\n")


# ---------------------------------------------------------------- load.sh


def read_load(path):
    """The header line and the summary rows of one load.sh output:
    (variant, best requests/s, median % of no-auth, added server CPU per request in µs)."""
    header, rows = "", []
    for line in Path(path).read_text().splitlines():
        if re.match(r"^\d{4}-\d\d-\d\dT", line):
            header = line.strip()
        parts = line.split()
        if (len(parts) >= 7 and re.match(r"^[a-z][a-z_0-9]*$", parts[0])
                and re.match(r"^[\d.]+$", parts[1]) and parts[3].endswith("%")):
            rows.append((parts[0], float(parts[1]), float(parts[3].rstrip("%")), float(parts[6])))
    return header, rows


def read_load_table(path, heading="### Under wrk on loopback"):
    """The same rows from the wrk table of BENCHMARKS.md (summarize.py's rendering of one
    load.sh output), for a chart of the run that table reports."""
    lines = Path(path).read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(heading))
    rows = []
    for line in lines[start + 1:]:
        # The first table under the heading: the newest run.
        if line.startswith("#") or (rows and not line.startswith("|")):
            break
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 7 and re.match(r"^[a-z][a-z_0-9]*$", cells[0]) and cells[3].endswith("%"):
            added = float(cells[6].split()[0]) if cells[6] else 0.0
            rows.append((cells[0], float(cells[1]), float(cells[3].rstrip("%")), added))
    return rows


def load_chart(header, rows):
    bar_h, gap, left, right, top = 22, 8, 250, 260, 62
    width = 1000
    height = top + len(rows) * (bar_h + gap) + 50
    plot_w = width - left - right
    top_pct = max(100.0, max(r[2] for r in rows))
    scale = plot_w / top_pct
    body = [text(16, 24, "Under wrk on loopback: requests/s as % of no-auth (median of paired rounds)", 15, weight="bold"),
            text(16, 44, f"benches/load.sh: {header}", 11, fill="#555")]
    for pct in range(0, int(top_pct) + 1, 20):
        x = left + pct * scale
        body.append(f'<line x1="{x:.1f}" y1="{top - 6}" x2="{x:.1f}" y2="{height - 40}" stroke="#ddd"/>')
        body.append(text(x, height - 24, f"{pct}%", 11, "middle", fill="#555"))
    for i, (name, rps, pct, added_cpu) in enumerate(rows):
        y = top + i * (bar_h + gap)
        ours = name.startswith("ours") or name == "no_auth"
        colour = "#999" if name == "no_auth" else (COLOURS[0] if ours else COLOURS[1])
        body.append(text(left - 8, y + bar_h * 0.7, name, 12, "end"))
        body.append(f'<rect x="{left}" y="{y}" width="{pct * scale:.1f}" height="{bar_h}" fill="{colour}"/>')
        extra = "" if name == "no_auth" else f", +{added_cpu:.2f} µs CPU/req"
        body.append(text(left + pct * scale + 6, y + bar_h * 0.7, f"{pct:.1f}% ({rps:,.0f}/s{extra})", 11))
    body.append(text(left, height - 6, "blue: ours (grey: no auth); orange: peers. Best round's requests/s; added server CPU per request beside no-auth.", 10, fill="#555"))
    return svg(width, height, body)


# ---------------------------------------------------------------- criterion scale curves


def criterion_dir(arg):
    if arg:
        return Path(arg)
    target = os.environ.get("CARGO_TARGET_DIR")
    return (Path(target) if target else ROOT / "target") / "criterion"


def read_scale(criterion):
    """{group: {bench: [(size, median ns), ...] sorted by size}}"""
    found = {}
    for group, _, benches, _ in PANELS:
        for bench, _ in benches:
            base = criterion / group / bench
            if not base.is_dir():
                continue
            points = []
            for size_dir in base.iterdir():
                estimates = size_dir / "new" / "estimates.json"
                if size_dir.name.isdigit() and estimates.exists():
                    median = json.loads(estimates.read_text())["median"]["point_estimate"]
                    points.append((int(size_dir.name), median))
            if points:
                found.setdefault(group, {})[bench] = sorted(points)
    return found


def panel(x0, y0, w, h, title, series, xlabel):
    """One log-x panel: each series as its cost relative to its smallest size, labelled with
    absolute times; the 1.5x target dashed."""
    left, bottom, top = 46, 40, 28
    px0, py0, pw, ph = x0 + left, y0 + top, w - left - 14, h - top - bottom
    sizes = sorted({s for _, pts in series for s, _ in pts})
    ratios = [t / pts[0][1] for _, pts in series for _, t in pts]
    ymax = max(2.0, max(ratios) * 1.12)
    import math
    lo, hi = math.log10(sizes[0]), math.log10(sizes[-1])
    xs = (lambda s: px0 + pw / 2) if hi == lo else (lambda s: px0 + (math.log10(s) - lo) / (hi - lo) * pw)
    ys = lambda r: py0 + ph - r / ymax * ph
    body = [text(x0 + 8, y0 + 16, title, 13, weight="bold")]
    step = 0.5 if ymax <= 4 else (1 if ymax <= 8 else max(1, round(ymax / 6)))
    r = 0.0
    while r <= ymax + 1e-9:
        y = ys(r)
        body.append(f'<line x1="{px0}" y1="{y:.1f}" x2="{px0 + pw}" y2="{y:.1f}" stroke="#eee"/>')
        body.append(text(px0 - 5, y + 4, f"{r:g}x", 10, "end", fill="#555"))
        r += step
    y15 = ys(1.5)
    body.append(f'<line x1="{px0}" y1="{y15:.1f}" x2="{px0 + pw}" y2="{y15:.1f}" stroke="#c00" stroke-dasharray="5,4"/>')
    body.append(text(px0 + pw - 2, y15 - 4, "target 1.5x", 10, "end", fill="#c00"))
    for s in sizes:
        body.append(text(xs(s), py0 + ph + 16, fmt_count(s), 10, "middle", fill="#555"))
    body.append(text(px0 + pw / 2, py0 + ph + 32, xlabel + " (log scale); y: cost / cost at the smallest size", 10, "middle", fill="#555"))
    body.append(f'<rect x="{px0}" y="{py0}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>')
    for k, (label, pts) in enumerate(series):
        colour = COLOURS[k % len(COLOURS)]
        base = pts[0][1]
        path = " ".join(f"{xs(s):.1f},{ys(t / base):.1f}" for s, t in pts)
        body.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for j, (s, t) in enumerate(pts):
            body.append(f'<circle cx="{xs(s):.1f}" cy="{ys(t / base):.1f}" r="3" fill="{colour}"/>')
            anchor = "start" if j == 0 else ("end" if j == len(pts) - 1 else "middle")
            dy = -8 if k % 2 == 0 else 14
            body.append(text(xs(s), ys(t / base) + dy, fmt_ns(t), 9, anchor, fill=colour))
        body.append(text(px0 + 6, py0 + 14 + 13 * k, label, 10, fill=colour))
    return body


def scale_chart(found, note):
    w, h = 450, 270
    body = [text(16, 24, "Cost per check as the work grows (criterion medians, one run)", 15, weight="bold"),
            text(16, 44, note, 11, fill="#555")]
    placed = [(g, t, b, x) for g, t, b, x in PANELS if g in found]
    for i, (group, title, benches, xlabel) in enumerate(placed):
        series = [(label, found[group][bench]) for bench, label in benches if bench in found[group]]
        body += panel(10 + (i % 2) * w, 56 + (i // 2) * h, w - 10, h - 10, title, series, xlabel)
    rows = (len(placed) + 1) // 2
    return svg(2 * w + 10, 56 + rows * h, body)


# ---------------------------------------------------------------- tables


def read_mem(log):
    mem, notes = [], []
    if log and Path(log).exists():
        for line in Path(log).read_text().splitlines():
            m = re.match(r"^SCALE_MEM (\S+) (\d+) (-?\d+) (-?[\d.]+) (-?\d+)$", line.strip())
            if m:
                mem.append((m.group(1), int(m.group(2)), int(m.group(3)), float(m.group(4)), int(m.group(5))))
            elif line.startswith("SCALE_NOTE "):
                notes.append(line[len("SCALE_NOTE "):].strip())
    return mem, notes


def mib(b):
    return f"{b / 1048576:.1f} MiB" if abs(b) >= 1048576 else f"{b / 1024:.1f} KiB"


def tables(found, mem, notes):
    print("| what | size | per check (median) | / smallest size | target 1.5x |")
    print("|---|---:|---:|---:|---|")
    for group, title, benches, _ in PANELS:
        for bench, label in benches:
            pts = found.get(group, {}).get(bench)
            if not pts:
                continue
            base = pts[0][1]
            for size, t in pts:
                verdict = "" if size != pts[-1][0] else ("met" if t / base <= 1.5 else "missed")
                print(f"| {title}, {label} | {size:,} | {fmt_ns(t)} | {t / base:.2f}x | {verdict} |")
    if mem:
        print("\n| memory | size | live heap added | per item | RSS added |")
        print("|---|---:|---:|---:|---:|")
        for what, size, added, per, rss in mem:
            print(f"| {what} | {size:,} | {mib(added)} | {per:,.0f} B | {mib(rss)} |")
    for n in notes:
        print(f"\n- {n}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--load", help="load.sh output (its stdout)")
    p.add_argument("--load-table", help="instead of --load: the wrk table of this markdown file (BENCHMARKS.md)")
    p.add_argument("--load-note", default="", help="subtitle of the load chart with --load-table (which run)")
    p.add_argument("--scale", help="the scale bench's output (SCALE_MEM lines)")
    p.add_argument("--criterion", help="criterion's output directory")
    p.add_argument("--note", default="", help="subtitle of the scale chart (machine, date, commit)")
    p.add_argument("--out", default=str(ROOT / "benches" / "charts"))
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.load_table:
        rows = read_load_table(args.load_table)
        if not rows:
            sys.exit(f"{args.load_table}: no wrk table found")
        (out / "load.svg").write_text(load_chart(args.load_note, rows))
        print(f"wrote {out / 'load.svg'}", file=sys.stderr)
    elif args.load:
        header, rows = read_load(args.load)
        if not rows:
            sys.exit(f"{args.load}: no load.sh summary rows found")
        (out / "load.svg").write_text(load_chart(header, rows))
        print(f"wrote {out / 'load.svg'}", file=sys.stderr)
    found = read_scale(criterion_dir(args.criterion))
    if found:
        (out / "scale.svg").write_text(scale_chart(found, args.note))
        print(f"wrote {out / 'scale.svg'}", file=sys.stderr)
        mem, notes = read_mem(args.scale)
        tables(found, mem, notes)
    elif not (args.load or args.load_table):
        sys.exit("nothing to draw: no --load and no scale_* results under criterion's directory")


if __name__ == "__main__":
    main()
