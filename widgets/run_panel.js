// labkit's live training panel and loss chart (RunPanel and LossChart share this module).
//
// anywidget loads the module from a blob: URL, where relative imports do not resolve, so the
// helpers it shares with the other widgets (h, bufferOf) come from _common.js, which
// labkit/ui/_base.py joins ahead of this text. Points never travel as a trait: the kernel
// streams them as small custom messages
// ({type: "rows", start, n, cols, evals_start, evals, samples_start, samples} + one binary buffer
// per column). Every message carries its start indices, so this side keeps what is new, drops what
// it holds, and asks ({type: "sync", have, have_evals, have_samples}) when it sees a gap. A causal
// LM's sample generations ([step, prompts, texts, answer], cut for display by the kernel) travel
// the same way as the evaluations. The listener lives in initialize() and
// feeds one store per model, so no message is lost while a view is being built, and a second view
// of the same model in the page draws at once. All text goes through textContent.

const COLORS = PALETTE.chart; // the static chart's colours and geometry (labkit.render)
const STORES = new Map(); // model key -> Store
const DOT = COLORS.dot; // a validation marker's radius (the metric's square is 2 * DOT wide)
// px between the plot's frame and its data range, so a marker at the last step or at an axis end
// is drawn whole inside the frame's clip: labkit.render.svgchart's PAD, as the static chart
const PAD = COLORS.pad;

function lowerBound(arr, n, x) {
  let lo = 0, hi = n;
  while (lo < hi) { const mid = (lo + hi) >> 1; if (arr[mid] < x) lo = mid + 1; else hi = mid; }
  return lo;
}

// ---------------------------------------------------------------------------------------------
// Store: the points of one model in this page, fed by custom messages.

const TYPES = { step: Float64Array, epoch: Float32Array, loss: Float32Array, lr: Float32Array,
  ema: Float32Array };

class Store {
  constructor() {
    this.model = null;
    this.n = 0;
    this.cap = 0;
    this.cols = {};
    for (const [k, T] of Object.entries(TYPES)) this.cols[k] = new T(0);
    this.evals = []; // [step, {metric: value}]
    this.samples = []; // [step, [prompt], [text], first text on one line]
    this.metricNames = [];
    this.listeners = new Set();
    this.pending = false;
    this.timer = null;
    this.backoff = 2000;
    this.acc = 0; this.weight = 0; // EMA state after the last row
    this.smoothing = 0.6;
  }

  attach(model) {
    this.model = model;
    this.smoothing = model.get("smoothing") ?? 0.6;
    model.on("msg:custom", (msg, buffers) => this.receive(msg, buffers || []));
    model.on("change:rows", () => this.check());
    model.on("change:n_evals", () => this.check());
    model.on("change:n_samples", () => this.check());
    model.on("change:smoothing", () => { this.smoothing = model.get("smoothing"); this.recomputeEma(); this.notify(); });
    this.sync();
  }

  detach() {
    clearTimeout(this.timer);
    this.model = null;
  }

  sync() {
    if (this.pending || !this.model) return;
    this.pending = true;
    const msg = { type: "sync", have: this.n, have_evals: this.evals.length };
    if (this.samples.length) msg.have_samples = this.samples.length; // absent: none held
    this.model.send(msg);
    clearTimeout(this.timer);
    this.timer = setTimeout(() => { // no answer (kernel busy or gone): ask again, less often
      this.pending = false;
      this.backoff = Math.min(this.backoff * 2, 30000);
      this.check();
    }, this.backoff);
  }

  check() {
    if (!this.model) return;
    const m = this.model;
    if (this.n < (m.get("rows") || 0) || this.evals.length < (m.get("n_evals") || 0) ||
      this.samples.length < (m.get("n_samples") || 0)) this.sync();
  }

  grow(need) {
    if (need <= this.cap) return;
    const cap = Math.max(need, this.cap * 2, 1024);
    for (const [k, T] of Object.entries(TYPES)) {
      const next = new T(cap);
      next.set(this.cols[k].subarray(0, this.n));
      this.cols[k] = next;
    }
    this.cap = cap;
  }

