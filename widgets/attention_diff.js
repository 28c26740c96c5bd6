// labkit AttentionDiffView: which heads changed most between two models on the same text.
// A layers x heads grid coloured by Jensen-Shannon divergence, the ranked list of heads, and for
// the chosen head both attention maps side by side plus the change per token. The two maps of a
// head arrive as fp16 buffers when the view asks ({type: "head", layer, head}); the reply
// listener is registered in initialize(). Tokens are written with textContent only.

const STORES = new WeakMap();
let HALF = null;

function halfTable() {
  if (HALF) return HALF;
  HALF = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const frac = h & 0x3ff;
    let v;
    if (exp === 0) v = frac * 2 ** -24;
    else if (exp === 31) v = frac ? NaN : Infinity;
    else v = (1 + frac / 1024) * 2 ** (exp - 15);
    HALF[h] = sign * v;
  }
  return HALF;
}

function f16(b) {
  let u8 = new Uint8Array(0);
  if (b instanceof ArrayBuffer) u8 = new Uint8Array(b);
  else if (b && ArrayBuffer.isView(b)) u8 = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  if (u8.byteOffset % 2) u8 = u8.slice();
  const h = new Uint16Array(u8.buffer, u8.byteOffset, u8.byteLength >> 1);
  const table = halfTable();
  const out = new Float32Array(h.length);
  for (let i = 0; i < h.length; i++) out[i] = table[h[i]];
  return out;
}

function storeFor(model) {
  let s = STORES.get(model);
  if (!s) {
    s = { heads: new Map(), pending: new Set(), listeners: new Set(), listening: false };
    STORES.set(model, s);
  }
  return s;
}

