// labkit AttentionView: a head view (links between tokens for one layer and chosen heads; hover
// a token to focus it) and a model view (layers x heads thumbnails; click one to open it).
//
// Weights arrive as binary fp16 buffers, one layer at a time, when the view asks for them with
// a custom message {type: "layer", layer}. The reply listener is registered in initialize(), so
// a reply is never lost to a view that is not rendered yet; a view asks for what it lacks.
// Each row is kept as its strongest links (all of them for short inputs, the top 32 for long
// ones) and only the top `top_k` per token are drawn, so 2,048 tokens stay responsive.
// Every token is written with textContent: no data is ever parsed as HTML.

const MIN_WEIGHT = 0.02; // links weaker than this (or than uniform, 1/T) are not drawn

// Head colours: n hues evenly spaced in OKLCH (equal steps look equal), starting at blue, with
// the lightness alternating between two levels so neighbouring heads differ in lightness too;
// both levels keep a link readable on a light and on a dark background. Chroma is lowered only
// where sRGB cannot show it. Every head of a layer gets its own colour, for any head count.
const HEAD_HUE0 = 250; // degrees: head 0 is blue
const HEAD_LIGHTNESS = [0.55, 0.66];
const HEAD_CHROMA = 0.15;

// OKLab (Ottosson 2020) -> sRGB channels 0..1, unclipped (a channel outside 0..1 is out of gamut).
function oklabToSrgb(L, a, b) {
  const l = (L + 0.3963377774 * a + 0.2158037573 * b) ** 3;
  const m = (L - 0.1055613458 * a - 0.0638541728 * b) ** 3;
  const s = (L - 0.0894841775 * a - 1.291485548 * b) ** 3;
  const lin = [
    4.0767416621 * l - 3.3077115913 * m + 0.2309699292 * s,
    -1.2684380046 * l + 2.6097574011 * m - 0.3413193965 * s,
    -0.0041960863 * l - 0.7034186147 * m + 1.707614701 * s,
  ];
  const gamma = (c) => Math.sign(c) * (1.055 * Math.abs(c) ** (1 / 2.4) - 0.055);
  return lin.map((c) => (Math.abs(c) <= 0.0031308 ? 12.92 * c : gamma(c)));
}

// sRGB of OKLCH (L, C, h degrees), C lowered by bisection until the colour is in gamut.
function oklch(L, C, h) {
  const rad = (h * Math.PI) / 180;
  const at = (c) => oklabToSrgb(L, c * Math.cos(rad), c * Math.sin(rad));
  const inGamut = (rgb) => rgb.every((v) => v >= -1e-6 && v <= 1 + 1e-6);
  let rgb = at(C);
  if (!inGamut(rgb)) {
    let lo = 0;
    let hi = C;
    for (let k = 0; k < 24; k++) {
      const mid = (lo + hi) / 2;
      if (inGamut(at(mid))) lo = mid;
      else hi = mid;
    }
    rgb = at(lo);
  }
  return rgb.map((v) => Math.round(255 * Math.min(1, Math.max(0, v))));
}

// Relative luminance (WCAG) of 0..255 sRGB.
function luminance(rgb) {
  const lin = rgb.map((v) => {
    const c = v / 255;
    return c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  });
  return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2];
}

// [{color: "#rrggbb", ink: text colour on it}] for n heads, head position i at index i.
function headPalette(n) {
  const out = [];
  for (let i = 0; i < n; i++) {
    const rgb = oklch(HEAD_LIGHTNESS[i % 2], HEAD_CHROMA, HEAD_HUE0 + (360 * i) / Math.max(1, n));
    const hex = `#${rgb.map((v) => v.toString(16).padStart(2, "0")).join("")}`;
    const y = luminance(rgb);
    // black or white text, whichever contrasts more
    out.push({ color: hex, ink: (y + 0.05) / 0.05 >= 1.05 / (y + 0.05) ? "#000000" : "#ffffff" });
  }
  return out;
}

// One layer as sorted rows: idx/val [heads * T * K], strongest link first.
function decodeLayer(msg, buffers) {
  const H = msg.heads;
  const T = msg.tokens;
  if (msg.format === "dense") {
    const w = f16(buffers[0]);
    const K = T;
    const idx = new Uint16Array(H * T * K);
    const val = new Float32Array(H * T * K);
    const order = new Array(T);
    for (let r = 0; r < H * T; r++) {
      const base = r * T;
      for (let j = 0; j < T; j++) order[j] = j;
      order.sort((a, b) => w[base + b] - w[base + a]);
      for (let j = 0; j < T; j++) {
        idx[base + j] = order[j];
        val[base + j] = w[base + order[j]];
      }
    }
    return { H, T, K, idx, val };
  }
  return { H, T, K: msg.k, idx: u16(buffers[0]), val: f16(buffers[1]) };
}