  receive(msg, buffers) {
    if (!msg || msg.type !== "rows") return;
    if (msg.reply) { this.pending = false; clearTimeout(this.timer); this.backoff = 2000; }
    let gap = false;
    if (msg.start > this.n) gap = true;
    else if (msg.start + msg.n > this.n) this.appendRows(msg, buffers);
    if (msg.evals_start > this.evals.length) gap = true;
    else if (msg.evals_start + msg.evals.length > this.evals.length) {
      for (const ev of msg.evals.slice(this.evals.length - msg.evals_start)) {
        this.evals.push(ev);
        for (const k of Object.keys(ev[1] || {})) {
          if (k !== "loss" && !this.metricNames.includes(k)) this.metricNames.push(k);
        }
      }
    }
    const samples = msg.samples || [], sStart = msg.samples_start || 0;
    if (sStart > this.samples.length) gap = true;
    else if (sStart + samples.length > this.samples.length) {
      this.samples.push(...samples.slice(this.samples.length - sStart));
    }
    if (gap) this.sync();
    this.notify();
  }

  appendRows(msg, buffers) {
    const skip = this.n - msg.start, count = msg.n - skip;
    this.grow(this.n + count);
    msg.cols.forEach((name, i) => {
      if (!(name in TYPES) || !buffers[i]) return;
      const src = new TYPES[name](bufferOf(buffers[i]));
      this.cols[name].set(src.subarray(skip, msg.n), this.n);
    });
    this.extendEma(this.n, this.n + count);
    this.n += count;
  }

  extendEma(from, to) {
    const s = this.smoothing, loss = this.cols.loss, ema = this.cols.ema;
    for (let i = from; i < to; i++) {
      const v = loss[i];
      if (!Number.isFinite(v)) { ema[i] = NaN; continue; }
      this.acc = s * this.acc + (1 - s) * v;
      this.weight = s * this.weight + (1 - s);
      ema[i] = this.acc / this.weight;
    }
  }

  recomputeEma() {
    this.acc = 0; this.weight = 0;
    this.extendEma(0, this.n);
  }

  notify() { for (const fn of this.listeners) fn(); }
}

function storeFor(model) {
  const key = model.get("_key") || "default";
  let store = STORES.get(key);
  if (!store) { store = new Store(); STORES.set(key, store); }
  if (!store.model) store.attach(model);
  return store;
}

// ---------------------------------------------------------------------------------------------
// Chart view

const WINDOWS = [[0, "all steps"], [100, "last 100"], [1000, "last 1,000"], [10000, "last 10,000"]];

class ChartView {
  constructor(model, store, root) {
    this.model = model;
    this.store = store;
    this.frame = 0;
    this.el = h("div", "labkit-chart");
    root.appendChild(this.el);
    this.buildToolbar();
    this.plot = h("div", "labkit-plot");
    this.el.appendChild(this.plot);
    this.svg = svg("svg", { class: "labkit-svg", role: "img", "aria-label": "training loss" });
    this.plot.appendChild(this.svg);
    this.readout = h("div", "labkit-readout");
    this.readout.hidden = true;
    this.plot.appendChild(this.readout);
    this.legend = h("div", "labkit-legend");
    this.el.appendChild(this.legend);
    this.onStore = () => this.schedule();
    store.listeners.add(this.onStore);
    for (const name of ["log_scale", "window", "metric", "smoothing"]) {
      model.on(`change:${name}`, () => { this.syncToolbar(); this.schedule(); });
    }
    this.svg.addEventListener("mousemove", (e) => this.hover(e));
    this.svg.addEventListener("mouseleave", () => this.hover(null));
    if (typeof ResizeObserver !== "undefined") {
      this.resize = new ResizeObserver(() => this.schedule());
      this.resize.observe(this.plot);
    }
    this.syncToolbar();
    this.schedule();
  }

