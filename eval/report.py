"""The comparison report: DIR/index.html (inline CSS and JS, no network), its PNG figures and plots.

Built from DIR/results.json and the files `eval.compare` leaves in DIR (pred/, ref/), so `stereokit report DIR`
rebuilds it without the datasets or the matchers.
"""

from __future__ import annotations

import html
import io
import math
import os
from pathlib import Path
from urllib.parse import quote

import numpy as np

from stereokit.errors import StereoKitError
from stereokit.io import atomic_write_bytes, read_disparity, read_image, read_mask

from .colormap import (
    BAD_COLOR,
    BAD_OCCLUDED_COLOR,
    KITTI_DISP_COLORS,
    KITTI_DISP_WEIGHTS,
    KITTI_ERROR_COLORS,
    bad_pixel_map,
    colorize_disparity,
    error_image,
    write_png,
)
from .compare import _write_text_atomic, check_results, load_results, pred_path, ref_dir, safe_token

# Leaderboard columns: (metric key or special, header, lower is better, format)
LEADERBOARD = (
    ("D1-all", "D1-all %", True, "{:.2f}"),
    ("D1-bg", "D1-bg %", True, "{:.2f}"),
    ("D1-fg", "D1-fg %", True, "{:.2f}"),
    ("EPE", "EPE px", True, "{:.3f}"),
    ("bad-1.0", "bad-1.0 %", True, "{:.2f}"),
    ("bad-2.0", "bad-2.0 %", True, "{:.2f}"),
    ("bad-4.0", "bad-4.0 %", True, "{:.2f}"),
    ("density", "density %", False, "{:.1f}"),
    ("seconds", "s / pair", True, "{:.3g}"),
    ("peak_mb", "peak MB", True, "{:.0f}"),
)
AGGREGATES = (("kitti", "pixels pooled (KITTI)"), ("middlebury", "mean per image (Middlebury)"))
MAX_BAR_PAIRS = 40


def e(value) -> str:
    """HTML-escaped text (quotes too) of any value: every value taken from results.json goes through this."""
    return html.escape(str(value), quote=True)


def _plain(text) -> str:
    """Text for a matplotlib label, drawn as is (a '$' would start mathtext, and unbalanced ones raise)."""
    return str(text).replace("$", r"\$")


def _num(v) -> float | None:
    if v is None:
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


def _src(rel: str) -> str:
    """An href/src attribute value for a relative path (URL-quoted, then HTML-escaped)."""
    return e(quote(rel.replace(os.sep, "/")))


def _newer(target: Path, *sources: Path) -> bool:
    try:
        t = target.stat().st_mtime
        return all(t >= s.stat().st_mtime for s in sources if s.exists())
    except OSError:
        return False


def _read_mask(path: Path) -> np.ndarray | None:
    if not path.is_file():
        return None
    return read_mask(path)


# ----------------------------------------------------------------------------------------------------------------
# images


