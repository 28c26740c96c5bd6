// labkit AttentionDiffView: which heads changed most between two models on the same text.
// A layers x heads grid coloured by Jensen-Shannon divergence, the ranked list of heads, and for
// the chosen head both attention maps side by side plus the change per token. The two maps of a
// head arrive as fp16 buffers when the view asks ({type: "head", layer, head}); the reply
// listener is registered in initialize(). Tokens are written with textContent only.

const listenHeads = (model) =>
  listenReplies(model, "head", (msg, b) => [
    `${msg.layer}:${msg.head}`,
    { size: msg.size, a: f16(b[0]), b: f16(b[1]), rows: f16(b[2]) },
  ]);

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

  function select(li, hi) {
    model.set("selected", [li, hi]);
    model.save_changes();
  }

  function request(li, hi) {
    requestReply(model, `${li}:${hi}`, { type: "head", layer: li, head: hi });
  }

  function drawOverview() {
    title.textContent = `Attention change: ${model.get("name_a")} → ${model.get("name_b")} · ` +
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
        td.title = `layer ${layer}, head ${head}: ${v.toFixed(4)}`;
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
      const item = h("li", "lk-rank", `layer ${layers()[li]} head ${heads()[hi]}: ${v.toFixed(4)}`);
      if (li === sl && hi === sh) item.classList.add("selected");
      item.addEventListener("click", () => select(li, hi));
      list.append(item);
    }
  }

  function drawDetail() {
    const [li, hi] = model.get("selected") || [0, 0];
    const data = s.got.get(`${li}:${hi}`);
    detail.replaceChildren(h("div", "lk-diff-head",
      `layer ${layers()[li]}, head ${heads()[hi]}: before (left) and after (right)`));
    if (!data) {
      detail.append(h("div", "lk-status", "loading…"));
      root.dataset.ready = "0";
      request(li, hi);
      return;
    }
    let peak = 0;
    for (const m of [data.a, data.b]) for (const v of m) peak = Math.max(peak, v);
    const maps = h("div", "lk-maps");
    for (const [name, m] of [[model.get("name_a"), data.a], [model.get("name_b"), data.b]]) {
      const fig = h("figure");
      const c = h("canvas", "lk-map");
      heatmap(c, data.size, (p) => (peak > 0 ? Math.min(1, m[p] / peak) : 0), PALETTE.attention);
      fig.append(c, h("figcaption", "", name));
      maps.append(fig);
    }
    detail.append(maps);
    const strip = h("div", "lk-tokens");
    let top = 0;
    for (const v of data.rows) top = Math.max(top, v);
    (model.get("tokens") || []).forEach((tok, i) => {
      const t = h("span", "lk-tok", pretty(tok));
      const v = data.rows[i] || 0;
      t.style.backgroundColor = rgba(PALETTE.change, top > 0 ? (0.6 * v) / top : 0);
      t.title = `token ${i}: change ${v.toFixed(4)}`;
      strip.append(t);
    });
    detail.append(h("div", "lk-status", "change per query token:"), strip);
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
  const unsubscribe = subscribe(model, ["change:selected", "change:jsd", "change:tokens"], refresh);
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