  buildToolbar() {
    const m = this.model, bar = h("div", "labkit-toolbar");
    const smooth = h("label", "labkit-field", "smoothing ");
    this.smooth = h("input");
    Object.assign(this.smooth, { type: "range", min: "0", max: "0.99", step: "0.01" });
    this.smoothValue = h("span", "labkit-value");
    this.smooth.addEventListener("input", () => { this.smoothValue.textContent = Number(this.smooth.value).toFixed(2); });
    this.smooth.addEventListener("change", () => { m.set("smoothing", Number(this.smooth.value)); m.save_changes(); });
    smooth.append(this.smooth, this.smoothValue);
    const log = h("label", "labkit-field");
    this.log = h("input");
    this.log.type = "checkbox";
    this.log.addEventListener("change", () => { m.set("log_scale", this.log.checked); m.save_changes(); });
    log.append(this.log, document.createTextNode(" log scale"));
    this.window = h("select", "labkit-window");
    this.window.addEventListener("change", () => { m.set("window", Number(this.window.value)); m.save_changes(); });
    this.metric = h("select", "labkit-metric");
    this.metric.addEventListener("change", () => { m.set("metric", this.metric.value); m.save_changes(); });
    bar.append(smooth, log, h("span", "labkit-field", "show "), this.window, h("span", "labkit-field", "metric "), this.metric);
    this.el.appendChild(bar);
  }

  syncToolbar() {
    const m = this.model;
    this.smooth.value = String(m.get("smoothing"));
    this.smoothValue.textContent = Number(m.get("smoothing")).toFixed(2);
    this.log.checked = !!m.get("log_scale");
    const win = m.get("window") || 0;
    const wins = WINDOWS.some(([w]) => w === win) ? WINDOWS : [...WINDOWS, [win, `last ${win}`]];
    this.window.replaceChildren(...wins.map(([w, label]) => { const o = h("option", "", label); o.value = String(w); return o; }));
    this.window.value = String(win);
    this.syncMetrics();
  }

  syncMetrics() {
    const names = this.store.metricNames;
    const key = names.join("\n") + "|" + this.model.get("metric");
    if (key === this.metricKey) return;
    this.metricKey = key;
    const chosen = this.model.get("metric");
    const opts = chosen && !names.includes(chosen) ? [...names, chosen] : names;
    this.metric.replaceChildren(...["", ...opts].map((n) => { const o = h("option", "", n || "auto"); o.value = n; return o; }));
    this.metric.value = chosen;
  }

  chosenMetric() {
    const wanted = this.model.get("metric"), names = this.store.metricNames;
    if (wanted) return wanted;
    return names.includes("accuracy") ? "accuracy" : names[0] || "";
  }

  schedule() {
    if (this.frame) return;
    const run = () => { this.frame = 0; this.draw(); };
    this.frame = document.hidden ? setTimeout(run, 100) : requestAnimationFrame(run);
  }

  destroy() {
    this.store.listeners.delete(this.onStore);
    if (this.resize) this.resize.disconnect();
    cancelAnimationFrame(this.frame); clearTimeout(this.frame);
    this.el.remove();
  }

