// labkit's run comparison (lk.compare_runs): every run's training loss (smoothed, the raw loss
// faint) and validation loss on one chart, the chosen metric in a second panel, a legend that
// hides and shows runs, hover read-out, log scale and step / time alignment, then the final
// metrics and the configuration fields that differ.
//
// Sent after _common.js (h, bufferOf) and PALETTE by labkit/ui/_base.py. The curves never
// travel as traits: the kernel sends the changed runs as {type: "series", runs: [{index,
// version, n, evals}], reply} with four float32 buffers a run (step, elapsed, loss, smooth;
// NaN for a missing value), each at most ~1,000 points. The `runs` trait carries each run's
// version: a view that holds an older one asks {type: "sync", have: {index: version}}. The
// listener lives in initialize() and feeds one store per model, so nothing is lost while a view
// is built. All text goes through textContent.

const STORES = new Map(); // model key -> CompareStore
const GAP = PALETTE.chart.pad; // px between the frame and the data range, as the static chart
const DOT_R = PALETTE.chart.dot;

// ---------------------------------------------------------------------------------------------
// Store: each run's curve as the kernel last sent it.

class CompareStore {
  constructor() {
    this.model = null;
    this.curves = new Map(); // index -> {version, n, step, elapsed, loss, smooth, evals}
    this.listeners = new Set();
    this.pending = false;
    this.timer = null;
    this.backoff = 2000;
  }

  attach(model) {
    this.model = model;
    model.on("msg:custom", (msg, buffers) => this.receive(msg, buffers || []));
    model.on("change:runs", () => { this.check(); this.notify(); });
    this.check();
  }

  detach() { clearTimeout(this.timer); this.model = null; }

  stale() {
    const runs = (this.model && this.model.get("runs")) || [];
    return runs.some((r, i) => (this.curves.get(i) || { version: -1 }).version !== r.version);
  }

  check() { if (this.stale()) this.sync(); }

  sync() {
    if (this.pending || !this.model) return;
    this.pending = true;
    const have = {};
    for (const [i, c] of this.curves) have[String(i)] = c.version;
    this.model.send({ type: "sync", have });
    clearTimeout(this.timer);
    this.timer = setTimeout(() => { // no answer (kernel busy or gone): ask again, less often
      this.pending = false;
      this.backoff = Math.min(this.backoff * 2, 30000);
      this.check();
    }, this.backoff);
  }

  receive(msg, buffers) {
    if (!msg || msg.type !== "series") return;
    if (msg.reply) { this.pending = false; clearTimeout(this.timer); this.backoff = 2000; }
    (msg.runs || []).forEach((r, k) => {
      const held = this.curves.get(r.index);
      if (held && held.version >= r.version) return; // an older message overtaken
      const col = (j) => new Float32Array(bufferOf(buffers[4 * k + j]));
      this.curves.set(r.index, { version: r.version, n: r.n, step: col(0), elapsed: col(1),
        loss: col(2), smooth: col(3), evals: r.evals || [] });
    });
    this.notify();
    if (!this.pending) this.check();
  }

  notify() { for (const fn of this.listeners) fn(); }
}

function storeFor(model) {
  const key = model.get("_key") || "default";
  let store = STORES.get(key);
  if (!store) { store = new CompareStore(); STORES.set(key, store); }
  if (!store.model) store.attach(model);
  return store;
}

// ---------------------------------------------------------------------------------------------
// One chart: lines and points of several runs against a shared x.