def render_pair_images(out: Path, results: dict, dskey: str, pair: str, cmap: str = "kitti") -> dict:
    """Write the coloured GT and, per method, disparity / error / bad-pixel PNGs of one pair.

    Returns {"left": rel, "gt": rel, "methods": {method: {"disp", "err", "bad"}}, "missing": {method: why}} with
    paths relative to `out`; "missing" names the methods whose prediction file is gone or cannot be read.
    """
    ref = ref_dir(out, dskey, pair)
    imgdir = Path("img") / dskey / safe_token(pair)
    left_path = ref / "left.png"
    gt_path = ref / "gt.pfm"
    info: dict = {"left": None, "gt": None, "methods": {}, "missing": {}}
    if not left_path.is_file():
        return info
    info["left"] = str(left_path.relative_to(out))
    left = gt = nonocc = None
    max_gt = None
    if gt_path.is_file():
        gt = read_disparity(gt_path)
        finite = gt[np.isfinite(gt)]
        max_gt = float(finite.max()) if finite.size else None
        target = out / imgdir / "gt.png"
        if not _newer(target, gt_path):
            write_png(target, colorize_disparity(gt, max_gt, cmap))
        info["gt"] = str(imgdir / "gt.png")
        nonocc = _read_mask(ref / "nonocc.png")
        if nonocc is not None:
            info["nonocc"] = str((ref / "nonocc.png").relative_to(out))
    for m in results["methods"]:
        p = pred_path(out, m, dskey, pair)
        if not p.is_file():
            info["missing"][m] = "prediction missing"
            continue
        tok = safe_token(m)
        files = {"disp": imgdir / f"{tok}-disp.png"}
        if gt is not None:
            files["err"] = imgdir / f"{tok}-err.png"
            files["bad"] = imgdir / f"{tok}-bad.png"
        sources = [p, gt_path, ref / "nonocc.png", left_path]
        if not all(_newer(out / f, *sources) for f in files.values()):
            try:
                pred = read_disparity(p)
            except (StereoKitError, OSError, ValueError) as exc:
                info["missing"][m] = f"prediction unreadable: {exc}"
                continue
            write_png(out / files["disp"], colorize_disparity(pred, max_gt, cmap))
            if gt is not None:
                if left is None:
                    left = read_image(left_path)
                write_png(out / files["err"], error_image(pred, gt, nonocc))
                write_png(out / files["bad"], bad_pixel_map(pred, gt, left, nonocc, threshold=2.0))
        info["methods"][m] = {k: str(v) for k, v in files.items()}
    return info


# ----------------------------------------------------------------------------------------------------------------
# plots


def _method_colors(methods: list[str]) -> dict[str, tuple]:
    import matplotlib

    cmap = matplotlib.colormaps["tab20" if len(methods) > 10 else "tab10"]
    return {m: cmap(i % cmap.N) for i, m in enumerate(methods)}


def _agg(doc: dict, key: str, kind: str = "kitti", region: str = "all"):
    if key == "seconds":
        return _num(doc.get("seconds", {}).get("mean"))
    if key == "peak_mb":
        return _num(doc.get("peak_mb", {}).get("max"))
    return _num(doc.get("aggregate", {}).get(kind, {}).get(region, {}).get(key))