  draw() {
    this.syncMetrics();
    const st = this.store, n = st.n, m = this.model;
    const W = Math.max(280, this.plot.clientWidth || 640), H = 260;
    const metric = this.chosenMetric();
    const logY = !!m.get("log_scale");
    const L = 56, R = metric ? 56 : 16, T = 12, B = 30, pw = W - L - R, ph = H - T - B;
    this.svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
    this.svg.setAttribute("width", W);
    this.svg.setAttribute("height", H);
    this.svg.dataset.points = String(n);
    this.svg.dataset.evals = String(st.evals.length);
    this.svg.replaceChildren();
    this.geom = null;
    if (n === 0 && st.evals.length === 0) {
      const t = svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "labkit-empty" });
      t.textContent = "waiting for the first training step…";
      this.svg.appendChild(t);
      this.drawLegend("");
      return;
    }
    const step = st.cols.step, loss = st.cols.loss, ema = st.cols.ema;
    const evSteps = st.evals.map((e) => e[0]);
    let x1 = n ? step[n - 1] : Math.max(...evSteps);
    let x0 = n ? step[0] : Math.min(...evSteps);
    const win = m.get("window") || 0;
    if (win > 0) x0 = Math.max(x0, x1 - win);
    if (x1 <= x0) x1 = x0 + 1;
    const i0 = lowerBound(step, n, x0);
    const ok = (v) => Number.isFinite(v) && (!logY || v > 0);
    let lo = Infinity, hi = -Infinity;
    for (let i = i0; i < n; i++) { const v = loss[i]; if (ok(v)) { if (v < lo) lo = v; if (v > hi) hi = v; } }
    const visibleEvals = st.evals.filter((e) => e[0] >= x0 && e[0] <= x1);
    for (const [, mt] of visibleEvals) { const v = mt && mt.loss; if (ok(v)) { lo = Math.min(lo, v); hi = Math.max(hi, v); } }
    if (!(lo <= hi)) { lo = logY ? 0.1 : 0; hi = 1; }
    let yTicks;
    ({ lo, hi, ticks: yTicks } = yAxis(lo, hi, logY));
    const ly = logY ? Math.log10 : (v) => v;
    const [ylo, yhi] = [ly(lo), ly(hi) === ly(lo) ? ly(lo) + 1 : ly(hi)];
    const sx = (v) => L + PAD + ((v - x0) / (x1 - x0)) * (pw - 2 * PAD);
    const sy = (v) => T + ph - PAD - ((ly(v) - ylo) / (yhi - ylo)) * (ph - 2 * PAD);
    // second axis: the chosen metric
    const mvals = metric ? visibleEvals.map((e) => e[1] && e[1][metric]).filter(Number.isFinite) : [];
    let m0 = 0, m1 = 1, mTicks = [];
    if (mvals.length) {
      m0 = Math.min(...mvals); m1 = Math.max(...mvals);
      if (m0 >= 0 && m1 <= 1) { m0 = 0; m1 = 1; mTicks = [0, 0.25, 0.5, 0.75, 1]; }
      else { mTicks = niceTicks(m0, m1); m0 = Math.min(m0, mTicks[0]); m1 = Math.max(m1, mTicks[mTicks.length - 1]); }
    }
    const sm = (v) => T + ph - PAD - ((v - m0) / (m1 - m0 || 1)) * (ph - 2 * PAD);

    const grid = svg("g", { class: "labkit-grid" });
    const axes = svg("g", { class: "labkit-axes" });
    const label = (x, y, text, anchor) => {
      const t = svg("text", { x, y, "text-anchor": anchor });
      t.textContent = text;
      axes.appendChild(t);
    };
    for (const t of yTicks) {
      const y = sy(t);
      grid.appendChild(svg("line", { x1: L, x2: L + pw, y1: y, y2: y }));
      label(L - 6, y + 4, fmt(t), "end");
    }
    for (const t of niceTicks(x0, x1, Math.max(2, Math.floor(pw / 90)), true)) {
      if (t < x0 || t > x1) continue;
      const x = sx(t);
      axes.appendChild(svg("line", { x1: x, x2: x, y1: T + ph, y2: T + ph + 4 }));
      label(x, T + ph + 16, fmt(t), "middle");
    }
    if (metric && mvals.length) for (const t of mTicks) label(L + pw + 6, sm(t) + 4, fmt(t), "start");
    label(L + pw / 2, H - 2, "step", "middle");
    const side = (x, text, angle) => {
      const t = svg("text", { transform: `translate(${x} ${T + ph / 2}) rotate(${angle})`, "text-anchor": "middle" });
      t.textContent = text;
      axes.appendChild(t);
    };
    side(12, logY ? "loss (log)" : "loss", -90);
    if (metric && mvals.length) side(W - 6, metric, 90);
    axes.appendChild(svg("rect", { x: L, y: T, width: pw, height: ph, class: "labkit-frame" }));
    this.svg.append(grid, axes);

    // lines: all points when sparse, else min/max (raw) or last value (smoothed) per pixel
    const dense = n - i0 > pw * 2;
    const path = (col, envelope) => {
      const parts = [];
      let pen = "M", px = -1, mn = 0, mx = 0, last = NaN, have = false;
      const flush = () => {
        if (!have) return;
        if (envelope) { parts.push(`${pen}${px} ${sy(mx).toFixed(1)}L${px} ${sy(mn).toFixed(1)}`); }
        else parts.push(`${pen}${px} ${sy(last).toFixed(1)}`);
        pen = "L"; have = false;
      };
      for (let i = i0; i < n; i++) {
        const v = col[i];
        if (!ok(v)) { flush(); pen = "M"; continue; }
        if (!dense) { parts.push(`${pen}${sx(step[i]).toFixed(1)} ${sy(v).toFixed(1)}`); pen = "L"; continue; }
        const p = Math.round(sx(step[i]));
        if (p !== px) { flush(); px = p; mn = mx = v; }
        else { if (v < mn) mn = v; if (v > mx) mx = v; }
        last = v; have = true;
      }
      flush();
      return parts.join("");
    };
    const clip = `labkit-clip-${m.get("_key")}`;
    const defs = svg("defs");
    const cp = svg("clipPath", { id: clip });
    cp.appendChild(svg("rect", { x: L, y: T, width: pw, height: ph }));
    defs.appendChild(cp);
    const series = svg("g", { "clip-path": `url(#${clip})` });
    series.append(
      svg("path", { d: path(loss, true), class: "labkit-raw", stroke: COLORS.raw }),
      svg("path", { d: path(ema, false), class: "labkit-ema", stroke: COLORS.ema }),
    );
    for (const [s, mt] of visibleEvals) {
      const v = mt && mt.loss;
      if (ok(v)) series.appendChild(svg("circle", { cx: sx(s), cy: sy(v), r: DOT, fill: COLORS.val, class: "labkit-val" }));
      const mv = metric && mt && mt[metric];
      if (Number.isFinite(mv)) series.appendChild(svg("rect", { x: sx(s) - DOT, y: sm(mv) - DOT, width: 2 * DOT, height: 2 * DOT, fill: COLORS.metric, class: "labkit-metric-point" }));
    }
    this.cursor = svg("line", { y1: T, y2: T + ph, class: "labkit-cursor", visibility: "hidden" });
    this.svg.append(defs, series, this.cursor);
    this.geom = { L, T, pw, ph, x0, x1, i0, sx, metric };
    this.drawLegend(metric);
  }

  drawLegend(metric) {
    const item = (key, text) => {
      const s = h("span", `labkit-key labkit-key-${key}`);
      const swatch = h("i");
      swatch.style.background = COLORS[key];
      s.appendChild(swatch);
      s.appendChild(document.createTextNode(text));
      return s;
    };
    const items = [item("raw", "training loss"), item("ema", "smoothed")];
    if (this.store.evals.some((e) => e[1] && Number.isFinite(e[1].loss))) items.push(item("val", "validation loss"));
    if (metric) items.push(item("metric", `validation ${metric}`));
    this.legend.replaceChildren(...items);
  }

  hover(e) {
    const g = this.geom, st = this.store;
    if (!e || !g || st.n === 0) { this.readout.hidden = true; if (this.cursor) this.cursor.setAttribute("visibility", "hidden"); return; }
    const rect = this.svg.getBoundingClientRect();
    const px = ((e.clientX - rect.left) / rect.width) * Number(this.svg.getAttribute("width"));
    if (px < g.L || px > g.L + g.pw) { this.hover(null); return; }
    const x = g.x0 + ((px - g.L - PAD) / (g.pw - 2 * PAD)) * (g.x1 - g.x0); // sx, inverted
    let i = Math.max(g.i0, Math.min(st.n - 1, lowerBound(st.cols.step, st.n, x)));
    if (i > g.i0 && Math.abs(st.cols.step[i - 1] - x) < Math.abs(st.cols.step[i] - x)) i -= 1;
    const s = st.cols.step[i];
    const cx = g.sx(s);
    this.cursor.setAttribute("x1", cx); this.cursor.setAttribute("x2", cx);
    this.cursor.setAttribute("visibility", "visible");
    const lines = [
      `step ${s.toLocaleString()} · epoch ${fmt(st.cols.epoch[i])}`,
      `loss ${fmt(st.cols.loss[i])} · smoothed ${fmt(st.cols.ema[i])}`,
      `lr ${fmt(st.cols.lr[i])}`,
    ];
    let best = null;
    for (const ev of st.evals) if (!best || Math.abs(ev[0] - s) < Math.abs(best[0] - s)) best = ev;
    if (best && Math.abs(g.sx(best[0]) - cx) < 12) {
      const parts = Object.entries(best[1] || {}).map(([k, v]) => `${k} ${fmt(v)}`);
      lines.push(`eval @ ${best[0].toLocaleString()}: ${parts.join(" · ")}`);
    }
    this.readout.replaceChildren(...lines.map((t) => h("div", "", t)));
    this.readout.hidden = false;
    const left = cx + 12 + 220 > rect.width ? cx - 12 - this.readout.offsetWidth : cx + 12;
    this.readout.style.left = `${Math.max(0, left)}px`;
    this.readout.style.top = `${g.T + 4}px`;
  }
}