// `xSpan` ([x0, x1], optional): an x range to cover whatever the data spans (the metric panel
// takes the loss panel's, so the two line up step for step)
function drawChart(svgEl, { W, H, lines, points, xLabel, yLabel, logY, empty, xSpan }) {
  svgEl.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svgEl.setAttribute("width", W);
  svgEl.setAttribute("height", H);
  svgEl.replaceChildren();
  const ok = (v) => Number.isFinite(v) && (!logY || v > 0);
  let x0 = Infinity, x1 = -Infinity, lo = Infinity, hi = -Infinity;
  const take = (xs, ys, n) => {
    for (let i = 0; i < n; i++) {
      const x = xs[i], y = ys[i];
      if (!Number.isFinite(x) || !ok(y)) continue;
      if (x < x0) x0 = x; if (x > x1) x1 = x; if (y < lo) lo = y; if (y > hi) hi = y;
    }
  };
  for (const s of lines) take(s.xs, s.ys, s.n);
  for (const s of points) take(s.xs, s.ys, s.xs.length);
  if (!(x0 <= x1)) {
    const t = svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "labkit-cmp-empty" });
    t.textContent = empty;
    svgEl.appendChild(t);
    return null;
  }
  if (xSpan) { x0 = Math.min(x0, xSpan[0]); x1 = Math.max(x1, xSpan[1]); }
  if (x1 === x0) x1 = x0 + 1;
  const L = 56, R = 16, T = 10, B = 32, pw = W - L - R, ph = H - T - B;
  let yTicks;
  ({ lo, hi, ticks: yTicks } = yAxis(lo, hi, logY));
  const ly = logY ? Math.log10 : (v) => v;
  const ylo = ly(lo), yhi = ly(hi) === ly(lo) ? ly(lo) + 1 : ly(hi);
  const sx = (v) => L + GAP + ((v - x0) / (x1 - x0)) * (pw - 2 * GAP);
  const sy = (v) => T + ph - GAP - ((ly(v) - ylo) / (yhi - ylo)) * (ph - 2 * GAP);
  const grid = svg("g", { class: "labkit-cmp-grid" }), axes = svg("g", { class: "labkit-cmp-axes" });
  const label = (x, y, text, anchor, extra) => {
    const t = svg("text", { x, y, "text-anchor": anchor, ...(extra || {}) });
    t.textContent = text;
    axes.appendChild(t);
  };
  for (const t of yTicks) {
    const y = sy(t);
    grid.appendChild(svg("line", { x1: L, x2: L + pw, y1: y, y2: y }));
    label(L - 6, y + 4, fmt(t), "end");
  }
  for (const t of niceTicks(x0, x1, Math.max(2, Math.floor(pw / 90)))) {
    if (t < x0 || t > x1) continue;
    const x = sx(t);
    axes.appendChild(svg("line", { x1: x, x2: x, y1: T + ph, y2: T + ph + 4 }));
    label(x, T + ph + 16, fmt(t), "middle");
  }
  label(L + pw / 2, H - 2, xLabel, "middle");
  const side = svg("text", { transform: `translate(12 ${T + ph / 2}) rotate(-90)`, "text-anchor": "middle" });
  side.textContent = yLabel;
  axes.appendChild(side);
  axes.appendChild(svg("rect", { x: L, y: T, width: pw, height: ph, class: "labkit-cmp-frame" }));
  const clipId = `labkit-cmp-clip-${Math.random().toString(36).slice(2)}`;
  const defs = svg("defs"), cp = svg("clipPath", { id: clipId });
  cp.appendChild(svg("rect", { x: L, y: T, width: pw, height: ph }));
  defs.appendChild(cp);
  const body = svg("g", { "clip-path": `url(#${clipId})` });
  for (const s of lines) {
    const parts = [];
    let pen = "M";
    for (let i = 0; i < s.n; i++) {
      const x = s.xs[i], y = s.ys[i];
      if (!Number.isFinite(x) || !ok(y)) { pen = "M"; continue; }
      parts.push(`${pen}${sx(x).toFixed(1)} ${sy(y).toFixed(1)}`);
      pen = "L";
    }
    body.appendChild(svg("path", { d: parts.join(""), class: s.cls, stroke: s.color, "data-run": s.run }));
  }
  for (const s of points) {
    for (let i = 0; i < s.xs.length; i++) {
      if (!Number.isFinite(s.xs[i]) || !ok(s.ys[i])) continue;
      body.appendChild(svg("circle", { cx: sx(s.xs[i]), cy: sy(s.ys[i]), r: DOT_R, fill: s.color,
        class: s.cls, "data-run": s.run }));
    }
  }
  const cursor = svg("line", { y1: T, y2: T + ph, class: "labkit-cmp-cursor", visibility: "hidden" });
  svgEl.append(grid, axes, defs, body, cursor);
  return { L, pw, x0, x1, sx, cursor, W };
}

