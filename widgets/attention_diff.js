// labkit AttentionDiffView: which heads changed most between two models on the same text.
// A layers x heads grid coloured by Jensen-Shannon divergence, the ranked list of heads, and for
// the chosen head both attention maps side by side (each captioned, tokens on both axes) plus
// the change per token. The two maps of a head arrive as fp16 buffers when the view asks
// ({type: "head", layer, head}); the reply listener is registered in initialize(). Tokens are
// written with textContent only.

const listenHeads = (model) =>
  listenReplies(model, "head", (msg, b) => [
    `${msg.layer}:${msg.head}`,
    { size: msg.size, edges: msg.edges, a: f16(b[0]), b: f16(b[1]), rows: f16(b[2]) },
  ]);

const MAP_WIDTH = 280; // px a map is drawn across, about
const LABEL_PX = 11; // axis labels at least this far apart: thinned when rows are smaller
const LABEL_CHARS = 12; // longer labels are cut (the tooltip has the whole token)


function axisLabel(tok) {
  const text = pretty(tok).trim() || "\u2423";
  return text.length <= LABEL_CHARS ? text : `${text.slice(0, LABEL_CHARS - 1).trimEnd()}\u2026`;
}

// A figure: caption, key tokens along the top, query tokens down the left, the S x S map.
// edges[g] is the first token of pooled row g (edges[S] = T).
function labelledMap(caption, S, edges, tokens, level) {
  const fig = h("figure", "lk-fig");
  const cell = Math.max(2, Math.min(14, Math.floor(MAP_WIDTH / Math.max(1, S))));
  const step = Math.ceil(LABEL_PX / cell);
  const grid = h("div", "lk-map-grid");
  const keys = h("div", "lk-keys");
  const queries = h("div", "lk-queries");
  for (let g = 0; g < S; g += step) {
    const lo = edges[g];
    const hi = edges[Math.min(g + step, S)];
    const px = `${Math.min(step, S - g) * cell}px`;
    const tok = tokens[lo] ?? "";
    const tip = hi - lo <= 1 ? `token ${lo}: ${tok}` : `tokens ${lo}-${hi - 1}, from ${tok}`;
    for (const [box, side] of [[queries, "height"], [keys, "width"]]) {
      const t = h("div", "lk-axis", axisLabel(tok));
      t.title = tip;
      t.style[side] = px;
      t.style.lineHeight = px;
      box.append(t);
    }
  }
  const c = h("canvas", "lk-map");
  heatmap(c, S, level, PALETTE.attention);
  c.style.width = `${S * cell}px`;
  c.style.height = `${S * cell}px`;
  grid.append(h("div", "lk-corner"), keys, queries, c);
  fig.append(h("figcaption", "", caption), grid);
  return fig;
}

function render({ model, el }) {
  const s = replyStore(model);
  const unlisten = listenHeads(model);
  s.pending.clear(); // a new view asks again for anything it has not received
  const root = h("div", "lk-diff");
  root.dataset.ready = "0";
  const title = h("div", "lk-diff-title");
  const main = h("div", "lk-diff-main");
  const gridBox = h("div", "lk-diff-grid");
  const list = h("ol", "lk-diff-list");
  const detail = h("div", "lk-diff-detail");
  main.append(gridBox, list, detail);
  root.append(title, main);
  el.append(root);

  const layers = () => model.get("layers") || [];
  const heads = () => model.get("heads") || [];
  const jsd = () => model.get("jsd") || [];
  const captions = () => {
    const [a, b] = model.get("captions") || [];
    return [a || "before", b || "after"];
  };

  function select(li, hi) {
    model.set("selected", [li, hi]);
    model.save_changes();
  }

  function request(li, hi) {
    requestReply(model, `${li}:${hi}`, { type: "head", layer: li, head: hi });
  }

  function drawOverview() {
    const [first, second] = captions();
    title.textContent = `Attention change: ${first} → ${second} · ` +
      `${(model.get("tokens") || []).length} tokens · Jensen-Shannon divergence per head (bits)`;
    const scores = jsd();
    let peak = 0;
    for (const row of scores) for (const v of row) peak = Math.max(peak, v);
    const [sl, sh] = model.get("selected") || [0, 0];
    const table = h("table");
    const hdr = h("tr");
    hdr.append(h("th", "", "layer \\ head"));
    heads().forEach((head) => hdr.append(h("th", "", `${head}`)));
    table.append(hdr);
    layers().forEach((layer, li) => {
      const tr = h("tr");
      tr.append(h("th", "", `${layer}`));
      heads().forEach((head, hi) => {
        const v = (scores[li] || [])[hi] || 0;
        const td = h("td", "lk-cell");
        td.style.backgroundColor = rgba(PALETTE.change, peak > 0 ? v / peak : 0);
        td.title = `layer ${layer}, head ${head}: ${sig(v)}`;
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
      const item = h("li", "lk-rank", `layer ${layers()[li]} head ${heads()[hi]}: ${sig(v)}`);
      if (li === sl && hi === sh) item.classList.add("selected");
      item.addEventListener("click", () => select(li, hi));
      list.append(item);
    }
  }

  function drawDetail() {
    const [li, hi] = model.get("selected") || [0, 0];
    const data = s.got.get(`${li}:${hi}`);
    const head = h("div", "lk-diff-head", `layer ${layers()[li]}, head ${heads()[hi]} `);
    head.append(h("span", "lk-status", "(rows: query tokens, columns: key tokens)"));
    detail.replaceChildren(head);
    if (!data) {
      detail.append(h("div", "lk-status", "loading…"));
      root.dataset.ready = "0";
      request(li, hi);
      return;
    }
    let peak = 0;
    for (const m of [data.a, data.b]) for (const v of m) peak = Math.max(peak, v);
    const maps = h("div", "lk-maps");
    const toks = model.get("tokens") || [];
    const S = data.size;
    const edges = data.edges && data.edges.length === S + 1 ? data.edges
      : Array.from({ length: S + 1 }, (_, g) => Math.floor((g * toks.length) / S));
    for (const [caption, m] of [[captions()[0], data.a], [captions()[1], data.b]]) {
      const level = (p) => (peak > 0 ? Math.min(1, m[p] / peak) : 0);
      maps.append(labelledMap(caption, S, edges, toks, level));
    }
    detail.append(maps);
    const strip = h("div", "lk-tokens");
    let top = 0;
    for (const v of data.rows) top = Math.max(top, v);
    (model.get("tokens") || []).forEach((tok, i) => {
      const t = h("span", "lk-tok", pretty(tok));
      const v = data.rows[i] || 0;
      t.style.backgroundColor = rgba(PALETTE.change, top > 0 ? (0.6 * v) / top : 0);
      t.title = `token ${i}: change ${sig(v)} bits`;
      strip.append(t);
    });
    detail.append(h("div", "lk-status", "change per query token (bits):"), strip);
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
  const unsubscribe = subscribe(model,
    ["change:selected", "change:jsd", "change:tokens", "change:captions"], refresh);
  refresh();
  return () => {
    s.listeners.delete(onHead);
    unsubscribe();
    unlisten();
  };
}

export default {
  initialize({ model }) {
    return listenHeads(model);
  },
  render,
};