def make_plots(out: Path, results: dict) -> list[tuple[str, str]]:
    """Accuracy vs time, cumulative error distribution, per-pair bad-2.0. Returns [(relative path, caption)]."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = list(results["methods"])
    colors = _method_colors(methods)
    datasets = results["settings"]["datasets"]
    plots: list[tuple[str, str]] = []
    pdir = out / "plots"
    try:
        pdir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StereoKitError(f"cannot write the report's plots into {pdir}: {exc.strerror or exc}") from None

    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    plain = FuncFormatter(lambda v, _: f"{v:g}")  # no mathtext: much faster than the default 10^x labels

    def log_axis(ax, base: float) -> None:
        ax.set_xscale("log", base=base)
        ax.xaxis.set_major_locator(LogLocator(base=base))
        ax.xaxis.set_major_formatter(plain)
        ax.xaxis.set_minor_formatter(NullFormatter())

    def save(fig, name: str, caption: str) -> None:
        path = pdir / name
        buf = io.BytesIO()  # encoded in memory, then written atomically under a unique temporary name
        fig.savefig(buf, dpi=100, format="png")
        plt.close(fig)
        atomic_write_bytes(path, buf.getvalue())
        plots.append((f"plots/{name}", caption))

    n = len(datasets)
    # 1. accuracy vs time
    fig, axes = plt.subplots(1, n, figsize=(5.5 * n, 4.2), squeeze=False, layout="constrained")
    for ax, ds in zip(axes[0], datasets):
        for m in methods:
            doc = results["methods"][m]["datasets"].get(ds["key"], {})
            x, y = _agg(doc, "seconds"), _agg(doc, "D1-all")
            if x is None or y is None:
                continue
            ax.scatter([x], [y], color=colors[m], s=40, zorder=3)
            ax.annotate(_plain(m), (x, y), textcoords="offset points", xytext=(4, 3), fontsize=8)
        log_axis(ax, 10)
        ax.set_xlabel("seconds per pair (after warm-up, log)")
        ax.set_ylabel("D1-all % (pixels pooled)")
        ax.set_title(_plain(ds["spec"]), fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
    fig.suptitle("Accuracy vs time (lower left is better)")
    save(fig, "accuracy_vs_time.png", "Accuracy vs time: D1-all against the mean matching time per pair, per dataset.")

    # 2. cumulative error distribution
    ced = results.get("ced", {})
    thresholds = ced.get("thresholds") or []
    fig, axes = plt.subplots(1, n, figsize=(5.5 * n + 1.5, 4.2), squeeze=False, layout="constrained")
    for ax, ds in zip(axes[0], datasets):
        for m in methods:
            curve = ced.get("percent_below", {}).get(m, {}).get(ds["key"])
            if curve:
                ax.plot(thresholds, curve, color=colors[m], label=_plain(m), lw=1.5)
        log_axis(ax, 2)
        ax.set_xlabel("absolute disparity error threshold (px)")
        ax.set_ylabel("% of ground-truth pixels with smaller error")
        ax.set_ylim(0, 100)
        ax.set_title(_plain(ds["spec"]), fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        for t in (1, 2, 3):
            ax.axvline(t, color="0.7", lw=0.8, ls="--")
    handles, labels = axes[0][0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside right center", fontsize=8)
    fig.suptitle("Cumulative error distribution (higher is better; invalid estimates filled)")
    save(fig, "error_distribution.png", "Cumulative error distribution: share of pixels below each error, per method.")

    # 3. per-pair bad-2.0
    n_bars = min(MAX_BAR_PAIRS, max(len(d["pairs"]) for d in datasets)) * len(methods)
    fig, axes = plt.subplots(n, 1, figsize=(min(20.0, max(8.0, 2.5 + 0.12 * n_bars)), 3.4 * n), squeeze=False, layout="constrained")
    for ax, ds in zip(axes[:, 0], datasets):
        pairs = ds["pairs"][:MAX_BAR_PAIRS]
        width = 0.8 / max(1, len(methods))
        xs = np.arange(len(pairs))
        for k, m in enumerate(methods):
            doc = results["methods"][m]["datasets"].get(ds["key"], {})
            vals = [_num(doc.get("pairs", {}).get(p, {}).get("all", {}).get("bad-2.0")) for p in pairs]
            pos = xs + (k - (len(methods) - 1) / 2) * width
            ax.bar(pos, [np.nan if v is None else v for v in vals], width, color=colors[m], label=_plain(m))
            for x, p in zip(pos, pairs):
                if p in doc.get("failures", {}):
                    ax.plot([x], [0], marker="x", color="#b00020", ms=7, mew=2, zorder=4)
        ax.set_xticks(xs)
        ax.set_xticklabels([_plain(p) for p in pairs], rotation=30 if len(pairs) > 4 else 0, ha="right" if len(pairs) > 4 else "center", fontsize=8)
        ax.set_ylabel("bad-2.0 %")
        title = _plain(ds["spec"]) + (f" (first {MAX_BAR_PAIRS} pairs)" if len(ds["pairs"]) > MAX_BAR_PAIRS else "")
        ax.set_title(title, fontsize=10)
        ax.grid(True, axis="y", alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside right center", fontsize=8)
    fig.suptitle("bad-2.0 per pair (lower is better; red x: the run failed)")
    save(fig, "bad2_per_pair.png", "bad-2.0 (share of pixels more than 2 px off) of each pair, per method.")
    return plots


# ----------------------------------------------------------------------------------------------------------------
# HTML

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;max-width:1500px;padding:0 20px 60px;color:#1d1f23;background:#fafafa}
h1{margin:24px 0 4px}h2{margin-top:36px;border-bottom:2px solid #ddd;padding-bottom:4px}h3{margin:22px 0 8px}
.muted{color:#666}.small{font-size:12px}
table{border-collapse:collapse;background:#fff;margin:8px 0}
th,td{border:1px solid #ddd;padding:4px 8px;text-align:right;white-space:nowrap}
th{background:#f0f2f5;position:sticky;top:0}
th.sortable{cursor:pointer;user-select:none}th.sortable:hover{background:#e2e6ec}
th.sorted-asc::after{content:" \\25B2";font-size:10px}th.sorted-desc::after{content:" \\25BC";font-size:10px}
td.name,th.name{text-align:left}
td.best{font-weight:700;background:#d9f2dd}
tr.partial td{color:#8a5a00}tr.failed td{color:#b00020}
.controls{margin:6px 0}.controls label{margin-right:14px}
.plots img{max-width:100%;border:1px solid #ddd;background:#fff;margin:6px 0}
.pair{background:#fff;border:1px solid #ddd;border-radius:6px;padding:10px 14px;margin:14px 0}
.grid{display:grid;grid-template-columns:170px repeat(3,minmax(0,1fr));gap:6px 10px;align-items:start}
.grid img{width:100%;image-rendering:pixelated;border:1px solid #ccc;display:block}
.grid .cap{font-size:12px;color:#555;margin-top:2px}
.grid .head{font-weight:600;color:#333;margin-top:8px}
.figs{font-size:12px;text-align:left}.figs b{font-size:14px}
.err{color:#b00020;font-size:12px;white-space:pre-wrap}
.legend{display:flex;flex-wrap:wrap;gap:2px;align-items:center;font-size:11px;margin:4px 0}
.legend span.sw{display:inline-block;width:46px;height:14px;border:1px solid #999}
.bar{height:14px;width:420px;border:1px solid #999;display:inline-block;vertical-align:middle}
details pre{font-size:11px;background:#f4f4f4;padding:6px;overflow:auto;max-height:300px}
"""