function listen(model) {
  const s = storeFor(model);
  if (s.listening) return () => {};
  const onMsg = (msg, buffers) => {
    if (!msg || msg.type !== "head") return;
    const key = `${msg.layer}:${msg.head}`;
    const b = buffers || [];
    s.heads.set(key, { size: msg.size, a: f16(b[0]), b: f16(b[1]), rows: f16(b[2]) });
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

function node(tag, cls, text) {
  const el = document.createElement(tag);
  if (cls) el.className = cls;
  if (text !== undefined) el.textContent = text;
  return el;
}

function heat(canvas, m, S, peak) {
  canvas.width = S;
  canvas.height = S;
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(S, S);
  for (let p = 0; p < S * S; p++) {
    const t = peak > 0 ? Math.min(1, m[p] / peak) : 0;
    img.data[4 * p] = Math.round(255 - 247 * t);
    img.data[4 * p + 1] = Math.round(255 - 207 * t);
    img.data[4 * p + 2] = Math.round(255 - 148 * t);
    img.data[4 * p + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
}

function render({ model, el }) {
  const s = storeFor(model);
  const unlisten = listen(model);
  s.pending.clear();
  const off = [];
  const on = (event, fn) => {
    model.on(event, fn);
    off.push([event, fn]);
  };
  const root = node("div", "lk-diff");
  root.dataset.ready = "0";
  const title = node("div", "lk-diff-title");
  const main = node("div", "lk-diff-main");
  const gridBox = node("div", "lk-diff-grid");
  const list = node("ol", "lk-diff-list");
  const detail = node("div", "lk-diff-detail");
  main.append(gridBox, list, detail);
  root.append(title, main);
  el.append(root);

  const layers = () => model.get("layers") || [];
  const heads = () => model.get("heads") || [];
  const jsd = () => model.get("jsd") || [];

  function select(li, hi) {
    model.set("selected", [li, hi]);
    model.save_changes();
  }

  function request(li, hi) {
    const key = `${li}:${hi}`;
    if (s.heads.has(key) || s.pending.has(key)) return;
    s.pending.add(key);
    model.send({ type: "head", layer: li, head: hi });
  }

  function drawOverview() {
    title.textContent = `Attention change: ${model.get("name_a")} → ${model.get("name_b")} · ` +
      `${(model.get("tokens") || []).length} tokens · Jensen-Shannon divergence per head (bits)`;
    const scores = jsd();
    let peak = 0;
    for (const row of scores) for (const v of row) peak = Math.max(peak, v);
    const [sl, sh] = model.get("selected") || [0, 0];
    const table = node("table");
    const hdr = node("tr");
    hdr.append(node("th", "", "layer \\ head"));
    heads().forEach((h) => hdr.append(node("th", "", `${h}`)));
    table.append(hdr);
    layers().forEach((layer, li) => {
      const tr = node("tr");
      tr.append(node("th", "", `${layer}`));
      heads().forEach((h, hi) => {
        const v = (scores[li] || [])[hi] || 0;
        const td = node("td", "lk-cell");
        td.style.backgroundColor = `rgba(153,0,13,${peak > 0 ? v / peak : 0})`;
        td.title = `layer ${layer}, head ${h}: ${v.toFixed(4)}`;
        if (li === sl && hi === sh) td.classList.add("selected");
        td.addEventListener("click", () => select(li, hi));
        tr.append(td);
      });
      table.append(tr);
    });
    gridBox.replaceChildren(table);
    const ranked = [];
    scores.forEach((row, li) => row.forEach((v, hi) => ranked.push([v, li, hi])));
    ranked.sort((a, b) => b[0] - a[0]);
    list.replaceChildren();
    for (const [v, li, hi] of ranked.slice(0, 10)) {
      const item = node("li", "lk-rank", `layer ${layers()[li]} head ${heads()[hi]}: ${v.toFixed(4)}`);
      if (li === sl && hi === sh) item.classList.add("selected");
      item.addEventListener("click", () => select(li, hi));
      list.append(item);
    }
  }

  function drawDetail() {
    const [li, hi] = model.get("selected") || [0, 0];
    const data = s.heads.get(`${li}:${hi}`);
    detail.replaceChildren(node("div", "lk-diff-head",
      `layer ${layers()[li]}, head ${heads()[hi]}: before (left) and after (right)`));
    if (!data) {
      detail.append(node("div", "lk-status", "loading…"));
      root.dataset.ready = "0";
      request(li, hi);
      return;
    }
    let peak = 0;
    for (const m of [data.a, data.b]) for (const v of m) peak = Math.max(peak, v);
    const maps = node("div", "lk-maps");
    for (const [name, m] of [[model.get("name_a"), data.a], [model.get("name_b"), data.b]]) {
      const fig = node("figure");
      const c = node("canvas", "lk-map");
      heat(c, m, data.size, peak);
      fig.append(c, node("figcaption", "", name));
      maps.append(fig);
    }
    detail.append(maps);
    const strip = node("div", "lk-tokens");
    let top = 0;
    for (const v of data.rows) top = Math.max(top, v);
    (model.get("tokens") || []).forEach((tok, i) => {
      const t = node("span", "lk-tok", String(tok).replace(/[\u0120\u2581]/g, " "));
      const v = data.rows[i] || 0;
      t.style.backgroundColor = `rgba(153,0,13,${top > 0 ? (0.6 * v) / top : 0})`;
      t.title = `token ${i}: change ${v.toFixed(4)}`;
      strip.append(t);
    });
    detail.append(node("div", "lk-status", "change per query token:"), strip);
    root.dataset.ready = "1";
  }

  function refresh() {
    drawOverview();
    drawDetail();
  }

  const onHead = (key) => {
    const [li, hi] = model.get("selected") || [0, 0];
    if (key === `${li}:${hi}`) drawDetail();
  };
  s.listeners.add(onHead);
  on("change:selected", refresh);
  on("change:jsd", refresh);
  on("change:tokens", refresh);
  refresh();
  return () => {
    s.listeners.delete(onHead);
    for (const [event, fn] of off) model.off(event, fn);
    unlisten();
  };
}

export default {
  initialize({ model }) {
    return listen(model);
  },
  render,
};