// ---------------------------------------------------------------------------------------------

function tableOf(spec, colors) {
  const table = h("table", "labkit-cmp-table");
  const head = h("tr");
  for (const c of spec.columns || []) head.appendChild(h("th", "", c));
  const thead = h("thead"); thead.appendChild(head);
  const tbody = h("tbody");
  (spec.rows || []).forEach((row, r) => {
    const tr = h("tr");
    row.forEach((cell, k) => {
      const td = h("td");
      if (k === 0 && colors) {
        const sw = h("i", "labkit-cmp-swatch");
        sw.style.background = colors[r] || "#777";
        td.appendChild(sw);
      }
      td.appendChild(document.createTextNode(String(cell)));
      tr.appendChild(td);
    });
    tbody.appendChild(tr);
  });
  table.append(thead, tbody);
  return table;
}

class CompareView {
  constructor(model, store, root) {
    this.model = model;
    this.store = store;
    this.frame = 0;
    this.root = root;
    const bar = h("div", "labkit-cmp-toolbar");
    this.xSel = h("select", "labkit-cmp-x");
    for (const [v, text] of [["step", "by step"], ["time", "by time"]]) {
      const o = h("option", "", text); o.value = v; this.xSel.appendChild(o);
    }
    this.xSel.addEventListener("change", () => { model.set("x_axis", this.xSel.value); model.save_changes(); });
    const log = h("label", "labkit-cmp-field");
    this.log = h("input"); this.log.type = "checkbox";
    this.log.addEventListener("change", () => { model.set("log_scale", this.log.checked); model.save_changes(); });
    log.append(this.log, document.createTextNode(" log scale"));
    this.metricSel = h("select", "labkit-cmp-metric");
    this.metricSel.addEventListener("change", () => { model.set("metric", this.metricSel.value); model.save_changes(); });
    this.liveNote = h("span", "labkit-cmp-live");
    bar.append(this.xSel, log, h("span", "", "metric "), this.metricSel, this.liveNote);
    this.legend = h("div", "labkit-cmp-legend");
    this.plot = h("div", "labkit-cmp-plot");
    this.svg = svg("svg", { class: "labkit-cmp-svg", role: "img", "aria-label": "loss of each run" });
    this.readout = h("div", "labkit-cmp-readout"); this.readout.hidden = true;
    this.plot.append(this.svg, this.readout);
    this.msvg = svg("svg", { class: "labkit-cmp-svg labkit-cmp-metric-svg", role: "img" });
    this.finals = h("div", "labkit-cmp-finals");
    this.config = h("div", "labkit-cmp-config");
    root.append(bar, this.legend, this.plot, this.msvg, this.finals, this.config);
    this.onStore = () => this.schedule();
    store.listeners.add(this.onStore);
    this.off = [];
    for (const n of ["runs", "metric", "metric_names", "x_axis", "log_scale", "hidden", "finals", "config", "live"]) {
      const fn = () => this.schedule();
      model.on(`change:${n}`, fn);
      this.off.push([`change:${n}`, fn]);
    }
    this.svg.addEventListener("mousemove", (e) => this.hover(e));
    this.svg.addEventListener("mouseleave", () => this.hover(null));
    if (typeof ResizeObserver !== "undefined") {
      this.resize = new ResizeObserver(() => this.schedule());
      this.resize.observe(this.plot);
    }
    this.draw();
  }

  schedule() {
    if (this.frame) return;
    const run = () => { this.frame = 0; this.draw(); };
    this.frame = document.hidden ? setTimeout(run, 100) : requestAnimationFrame(run);
  }