JS = """
function sortTable(th){
  const table=th.closest('table'), tbody=table.tBodies[0], idx=[...th.parentNode.children].indexOf(th);
  const asc=!th.classList.contains('sorted-asc');
  table.querySelectorAll('th').forEach(h=>h.classList.remove('sorted-asc','sorted-desc'));
  th.classList.add(asc?'sorted-asc':'sorted-desc');
  const rows=[...tbody.rows];
  const key=r=>{const c=r.cells[idx];const v=c.dataset.v;
    if(v===undefined)return c.textContent.toLowerCase(); return v===''?null:parseFloat(v);};
  rows.sort((a,b)=>{const x=key(a),y=key(b);
    if(x===null&&y===null)return 0; if(x===null)return 1; if(y===null)return -1;
    return (x<y?-1:x>y?1:0)*(asc?1:-1);});
  rows.forEach(r=>tbody.appendChild(r));
}
function showBoard(ds){
  const kind=document.querySelector('input[name="agg-'+ds+'"]:checked').value;
  const region=document.querySelector('input[name="reg-'+ds+'"]:checked').value;
  document.querySelectorAll('[data-board="'+ds+'"]').forEach(t=>{
    t.style.display=(t.dataset.kind===kind&&t.dataset.region===region)?'':'none';});
}
document.addEventListener('DOMContentLoaded',()=>{
  document.querySelectorAll('th.sortable').forEach(th=>th.addEventListener('click',()=>sortTable(th)));
  document.querySelectorAll('.controls').forEach(c=>{const ds=c.dataset.ds;
    c.querySelectorAll('input').forEach(i=>i.addEventListener('change',()=>showBoard(ds))); showBoard(ds);});
});
"""


def _fmt(v, fmt: str) -> str:
    return "&ndash;" if v is None else e(fmt.format(v))