// ---------------------------------------------------------------------------------------------
// Sample generations of a causal LM: the latest (prompt muted, generation bold), then the first
// prompt's answer at each evaluation. Shown only once there are some (never for a classifier).

class SamplesView {
  constructor(store, parent) {
    this.store = store;
    this.shown = -1;
    this.el = h("div", "labkit-samples");
    this.el.hidden = true;
    parent.appendChild(this.el);
    this.onStore = () => this.update();
    store.listeners.add(this.onStore);
    this.update();
  }

  update() {
    const all = this.store.samples;
    if (all.length === this.shown) return; // rows arrive ten times a second; samples rarely
    this.shown = all.length;
    this.el.hidden = !all.length;
    this.el.dataset.samples = String(all.length);
    if (!all.length) { this.el.replaceChildren(); return; }
    const [step, prompts, texts] = all[all.length - 1];
    const items = [h("div", "labkit-label", `sample generations at step ${step.toLocaleString()}`)];
    prompts.forEach((prompt, i) => {
      const text = texts[i] || "";
      const item = h("div", "labkit-sample");
      item.append(
        h("div", "labkit-sample-prompt", prompt),
        text ? h("div", "labkit-sample-text", text) : h("div", "labkit-sample-empty", "(nothing generated)"),
      );
      items.push(item);
    });
    const first = all[0][1][0];
    const answers = first === undefined ? [] : all.filter((s) => s[1][0] === first);
    let list = null;
    if (answers.length >= 2) {
      items.push(h("div", "labkit-label", "the first prompt's answer at each evaluation:"));
      list = h("div", "labkit-answers");
      for (const [s, , , answer] of answers) {
        const row = h("div", "labkit-answer");
        row.append(h("span", "labkit-label", `step ${s.toLocaleString()}: `), document.createTextNode(answer || "–"));
        list.appendChild(row);
      }
      items.push(list);
    }
    this.el.replaceChildren(...items);
    if (list) list.scrollTop = list.scrollHeight; // the newest answer in view
  }