  destroy() {
    this.store.listeners.delete(this.onStore);
    for (const [ev, fn] of this.off) this.model.off(ev, fn);
    if (this.resize) this.resize.disconnect();
    cancelAnimationFrame(this.frame); clearTimeout(this.frame);
  }

  visible() {
    const hidden = new Set(this.model.get("hidden") || []);
    return (this.model.get("runs") || []).map((r, i) => ({ ...r, i })).filter((r) => !hidden.has(r.i));
  }

  draw() {
    const m = this.model, runs = m.get("runs") || [], axis = m.get("x_axis") === "time" ? "time" : "step";
    const metric = m.get("metric") || "", logY = !!m.get("log_scale");
    this.xSel.value = axis;
    this.log.checked = logY;
    const names = m.get("metric_names") || [];
    const key = names.join("\n") + "|" + metric;
    if (key !== this.metricKey) {
      this.metricKey = key;
      const opts = ["", ...names];
      this.metricSel.replaceChildren(...opts.map((n) => { const o = h("option", "", n || "none"); o.value = n; return o; }));
      this.metricSel.value = metric;
    }
    this.liveNote.textContent = m.get("live") ? "live: updates about once a second" : "";
    this.drawLegend(runs);
    const W = Math.max(320, this.plot.clientWidth || 720);
    const xLabel = axis === "time" ? "seconds since the run began" : "step";
    const lines = [], points = [], mLines = [], mPoints = [];
    this.shown = [];
    for (const r of this.visible()) {
      const c = this.store.curves.get(r.i);
      if (!c) continue;
      const xs = axis === "time" ? c.elapsed : c.step;
      lines.push({ xs, ys: c.loss, n: c.n, color: r.color, cls: "labkit-cmp-raw", run: r.i });
      lines.push({ xs, ys: c.smooth, n: c.n, color: r.color, cls: "labkit-cmp-smooth", run: r.i });
      const ex = c.evals.map((e) => (axis === "time" ? (e[1] ?? NaN) : e[0]));
      points.push({ xs: ex, ys: c.evals.map((e) => (e[2] || {}).loss ?? NaN), color: r.color, cls: "labkit-cmp-val", run: r.i });
      if (metric) {
        const ys = c.evals.map((e) => (e[2] || {})[metric] ?? NaN);
        const mx = Float64Array.from(ex), my = Float64Array.from(ys);
        mLines.push({ xs: mx, ys: my, n: mx.length, color: r.color, cls: "labkit-cmp-mline", run: r.i });
        mPoints.push({ xs: ex, ys, color: r.color, cls: "labkit-cmp-mpoint", run: r.i });
      }
      this.shown.push({ r, c, xs, ex });
    }
    const waiting = runs.length && runs.every((r) => !r.steps) ? "no steps yet" : "no data to show";
    this.readout.hidden = true; // the read-out of the chart drawn before, gone with it
    this.geom = drawChart(this.svg, { W, H: 280, lines, points, xLabel,
      yLabel: logY ? "loss (log)" : "loss", logY, empty: waiting });
    this.svg.dataset.runs = String(this.shown.length);
    this.svg.dataset.points = String(this.shown.reduce((a, s) => a + s.c.n, 0));
    this.msvg.style.display = metric ? "" : "none";
    const xSpan = this.geom ? [this.geom.x0, this.geom.x1] : null;
    if (metric) drawChart(this.msvg, { W, H: 180, lines: mLines, points: mPoints, xLabel, xSpan,
      yLabel: `val ${metric}`, logY: false, empty: `no run has evaluated ${metric} yet` });
    const colors = runs.map((r) => r.color);
    const finals = m.get("finals") || {};
    this.finals.replaceChildren(h("div", "labkit-cmp-caption", "final metrics (last evaluation)"), tableOf(finals, colors));
    const config = m.get("config") || {};
    const parts = [h("div", "labkit-cmp-caption", config.note || "")];
    if ((config.rows || []).length) parts.push(tableOf(config));
    this.config.replaceChildren(...parts);
  }