def _leaderboard(results: dict, ds: dict, kind: str, region: str, idx: int) -> str:
    methods = results["methods"]
    rows = []
    for m, mdoc in methods.items():
        doc = mdoc["datasets"].get(ds["key"], {})
        vals = {key: _agg(doc, key, kind, region) for key, *_ in LEADERBOARD}
        rows.append((m, doc, vals))
    cols = [c for c in LEADERBOARD if c[0] != "D1-fg" or any(r[2]["D1-fg"] is not None for r in rows)]
    # best per column, among methods that scored every pair (a partial aggregate is not comparable)
    is_complete = lambda r: bool(r[1].get("n_ok")) and r[1].get("n_ok") == r[1].get("n_pairs")
    complete = [r for r in rows if is_complete(r)]
    best = {}
    for key, _, lower, _ in cols:
        vals = [r[2][key] for r in complete if r[2][key] is not None]
        if vals:
            best[key] = min(vals) if lower else max(vals)
    # complete methods by D1-all first, then partial ones, then those with nothing scored
    sort_key = lambda r: (not is_complete(r), r[2]["D1-all"] is None, r[2]["D1-all"] or 0.0, r[0])
    head = "".join(
        f'<th class="sortable" title="{"lower" if lower else "higher"} is better">{e(h)}</th>' for _, h, lower, _ in cols
    )
    body = []
    for r in sorted(rows, key=sort_key):
        m, doc, vals = r
        n_ok, n_pairs = doc.get("n_ok", 0), doc.get("n_pairs", 0)
        cls = "failed" if n_ok == 0 else ("partial" if n_ok < n_pairs else "")
        cells = []
        for key, _, _, fmt in cols:
            v = vals[key]
            mark = ' class="best"' if v is not None and key in best and is_complete(r) and math.isclose(v, best[key], rel_tol=1e-12, abs_tol=1e-12) else ""
            cells.append(f'<td{mark} data-v="{"" if v is None else repr(float(v))}">{_fmt(v, fmt)}</td>')
        status = e(f"{n_ok}/{n_pairs}")
        if n_ok < n_pairs:
            status += " &#9888;"
        body.append(
            f'<tr class="{cls}"><td class="name">{e(m)}</td>{"".join(cells)}'
            f'<td data-v="{e(n_ok)}" title="pairs scored / pairs">{status}</td></tr>'
        )
    return (
        f'<table class="board" data-board="{idx}" data-kind="{kind}" data-region="{region}">'
        f'<thead><tr><th class="sortable name">method</th>{head}<th class="sortable">pairs</th></tr></thead>'
        f'<tbody>{"".join(body)}</tbody></table>'
    )


def _disp_legend() -> str:
    stops, acc = [], 0.0
    total = float(KITTI_DISP_WEIGHTS.sum())
    for i, c in enumerate(KITTI_DISP_COLORS):
        r, g, b = (int(v * 255) for v in c)
        stops.append(f"rgb({r},{g},{b}) {100 * acc / total:.1f}%")
        acc += float(KITTI_DISP_WEIGHTS[i])
    return (
        '<div class="legend">disparity (KITTI colours, 0 &rarr; ground-truth maximum; black: invalid): '
        f'<span class="bar" style="background:linear-gradient(to right,{",".join(stops)})"></span></div>'
    )


def _error_legend() -> str:
    items = []
    for lo, hi, (r, g, b) in KITTI_ERROR_COLORS:
        label = f"&ge;{lo:g}" if not math.isfinite(hi) else f"{lo:g}&ndash;{hi:g}"
        items.append(f'<span class="sw" style="background:rgb({r},{g},{b})" title="{label}"></span><span>{label}</span>')
    bad = "rgb({},{},{})".format(*BAD_COLOR)
    occ = "rgb({},{},{})".format(*BAD_OCCLUDED_COLOR)
    return (
        '<div class="legend">KITTI error image, n = min(|e|/3 px, |e|/5&#8239;% of gt) (1 = D1 outlier threshold; '
        'occluded pixels half bright): ' + " ".join(items) + "</div>"
        f'<div class="legend">bad-2.0 map: <span class="sw" style="background:{bad}"></span> |e| &gt; 2 px '
        f'<span class="sw" style="background:{occ}"></span> |e| &gt; 2 px in an occluded region; black: no ground truth</div>'
    )