  destroy() {
    this.store.listeners.delete(this.onStore);
  }
}

// ---------------------------------------------------------------------------------------------
// Panel view: status, progress, controls, metrics, sample generations, error

class PanelView {
  constructor(model, root, store) {
    this.model = model;
    const head = h("div", "labkit-head");
    this.status = h("span", "labkit-status");
    this.title = h("span", "labkit-title");
    this.progressText = h("span", "labkit-progress-text");
    head.append(this.status, this.title, this.progressText);
    const bar = h("div", "labkit-bar");
    this.fill = h("div", "labkit-bar-fill");
    bar.appendChild(this.fill);
    this.facts = h("div", "labkit-facts");
    const buttons = h("div", "labkit-buttons");
    this.stop = this.button("Stop", "stop", "labkit-stop");
    this.pause = this.button("Pause", "pause", "labkit-pause");
    this.save = this.button("Save checkpoint", "save", "labkit-save");
    this.notice = h("span", "labkit-notice");
    buttons.append(this.stop, this.pause, this.save, this.notice);
    this.error = h("div", "labkit-error");
    this.metrics = h("div", "labkit-metrics");
    this.checkpoints = h("div", "labkit-checkpoints");
    this.top = h("div", "labkit-top");
    this.top.append(head, bar, this.facts, buttons, this.error);
    this.bottom = h("div", "labkit-bottom");
    this.bottom.append(this.metrics);
    this.samples = new SamplesView(store, this.bottom);
    this.bottom.append(this.checkpoints);
    root.append(this.top);
    this.requested = new Set();
    const names = ["status", "status_label", "ended", "step", "total_steps", "epoch",
      "samples_per_s", "eta_s", "device", "gpu_memory", "loss_parts", "metrics", "checkpoints",
      "error", "notice", "title"];
    for (const n of names) model.on(`change:${n}`, () => this.update(n));
    this.update();
  }

