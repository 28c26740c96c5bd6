// labkit's shared front-end helpers, written once. labkit/ui/_base.py sends every widget module as
// this file, then one generated line `const PALETTE = {...}` (the colours labkit.render draws
// with, as RGB triples), then the module itself. So this file holds plain declarations only, no
// import or export, and a module must not declare any of these names again
// (tests/test_widgets_common.py checks both).

// ---------------------------------------------------------------------------------------------
// Elements and events

// An element with an optional class and text; text always goes through textContent.
function h(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

// model.on(event, fn) for each event; the function returned undoes them (a view's cleanup).
function subscribe(model, events, fn) {
  for (const event of events) model.on(event, fn);
  return () => {
    for (const event of events) model.off(event, fn);
  };
}

// A token as shown: the byte-level BPE (Ġ) and SentencePiece (▁) space markers become spaces.
function pretty(tok) {
  return String(tok).replace(/[\u0120\u2581]/g, " ");
}

// ---------------------------------------------------------------------------------------------
// Binary buffers: anywidget hands them over as ArrayBuffer, DataView or typed array.

// The bytes of b (a view, no copy); empty for anything that is not a buffer.
function bytesOf(b) {
  if (!b) return new Uint8Array(0);
  if (b instanceof ArrayBuffer) return new Uint8Array(b);
  if (ArrayBuffer.isView(b)) return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  return new Uint8Array(0);
}

// A copy of b's bytes in an ArrayBuffer of their own: aligned for any typed array, and safe if
// the model's buffer is replaced later.
function bufferOf(b) {
  return bytesOf(b).slice().buffer;
}

function u16(b) {
  let u8 = bytesOf(b);
  if (u8.byteOffset % 2) u8 = u8.slice();
  return new Uint16Array(u8.buffer, u8.byteOffset, u8.byteLength >> 1);
}

function f32(b) {
  const copy = bufferOf(b);
  return new Float32Array(copy, 0, copy.byteLength >> 2);
}

let HALF = null; // fp16 bits -> value, built on first use

function halfTable() {
  if (HALF) return HALF;
  HALF = new Float32Array(65536);
  for (let bits = 0; bits < 65536; bits++) {
    const sign = bits & 0x8000 ? -1 : 1;
    const exp = (bits >> 10) & 0x1f;
    const frac = bits & 0x3ff;
    let v;
    if (exp === 0) v = frac * 2 ** -24;
    else if (exp === 31) v = frac ? NaN : Infinity;
    else v = (1 + frac / 1024) * 2 ** (exp - 15);
    HALF[bits] = sign * v;
  }
  return HALF;
}

function f16(b) {
  const bits = u16(b);
  const table = halfTable();
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = table[bits[i]];
  return out;
}

// ---------------------------------------------------------------------------------------------
// Colours. PALETTE comes from labkit.render, so the static HTML and the widgets agree:
// attention (white -> dark blue) for weights, change (white -> dark red) for divergences, and
// toward/against with opacity for attributions.

// ``x`` to ``digits`` significant digits, as labkit.render.summary.sig writes it for people:
// 0.123, 12.3, 1,235, 4.20e-06; a dash for a missing value
function sig(x, digits = 3) {
  if (x === null || x === undefined || Number.isNaN(x)) return "–";
  if (!Number.isFinite(x)) return x > 0 ? "∞" : "-∞";
  if (x === 0) return "0";
  const m = Math.floor(Math.log10(Math.abs(x)));
  if (m >= digits - 1) return Math.round(x).toLocaleString("en-US");
  if (m < -4) return x.toExponential(digits - 1).replace(/e([+-])(\d)$/, "e$10$2");
  const text = x.toFixed(digits - 1 - m);
  // rounding may add a digit (0.9996 -> 1.000): write it again at its new magnitude
  if (text.replace("-", "").replace(".", "").replace(/^0+/, "").length > digits) {
    return sig(Number(text), digits);
  }
  return text;
}

function rgba(rgb, alpha) {
  return `rgba(${rgb[0]},${rgb[1]},${rgb[2]},${alpha})`;
}

// The colour at t (0..1) of the ramp from white to `end`.
function ramp(end, t) {
  return [
    Math.round(255 + (end[0] - 255) * t),
    Math.round(255 + (end[1] - 255) * t),
    Math.round(255 + (end[2] - 255) * t),
  ];
}

// Paint an S x S canvas: pixel p takes the colour at level(p) (0..1) of the ramp to `end`.
function heatmap(canvas, S, level, end) {
  canvas.width = S;
  canvas.height = S;
  if (S <= 0) return;
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(S, S);
  for (let p = 0; p < S * S; p++) {
    const [r, g, b] = ramp(end, level(p));
    img.data[4 * p] = r;
    img.data[4 * p + 1] = g;
    img.data[4 * p + 2] = b;
    img.data[4 * p + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
}

// CSS background of an attribution score on a diverging scale whose ends are ±top.
function diverging(value, top) {
  const x = Math.max(-1, Math.min(1, value / top));
  return rgba(x >= 0 ? PALETTE.toward : PALETTE.against, (Math.abs(x) * PALETTE.opacity).toFixed(3));
}

// ---------------------------------------------------------------------------------------------
// Replies to a view's requests. A view sends {type, ...} for what it lacks; the kernel answers
// with a custom message of the same type. The replies are kept per model and the listener is
// registered in initialize(), so no reply is lost to a view that is not rendered yet, and a
// second view of the same model draws at once.

const REPLIES = new WeakMap();

// {got: key -> value, pending: keys asked for, listeners: called with each key that arrives}
function replyStore(model) {
  let s = REPLIES.get(model);
  if (!s) {
    s = { got: new Map(), pending: new Set(), listeners: new Set(), listening: false };
    REPLIES.set(model, s);
  }
  return s;
}

// Keep each reply of `type`: read(msg, buffers) gives its [key, value]. Returns the function
// that stops listening (a no-op when something already listens).
function listenReplies(model, type, read) {
  const s = replyStore(model);
  if (s.listening) return () => {};
  const onMsg = (msg, buffers) => {
    if (!msg || msg.type !== type) return;
    let entry;
    try {
      entry = read(msg, buffers || []);
    } catch (err) {
      console.error(`labkit: bad "${type}" message`, err);
      return;
    }
    const [key, value] = entry;
    s.got.set(key, value);
    s.pending.delete(key);
    for (const cb of [...s.listeners]) cb(key);
  };
  model.on("msg:custom", onMsg);
  s.listening = true;
  return () => {
    model.off("msg:custom", onMsg);
    s.listening = false;
  };
}

// Send msg asking for `key`, unless it has arrived or is on its way.
function requestReply(model, key, msg) {
  const s = replyStore(model);
  if (s.got.has(key) || s.pending.has(key)) return;
  s.pending.add(key);
  model.send(msg);
}

// -- charts: the run panel's and the run comparison's ------------------------------------------
const SVGNS = "http://www.w3.org/2000/svg";

function svg(tag, attrs) {
  const e = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  return e;
}

function fmt(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return "–";
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (a >= 10000) return `${+(v / 1000).toPrecision(4)}k`;
  if (a < 1e-3) return v.toExponential(0);
  return String(+v.toPrecision(4));
}

function duration(s) {
  if (!(s >= 0)) return "–";
  s = Math.round(s);
  const hr = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  if (hr) return `${hr}h ${String(m).padStart(2, "0")}m`;
  if (m) return `${m}m ${String(sec).padStart(2, "0")}s`;
  return `${sec}s`;
}

function niceTicks(lo, hi, count = 5, integer = false) {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return [];
  if (hi < lo) [lo, hi] = [hi, lo];
  if (hi === lo) { const pad = Math.abs(lo) * 0.1 || 1; lo -= pad; hi += pad; }
  const raw = (hi - lo) / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const f = raw / mag;
  let step = (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * mag;
  if (integer) step = Math.max(1, Math.round(step));
  const out = [];
  for (let i = Math.ceil(lo / step - 1e-9); i <= Math.floor(hi / step + 1e-9); i++) {
    out.push(+(i * step).toPrecision(12));
  }
  return out;
}

function logTicks(lo, hi) {
  if (!(lo > 0 && hi > 0)) return [];
  const k0 = Math.floor(Math.log10(lo)), k1 = Math.ceil(Math.log10(hi));
  const mults = k1 - k0 <= 2 ? [1, 2, 5] : [1];
  const out = [];
  for (let k = k0; k <= k1; k++) {
    for (const m of mults) {
      const t = m * 10 ** k;
      if (t >= lo * (1 - 1e-9) && t <= hi * (1 + 1e-9)) out.push(+t.toPrecision(6));
    }
  }
  if (out.length >= 2) return out;
  return niceTicks(lo, hi, 4).filter((t) => t > 0); // a narrow range: round linear values
}

// A y axis over [lo, hi]: its ticks, and the range widened to the outer ticks (log10 or linear).
function yAxis(lo, hi, logY) {
  if (logY) {
    const ticks = logTicks(lo, hi);
    return { lo: Math.min(lo, ticks[0]), hi: Math.max(hi, ticks[ticks.length - 1]), ticks };
  }
  const ticks = niceTicks(lo, hi);
  const d = ticks.length > 1 ? ticks[1] - ticks[0] : 1;
  if (ticks[0] > lo) ticks.unshift(+(ticks[0] - d).toPrecision(12));
  if (ticks[ticks.length - 1] < hi) ticks.push(+(ticks[ticks.length - 1] + d).toPrecision(12));
  return { lo: ticks[0], hi: ticks[ticks.length - 1], ticks };
}