def _pair_section(out: Path, results: dict, ds: dict, pair: str, missing: list | None = None) -> str:
    """One pair's images and figures; each scored method whose prediction file is gone or unreadable is shown as
    such and appended to `missing` as (method, dataset spec, pair, why)."""
    imgs = render_pair_images(out, results, ds["key"], pair)
    if imgs["left"] is None:
        return ""
    def cell(rel: str | None, alt: str, caption: str = "") -> str:
        if not rel:
            return "<div></div>"
        cap = f'<div class="cap">{e(caption)}</div>' if caption else ""
        return f'<div><a href="{_src(rel)}"><img src="{_src(rel)}" alt="{e(alt)}" loading="lazy"></a>{cap}</div>'

    parts = [f'<div class="pair"><h4>{e(pair)}</h4><div class="grid">']
    parts.append('<div class="figs"><b>input</b></div>')
    parts.append(cell(imgs["left"], "left image", "left image"))
    parts.append(cell(imgs["gt"], "ground truth", "ground truth"))
    parts.append(cell(imgs.get("nonocc"), "non-occluded mask", "non-occluded mask (white)"))
    parts.append('<div></div><div class="cap head">disparity</div><div class="cap head">KITTI error image</div>'
                 '<div class="cap head">bad-2.0 map</div>')
    for m, mdoc in results["methods"].items():
        doc = mdoc["datasets"].get(ds["key"], {})
        pdoc = doc.get("pairs", {}).get(pair)
        fail = doc.get("failures", {}).get(pair)
        if pdoc is None:
            msg = e(fail or "no result")
            parts.append(f'<div class="figs"><b>{e(m)}</b></div><div class="err" style="grid-column:span 3">failed: {msg}</div>')
            continue
        figs = pdoc.get("all", {})
        lines = [f"<b>{e(m)}</b>"]
        for key, unit in (("D1-all", "%"), ("EPE", " px"), ("bad-2.0", "%"), ("density", "%")):
            v = _num(figs.get(key))
            if v is not None:
                lines.append(f"{e(key)} {v:.2f}{unit}")
        s = _num(pdoc.get("seconds"))
        if s is not None:
            lines.append(f"{s:.3g} s, {_num(pdoc.get('peak_mb')) or 0:.0f} MB" + (" (cached)" if pdoc.get("cached") else ""))
        parts.append(f'<div class="figs">{"<br>".join(lines)}</div>')
        why = imgs["missing"].get(m)
        if why is not None:  # scored, but its file was deleted (or damaged) since
            if missing is not None:
                missing.append((m, ds["spec"], pair, why))
            short = why.partition(":")[0]  # "prediction missing" / "prediction unreadable"; the reason as a tooltip
            parts.append(f'<div class="err" title="{e(why)}">{e(short)}</div>' * 3)
            continue
        files = imgs["methods"].get(m, {})
        for kind in ("disp", "err", "bad"):
            parts.append(cell(files.get(kind), f"{m} {kind}"))
    parts.append("</div></div>")
    return "".join(parts)


def _settings_section(results: dict) -> str:
    st = results["settings"]
    rows = []

    def row(k, v):
        rows.append(f'<tr><th class="name">{e(str(k))}</th><td class="name">{e(str(v))}</td></tr>')

    if st.get("command"):
        row("command", st["command"])
    for d in st["datasets"]:
        extra = f", largest ground truth {d['max_gt']:.2f}" if d.get("max_gt") is not None else ""
        row(f"dataset {d['spec']}", f"{len(d['pairs'])} pairs, max_disp {d['max_disp']} (from {d['max_disp_source']}{extra})")
    row("methods", ", ".join(st["methods"]))
    for m, p in st.get("params", {}).items():
        if p:
            row(f"params {m}", ", ".join(f"{k}={v}" for k, v in p.items()))
    for key in ("seed", "executor", "fill", "timing", "memory", "started", "finished", "wall_seconds"):
        if key in st:
            row("wall seconds (matching and scoring)" if key == "wall_seconds" else key, st[key])
    for k, v in st.get("versions", {}).items():
        row(f"version {k}", v if v is not None else "not installed")
    for k, v in st.get("machine", {}).items():
        if v is not None:
            row(f"machine {k}", v)
    warm = []
    for m, mdoc in results["methods"].items():
        w = mdoc.get("warmup")
        if w:
            secs = _num(w.get("seconds"))
            txt = f"{'?' if secs is None else f'{secs:.2f}'} s on a {'x'.join(map(str, w.get('crop') or [])) or '?'} crop"
            if w.get("error"):
                txt += f" (failed: {w['error']})"
            warm.append(f'<tr><td class="name">{e(m)}</td><td class="name">{e(txt)}</td></tr>')
    out = '<h2 id="settings">Run settings</h2><table>' + "".join(rows) + "</table>"
    if warm:
        out += '<h3>Warm-up (JIT compilation, model loading; not in the timings)</h3><table>' + "".join(warm) + "</table>"
    return out