  button(label, action, cls) {
    const b = h("button", `labkit-button ${cls}`, label);
    b.type = "button";
    b.addEventListener("click", async () => {
      const act = action === "pause" && this.model.get("status") === "paused" ? "resume" : action;
      this.requested.add(act);
      this.update();
      // through the server first (it answers while a cell keeps the kernel busy), else the comm
      if (!(await this.viaServer(act))) this.model.send({ type: "control", action: act });
    });
    return b;
  }

  // In JupyterLab and Notebook 7 with labkit's server extension, a run that keeps a record is
  // steered through its folder (POST labkit/run/control, Jupyter's own token and XSRF cookie):
  // the kernel's shell, busy with a cell during Run All or run.wait(), is not in the way. True
  // when the server took the request (or refused it for a reason the kernel would give too).
  async viaServer(action) {
    const folder = this.model.get("record_dir");
    const config = document.getElementById("jupyter-config-data");
    if (!folder || !config || typeof fetch !== "function") return false;
    let base = "/", token = "";
    try {
      const data = JSON.parse(config.textContent || "{}");
      base = data.baseUrl || "/";
      token = data.token || "";
    } catch (err) {
      return false;
    }
    const xsrf = (document.cookie.match(/(?:^|;\s*)_xsrf=([^;]*)/) || [])[1];
    const headers = { "Content-Type": "application/json" };
    if (xsrf) headers["X-XSRFToken"] = decodeURIComponent(xsrf);
    if (token) headers.Authorization = `token ${token}`;
    try {
      const url = `${base.replace(/\/?$/, "/")}labkit/run/control`;
      const reply = await fetch(url, {
        method: "POST", credentials: "same-origin", headers,
        body: JSON.stringify({ folder, action, run_id: this.model.get("record_id") || null }),
      });
      if (reply.status !== 200 && reply.status !== 409) return false;
      const answer = await reply.json();
      this.serverNotice = String(answer.notice || answer.message || "");
      this.update();
      return true;
    } catch (err) {
      return false; // no server extension here (VS Code, Colab): the kernel answers
    }
  }