const listenLayers = (model) =>
  listenReplies(model, "layer", (msg, buffers) => [msg.layer, decodeLayer(msg, buffers)]);

function render({ model, el }) {
  const s = replyStore(model);
  const unlisten = listenLayers(model);
  s.pending.clear(); // a new view asks again for anything it has not received

  const root = h("div", "lk-attn");
  root.dataset.ready = "0";
  const header = h("div", "lk-attn-top");
  const title = h("span", "lk-attn-title");
  const tabs = h("span", "lk-attn-tabs");
  const headTab = h("button", "lk-tab", "Head view");
  const modelTab = h("button", "lk-tab", "Model view");
  tabs.append(headTab, modelTab);
  header.append(title, tabs);
  const controls = h("div", "lk-attn-controls");
  const layerLabel = h("label", "", "Layer ");
  const layerSelect = h("select", "lk-layer");
  layerLabel.append(layerSelect);
  const chips = h("span", "lk-chips");
  const kLabel = h("label", "", " links per token ");
  const kInput = h("input", "lk-topk");
  kInput.type = "number";
  kInput.min = "1";
  kInput.max = "32";
  kLabel.append(kInput);
  const status = h("span", "lk-status");
  controls.append(layerLabel, chips, kLabel, status);
  const body = h("div", "lk-attn-body");
  root.append(header, controls, body);
  el.append(root);

  let focus = null; // {side: "left" | "right", i}
  let built = null; // head-view DOM for the current tokens
  let lit = []; // token elements highlighted by focus

  const tokens = () => model.get("tokens") || [];
  const layers = () => model.get("layers") || [];
  const heads = () => model.get("heads") || [];
  let paletteOf = [0, []]; // [head count, headPalette(head count)]
  const palette = () => {
    const n = heads().length;
    if (paletteOf[0] !== n) paletteOf = [n, headPalette(n)];
    return paletteOf[1];
  };
  const selected = () => {
    const sel = model.get("selected_heads");
    return sel && sel.length ? sel : heads().map((_, i) => i);
  };

  function request(li) {
    requestReply(model, li, { type: "layer", layer: li });
  }

  function setTitle() {
    const T = tokens().length;
    title.textContent = `${model.get("model_name") || "model"} · ${T} tokens · ` +
      `${layers().length} layers x ${heads().length} heads`;
  }

  function buildControls() {
    layerSelect.replaceChildren();
    layers().forEach((layer, li) => {
      const opt = h("option", "", `${layer}`);
      opt.value = String(li);
      layerSelect.append(opt);
    });
    layerSelect.value = String(model.get("layer"));
    chips.replaceChildren();
    const sel = new Set(selected());
    heads().forEach((head, hi) => {
      const chip = h("button", "lk-chip", `${head}`);
      chip.style.setProperty("--lk-color", palette()[hi].color);
      chip.style.setProperty("--lk-ink", palette()[hi].ink);
      chip.classList.toggle("off", !sel.has(hi));
      chip.title = `head ${head} (click to show or hide; double-click to show only this head)`;
      chip.addEventListener("click", () => {
        const now = new Set(selected());
        if (now.has(hi) && now.size > 1) now.delete(hi);
        else now.add(hi);
        model.set("selected_heads", [...now].sort((a, b) => a - b));
        model.save_changes();
      });
      chip.addEventListener("dblclick", () => {
        model.set("selected_heads", [hi]);
        model.save_changes();
      });
      chips.append(chip);
    });
    kInput.value = String(model.get("top_k"));
    const isHead = model.get("mode") !== "model";
    headTab.classList.toggle("active", isHead);
    modelTab.classList.toggle("active", !isHead);
    layerLabel.style.display = chips.style.display = kLabel.style.display = isHead ? "" : "none";
  }

  function buildHeadDom() {
    const toks = tokens();
    const T = toks.length;
    const rh = T > 256 ? 14 : 20;
    const wrap = h("div", "lk-head");
    wrap.style.setProperty("--lk-row", `${rh}px`);
    const left = h("div", "lk-col lk-left");
    const right = h("div", "lk-col lk-right");
    // The canvas covers only the visible band of the scroll box (sticky inside a column as
    // tall as the token lists): a long input never rasterises thousands of pixels per link.
    const column = h("div", "lk-linkcol");
    const canvas = h("canvas", "lk-links");
    const width = 220;
    column.style.height = `${T * rh}px`;
    column.append(canvas);
    const special = model.get("special") || [];
    const leftEls = [];
    const rightEls = [];
    toks.forEach((tok, i) => {
      for (const [col, list, side] of [[left, leftEls, "left"], [right, rightEls, "right"]]) {
        const t = h("div", "lk-tok", pretty(tok));
        if (special[i]) t.classList.add("special");
        t.title = `token ${i}`;
        t.addEventListener("mouseenter", () => {
          focus = { side, i };
          draw();
        });
        t.addEventListener("mouseleave", () => {
          focus = null;
          draw();
        });
        col.append(t);
        list.push(t);
      }
    });
    wrap.append(left, column, right);
    return { wrap, canvas, leftEls, rightEls, rh, width, T };
  }

  function clearLit() {
    for (const t of lit) t.style.backgroundColor = "";
    lit = [];
  }

  function drawLinks(data) {
    const { canvas, rh, width, leftEls, rightEls } = built;
    const band = Math.max(1, Math.min(built.T * rh, body.clientHeight || built.T * rh));
    const top = Math.min(body.scrollTop, built.T * rh - band);
    const bottom = top + band;
    const dpr = window.devicePixelRatio || 1;
    if (canvas.height !== Math.floor(band * dpr) || canvas.width !== Math.floor(width * dpr)) {
      canvas.width = Math.floor(width * dpr);
      canvas.height = Math.floor(band * dpr);
      canvas.style.width = `${width}px`;
      canvas.style.height = `${band}px`;
    }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, -top * dpr);
    ctx.clearRect(0, top, width, band);
    clearLit();
    const { T, K, idx, val } = data;
    const sel = selected().filter((hi) => hi < data.H);
    const k = focus ? K : Math.min(Math.max(1, model.get("top_k") || 1), K);
    const y = (i) => (i + 0.5) * rh;
    const glow = new Float32Array(T);
    const floor = Math.min(MIN_WEIGHT, 1 / T);
    let drawn = 0;
    for (const hi of sel) {
      // one path per opacity step: far fewer stroke() calls than one per link
      const buckets = Array.from({ length: 10 }, () => new Path2D());
      const used = new Array(10).fill(false);
      const add = (i, j, w) => {
        const y0 = y(i);
        const y1 = y(j);
        if ((y0 < top && y1 < top) || (y0 > bottom && y1 > bottom)) return; // not in view
        const b = Math.min(9, Math.floor(w * 10));
        buckets[b].moveTo(0, y0);
        buckets[b].lineTo(width, y1);
        used[b] = true;
        drawn += 1;
      };
      if (focus && focus.side === "right") {
        const j = focus.i;
        for (let i = 0; i < T; i++) {
          const base = (hi * T + i) * K;
          for (let r = 0; r < K; r++) {
            if (idx[base + r] === j) {
              const w = val[base + r];
              if (w >= floor) add(i, j, w);
              glow[i] += w;
              break;
            }
          }
        }
      } else {
        const rows = focus ? [focus.i] : null;
        const count = rows ? 1 : T;
        for (let n = 0; n < count; n++) {
          const i = rows ? rows[0] : n;
          const base = (hi * T + i) * K;
          for (let r = 0; r < k; r++) {
            const w = val[base + r];
            if (!(w >= floor)) break; // sorted: the rest are weaker
            add(i, idx[base + r], w);
            if (focus) glow[idx[base + r]] += w;
          }
        }
      }
      ctx.strokeStyle = palette()[hi].color;
      ctx.lineWidth = focus ? 2 : 1;
      for (let b = 0; b < 10; b++) {
        if (!used[b]) continue;
        ctx.globalAlpha = Math.min(1, (b + 1) / 10 / Math.sqrt(sel.length));
        ctx.stroke(buckets[b]);
      }
    }
    ctx.globalAlpha = 1;
    if (focus) {
      const targets = focus.side === "left" ? rightEls : leftEls;
      const scale = Math.max(1, sel.length);
      for (let j = 0; j < T; j++) {
        if (glow[j] > 0) {
          targets[j].style.backgroundColor = `rgba(31,119,180,${Math.min(1, glow[j] / scale)})`;
          lit.push(targets[j]);
        }
      }
      const own = (focus.side === "left" ? leftEls : rightEls)[focus.i];
      own.style.backgroundColor = "rgba(255,200,0,0.5)";
      lit.push(own);
    }
    root.dataset.links = String(drawn);
  }

  function drawHead() {
    const li = model.get("layer");
    const T = tokens().length;
    if (!built || built.T !== T) {
      built = buildHeadDom();
    }
    if (!body.contains(built.wrap)) body.replaceChildren(built.wrap);
    const data = s.got.get(li);
    if (!data) {
      status.textContent = `loading layer ${layers()[li]}…`;
      root.dataset.ready = "0";
      request(li);
      return;
    }
    status.textContent = T > 64 && !focus ? `strongest ${Math.min(model.get("top_k"), data.K)} ` +
      "links per token shown; hover a token for all of its links" : "";
    drawLinks(data);
    root.dataset.ready = "1";
    root.dataset.layer = String(li);
  }

  function drawModel() {
    const S = model.get("thumb_size") || 0;
    const thumbs = bytesOf(model.get("thumbs"));
    const L = layers().length;
    const H = heads().length;
    const roles = model.get("roles") || [];
    const grid = h("table", "lk-grid");
    const hdr = h("tr");
    hdr.append(h("th", "", ""));
    heads().forEach((head) => hdr.append(h("th", "", `${head}`)));
    grid.append(hdr);
    for (let li = 0; li < L; li++) {
      const row = h("tr");
      row.append(h("th", "", `${layers()[li]}`));
      for (let hi = 0; hi < H; hi++) {
        const cell = h("td");
        const c = h("canvas", "lk-thumb");
        c.width = Math.max(1, S);
        c.height = Math.max(1, S);
        if (S > 0 && thumbs.length >= L * H * S * S) {
          const off0 = (li * H + hi) * S * S; // uint8 levels, like the static heatmaps
          heatmap(c, S, (p) => thumbs[off0 + p] / 255, PALETTE.attention);
        }
        const role = (roles[li] || [])[hi];
        c.title = `layer ${layers()[li]}, head ${heads()[hi]}${role ? `: ${role}` : ""}`;
        c.addEventListener("click", () => {
          model.set("layer", li);
          model.set("selected_heads", [hi]);
          model.set("mode", "head");
          model.save_changes();
        });
        cell.append(c);
        row.append(cell);
      }
      grid.append(row);
    }
    body.replaceChildren(grid);
    status.textContent = "click a head to open it";
    root.dataset.ready = "1";
  }

  function draw() {
    if (model.get("mode") === "model") drawModel();
    else drawHead();
  }

  function refresh() {
    setTitle();
    buildControls();
    draw();
  }

  let scrollQueued = false;
  body.addEventListener("scroll", () => {
    if (scrollQueued || model.get("mode") === "model") return;
    scrollQueued = true;
    requestAnimationFrame(() => {
      scrollQueued = false;
      if (built && s.got.has(model.get("layer"))) drawLinks(s.got.get(model.get("layer")));
    });
  });
  headTab.addEventListener("click", () => {
    model.set("mode", "head");
    model.save_changes();
  });
  modelTab.addEventListener("click", () => {
    model.set("mode", "model");
    model.save_changes();
  });
  layerSelect.addEventListener("change", () => {
    model.set("layer", Number(layerSelect.value));
    model.save_changes();
  });
  kInput.addEventListener("change", () => {
    const k = Math.max(1, Math.min(32, Math.round(Number(kInput.value)) || 1));
    model.set("top_k", k);
    model.save_changes();
  });

  const onLayer = (li) => {
    if (li === model.get("layer") && model.get("mode") !== "model") draw();
  };
  s.listeners.add(onLayer);
  const unsubscribe = [
    subscribe(model, ["change:layer", "change:mode", "change:selected_heads", "change:top_k"],
      refresh),
    subscribe(model, ["change:tokens"], () => {
      built = null;
      s.got.clear();
      s.pending.clear();
      refresh();
    }),
  ];
  refresh();

  return () => {
    s.listeners.delete(onLayer);
    for (const undo of unsubscribe) undo();
    unlisten();
  };
}

export default {
  initialize({ model }) {
    return listenLayers(model);
  },
  render,
};