def _failures_section(results: dict) -> str:
    fails = results.get("failures", [])
    if not fails:
        return '<h2 id="failures">Failures</h2><p>None: every matcher ran on every pair.</p>'
    # one row per method and message (a matcher without weights fails the same way on every pair)
    groups: dict[tuple[str, str], list[dict]] = {}
    for f in fails:
        groups.setdefault((str(f.get("method")), str(f.get("message"))), []).append(f)
    rows = []
    for (method, message), items in groups.items():
        by_ds: dict[str, list[str]] = {}
        for f in items:
            by_ds.setdefault(str(f.get("dataset")), []).append(str(f.get("pair")))
        runs = "<br>".join(f"{e(ds)}: {e(', '.join(ps))}" for ds, ps in by_ds.items())
        tb = items[0].get("traceback")
        detail = f"<details><summary>traceback</summary><pre>{e(tb)}</pre></details>" if tb else ""
        rows.append(
            f'<tr class="failed"><td class="name">{e(method)}</td>'
            f'<td class="name" style="white-space:normal">{runs}</td>'
            f'<td class="name" style="white-space:normal"><span class="err">{e(message)}</span>{detail}</td></tr>'
        )
    return (
        f'<h2 id="failures">Failures ({len(fails)} run(s))</h2><p class="muted">A failed run is left out of its '
        "method's aggregate (marked &#9888; in the leaderboard); the rest of the comparison ran. "
        "<code>stereokit compare</code> retries failed runs when started again.</p>"
        '<table><thead><tr><th class="name">method</th><th class="name">dataset: pairs</th>'
        f'<th class="name">message</th></tr></thead><tbody>{"".join(rows)}</tbody></table>'
    )