  update(changed) {
    const m = this.model, status = m.get("status") || "pending";
    if (changed === "status" || changed === "notice") this.requested.clear();
    if (changed === "status") this.serverNotice = ""; // the new status answers the request
    const ended = !!m.get("ended"); // the kernel knows which statuses end a run
    this.root?.setAttribute?.("data-status", status);
    // the kernel's words for the status ("stopping…"): the badge, the static snapshot and the
    // App's status line say the same
    this.status.textContent = m.get("status_label") || status.replace(/_/g, " ");
    this.status.className = `labkit-status labkit-status-${status}`;
    this.status.dataset.status = status;
    this.status.style.background = PALETTE.status[status] || "#777";
    this.title.textContent = m.get("title") || "";
    const step = m.get("step") || 0, total = m.get("total_steps") || 0;
    this.progressText.textContent = total ? `step ${step.toLocaleString()} / ${total.toLocaleString()} (${Math.floor((100 * step) / total)}%)` : `step ${step.toLocaleString()}`;
    this.fill.style.width = total ? `${Math.min(100, (100 * step) / total)}%` : "0%";
    const facts = [`epoch ${(m.get("epoch") || 0).toFixed(2)}`];
    const sps = m.get("samples_per_s");
    if (sps > 0 && (status === "running" || ended)) facts.push(`${sps >= 100 ? Math.round(sps) : sps.toFixed(1)} samples/s`);
    const eta = m.get("eta_s"); // MetricHistory.eta, as the console bar shows it; -1 unless running
    if (eta >= 0 && status === "running") facts.push(`ETA ${duration(eta)}`);
    // the parts of a composite loss, as the step reported them (a distillation: soft, hard)
    for (const [name, v] of Object.entries(m.get("loss_parts") || {})) {
      if (Number.isFinite(v)) facts.push(`${name.replace(/_/g, " ")} ${fmt(v)}`);
    }
    if (m.get("device")) facts.push(m.get("device"));
    if (m.get("gpu_memory")) facts.push(`GPU memory ${m.get("gpu_memory")}`);
    this.facts.textContent = facts.join(" · ");
    // a button that can do nothing is disabled: all once the run has ended or is stopping;
    // Pause while a pause is on its way (Resume takes its place once training is held)
    const stopping = status === "stopping";
    this.stop.disabled = ended || stopping || this.requested.has("stop");
    this.pause.textContent = status === "paused" ? "Resume" : "Pause";
    this.pause.disabled = ended || stopping || status === "pausing" ||
      this.requested.has("pause") || this.requested.has("resume");
    this.save.disabled = ended || stopping || this.requested.has("save");
    this.notice.textContent = m.get("notice") || this.serverNotice || "";
    const err = m.get("error") || "";
    this.error.textContent = err;
    this.error.hidden = !err;
    const metrics = Object.entries(m.get("metrics") || {});
    this.metrics.replaceChildren();
    if (metrics.length) {
      this.metrics.appendChild(h("span", "labkit-label", "last evaluation"));
      for (const [k, v] of metrics) {
        const item = h("span", "labkit-metric-item");
        item.append(h("span", "labkit-label", k), h("b", "", fmt(v)));
        this.metrics.appendChild(item);
      }
    }
    const cps = m.get("checkpoints") || [];
    this.checkpoints.textContent = cps.length ? `${cps.length} checkpoint${cps.length === 1 ? "" : "s"}, last: ${cps[cps.length - 1]}` : "";
  }
}

// ---------------------------------------------------------------------------------------------

export default {
  initialize({ model }) {
    const store = storeFor(model);
    const key = model.get("_key") || "default";
    return () => { store.detach(); STORES.delete(key); };
  },

  render({ model, el }) {
    const store = storeFor(model);
    const root = h("div", "labkit-panel");
    el.appendChild(root);
    const panel = model.get("_kind") === "panel" ? new PanelView(model, root, store) : null;
    if (panel) panel.root = root;
    const chart = new ChartView(model, store, root);
    if (panel) root.appendChild(panel.bottom);
    if (panel) panel.update();
    return () => { chart.destroy(); if (panel) panel.samples.destroy(); root.remove(); };
  },
};