  drawLegend(runs) {
    const hidden = new Set(this.model.get("hidden") || []);
    this.legend.replaceChildren(...runs.map((r, i) => {
      const item = h("button", "labkit-cmp-key");
      item.type = "button";
      item.dataset.run = String(i);
      item.setAttribute("aria-pressed", String(!hidden.has(i)));
      if (hidden.has(i)) item.classList.add("labkit-cmp-off");
      const sw = h("i"); sw.style.background = r.color;
      item.append(sw, h("span", "labkit-cmp-name", r.label));
      if (!r.steps) item.appendChild(h("span", "labkit-cmp-nosteps", "no steps yet"));
      const badge = h("span", "labkit-cmp-status", r.status_label || r.status);
      badge.style.color = PALETTE.status[r.status] || "#777";
      item.appendChild(badge);
      item.title = hidden.has(i) ? "show this run" : "hide this run";
      item.addEventListener("click", () => {
        const now = new Set(this.model.get("hidden") || []);
        if (now.has(i)) now.delete(i); else now.add(i);
        this.model.set("hidden", [...now].sort((a, b) => a - b));
        this.model.save_changes();
      });
      return item;
    }));
  }

  hover(e) {
    const g = this.geom;
    if (!e || !g || !this.shown.length) { this.readout.hidden = true; if (g) g.cursor.setAttribute("visibility", "hidden"); return; }
    const rect = this.svg.getBoundingClientRect();
    const px = ((e.clientX - rect.left) / rect.width) * g.W;
    if (px < g.L || px > g.L + g.pw) { this.hover(null); return; }
    const x = g.x0 + ((px - g.L - GAP) / (g.pw - 2 * GAP)) * (g.x1 - g.x0);
    const axis = this.model.get("x_axis") === "time" ? "time" : "step";
    const metric = this.model.get("metric") || "";
    const lines = [axis === "time" ? `${duration(x)} since the start` : `step ${Math.round(x).toLocaleString()}`];
    for (const { r, c, xs, ex } of this.shown) {
      let best = -1;
      for (let i = 0; i < c.n; i++) {
        if (Number.isFinite(xs[i]) && (best < 0 || Math.abs(xs[i] - x) < Math.abs(xs[best] - x))) best = i;
      }
      if (best < 0) continue;
      let text = `${r.label}: loss ${fmt(c.loss[best])} · smoothed ${fmt(c.smooth[best])}`;
      let ev = -1;
      for (let k = 0; k < ex.length; k++) if (Number.isFinite(ex[k]) && ex[k] <= x) ev = k;
      if (ev >= 0) {
        const mt = c.evals[ev][2] || {};
        text += ` · val loss ${fmt(mt.loss)}`;
        if (metric) text += ` · ${metric} ${fmt(mt[metric])}`;
      }
      const row = h("div", "labkit-cmp-row");
      const sw = h("i", "labkit-cmp-swatch"); sw.style.background = r.color;
      row.append(sw, document.createTextNode(text));
      lines.push(row);
    }
    this.readout.replaceChildren(...lines.map((t) => (typeof t === "string" ? h("div", "", t) : t)));
    this.readout.hidden = false;
    const cx = g.sx(x);
    g.cursor.setAttribute("x1", cx); g.cursor.setAttribute("x2", cx);
    g.cursor.setAttribute("visibility", "visible");
    const width = this.readout.offsetWidth;
    const left = cx + 12 + width > rect.width ? cx - 12 - width : cx + 12;
    this.readout.style.left = `${Math.max(0, left)}px`;
    this.readout.style.top = "8px";
  }
}

export default {
  initialize({ model }) {
    const store = storeFor(model);
    const key = model.get("_key") || "default";
    return () => { store.detach(); STORES.delete(key); };
  },

  render({ model, el: host }) {
    const store = storeFor(model);
    const root = h("div", "labkit-cmp");
    host.appendChild(root);
    const view = new CompareView(model, store, root);
    return () => { view.destroy(); root.remove(); };
  },
};