def build_html(out: Path, results: dict, plots: list[tuple[str, str]]) -> str:
    st = results["settings"]
    n_methods = len(results["methods"])
    n_fail = len(results.get("failures", []))
    parts = [
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">",
        '<meta name="viewport" content="width=device-width,initial-scale=1">',
        "<title>StereoKit comparison</title>",
        f"<style>{CSS}</style><script>{JS}</script></head><body>",
        "<h1>StereoKit comparison</h1>",
        f'<p class="muted">{n_methods} matcher(s) on {len(st["datasets"])} dataset(s): '
        + ", ".join(e(d["spec"]) for d in st["datasets"])
        + f'. Run finished {e(str(st.get("finished", "")))} after {_num(st.get("wall_seconds")) or 0:.1f} s. '
        + (f'<a href="#failures">{n_fail} failed run(s)</a>. ' if n_fail else "")
        + 'Data: <a href="results.json">results.json</a>, <a href="results.csv">results.csv</a>. '
        '<a href="#plots">Plots</a> &middot; <a href="#pairs">Pairs</a> &middot; <a href="#settings">Settings</a></p>',
        '<p class="small muted">All figures from the one StereoKit evaluator: invalid estimates are filled by the KITTI '
        "background interpolation before scoring; D1 = |e| &gt; 3 px and &gt; 5&#8239;% of gt; bad-x = |e| &gt; x px; "
        "density = valid estimates before filling. Seconds: wall time per pair after a warm-up run; peak MB: growth of "
        "the worker's peak resident memory during the run. Click a column to sort; bold green: best value among "
        "methods that scored every pair.</p>",
        "<h2>Leaderboard</h2>",
    ]
    for idx, ds in enumerate(st["datasets"]):
        regions = ["all"]
        if any("noc" in mdoc["datasets"].get(ds["key"], {}).get("aggregate", {}).get("kitti", {}) for mdoc in results["methods"].values()):
            regions.append("noc")
        parts.append(f'<h3>{e(ds["spec"])} <span class="muted small">{len(ds["pairs"])} pairs, max_disp {e(ds["max_disp"])}</span></h3>')
        ctl = [f'<div class="controls" data-ds="{idx}">aggregate: ']
        for k, (kind, text) in enumerate(AGGREGATES):
            ctl.append(f'<label><input type="radio" name="agg-{idx}" value="{kind}"{" checked" if k == 0 else ""}> {e(text)}</label>')
        ctl.append(" region: ")
        for k, region in enumerate(regions):
            text = "all pixels with ground truth" if region == "all" else "non-occluded"
            ctl.append(f'<label><input type="radio" name="reg-{idx}" value="{region}"{" checked" if k == 0 else ""}> {text}</label>')
        ctl.append("</div>")
        parts.append("".join(ctl))
        for kind, _ in AGGREGATES:
            for region in regions:
                parts.append(_leaderboard(results, ds, kind, region, idx))
    parts.append('<h2 id="plots">Plots</h2><div class="plots">')
    for rel, caption in plots:
        parts.append(f'<figure><img src="{_src(rel)}" alt="{e(caption)}"><figcaption class="small muted">{e(caption)}</figcaption></figure>')
    parts.append("</div>")
    parts.append('<h2 id="pairs">Pairs</h2>' + _disp_legend() + _error_legend())
    pairs_at = len(parts)
    missing: list[tuple[str, str, str, str]] = []
    for ds in st["datasets"]:
        shown = [p for p in ds["pairs"] if ref_dir(out, ds["key"], p).is_dir()]
        parts.append(f'<h3>{e(ds["spec"])}</h3>')
        if len(shown) < len(ds["pairs"]):
            parts.append(f'<p class="muted small">Images of the first {len(shown)} of {len(ds["pairs"])} pairs.</p>')
        for p in shown:
            parts.append(_pair_section(out, results, ds, p, missing))
    if missing:
        runs = ", ".join(f"{m} on {spec}/{pair}" for m, spec, pair, _ in missing[:10]) + (", ..." if len(missing) > 10 else "")
        parts.insert(pairs_at, (
            f'<p class="err" id="missing-predictions">{len(missing)} prediction file(s) missing or unreadable under '
            f'pred/, so their images are not shown (their scores are those recorded in results.json): {e(runs)}. '
            "<code>stereokit compare --out DIR</code> with the same settings recomputes them.</p>"
        ))
    parts.append(_failures_section(results))
    parts.append(_settings_section(results))
    parts.append('<p class="small muted">Generated by <code>stereokit compare</code>; rebuild with <code>stereokit report DIR</code>.</p></body></html>')
    return "\n".join(parts)


def build_report(out: str | os.PathLike, results: dict | None = None) -> Path:
    """Write DIR/index.html, its plots and per-pair images from `results` (default: DIR/results.json)."""
    out = Path(out)
    if results is None:
        results = load_results(out)
    else:
        check_results(results, out / "results.json")
    plots = make_plots(out, results)
    text = build_html(out, results, plots)
    path = out / "index.html"
    _write_text_atomic(path, text)
    return path


def cli(args) -> int:
    """`stereokit report DIR`: rebuild DIR/index.html from DIR/results.json and the cached predictions."""
    out = Path(args.dir)
    if not out.is_dir():
        raise StereoKitError(f"report folder not found: {out}")
    path = build_report(out)
    print(f"wrote {path}")
    return 0
