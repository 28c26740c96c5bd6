// labkit ImageAttentionView: a Vision Transformer's attention drawn over the image, patch by
// patch. Click a patch to see where it looks (the class token's attention at first); pick a
// layer and a head, the mean of the heads, or attention rollout; the strip under the image
// shows every head of the layer for the same token (click one to open it).
//
// The image and the rollout [T, T] are traits; a layer's maps [heads, T, T] arrive as one fp16
// buffer when the view asks for them ({type: "layer", layer}), through the shared reply store
// (registered in initialize(), so no reply is lost). Text goes through textContent only.

const SHOWN = 280; // the image is drawn about this many pixels wide (whole multiples)
const THUMB = 56; // per-head maps in the strip

function decodeLayer(msg, buffers) {
  return { H: msg.heads, T: msg.tokens, w: f16(buffers[0]) };
}

const listenLayers = (model) =>
  listenReplies(model, "layer", (msg, buffers) => [msg.layer, decodeLayer(msg, buffers)]);

function render({ model, el }) {
  const s = replyStore(model);
  const unlisten = listenLayers(model);
  s.pending.clear();

  const root = h("div", "lk-img");
  root.dataset.ready = "0";
  const title = h("div", "lk-img-title");
  const controls = h("div", "lk-img-controls");
  const layerLabel = h("label", "", "Layer ");
  const layerSelect = h("select", "lk-img-layer");
  layerLabel.append(layerSelect);
  const headLabel = h("label", "", " Head ");
  const headSelect = h("select", "lk-img-head");
  headLabel.append(headSelect);
  const from = h("span", "lk-img-from");
  const reset = h("button", "lk-img-cls", "[CLS]");
  reset.title = "show the class token's attention";
  const status = h("span", "lk-img-status");
  controls.append(layerLabel, headLabel, from, reset, status);
  const stage = h("div", "lk-img-stage");
  const canvas = h("canvas", "lk-img-canvas");
  stage.append(canvas);
  const legend = h("div", "lk-img-legend");
  const strip = h("div", "lk-img-strip");
  root.append(title, controls, stage, legend, strip);
  el.append(root);

  const tokens = () => model.get("tokens") || [];
  const layers = () => model.get("layers") || [];
  const heads = () => model.get("heads") || [];
  const grid = () => model.get("grid") || [1, 1];
  const first = () => tokens().length - grid()[0] * grid()[1]; // special tokens before patches
  let rollout = null;
  let rolloutBytes = null;

  function rolloutRow(q) {
    const bytes = model.get("rollout");
    if (bytes !== rolloutBytes) {
      rolloutBytes = bytes;
      rollout = f16(bytes);
    }
    const T = tokens().length;
    return rollout.subarray(q * T, (q + 1) * T);
  }

  // the weights from token q to every token, for layer position li and head position hi
  // (-1: the mean of the heads); null while the layer is on its way
  function row(li, hi, q) {
    if (li < 0) return rolloutRow(q);
    const data = s.got.get(li);
    if (!data) return null;
    const T = data.T;
    const out = new Float32Array(T);
    const list = hi < 0 ? [...Array(data.H).keys()] : [hi];
    for (const k of list) {
      const base = (k * T + q) * T;
      for (let j = 0; j < T; j++) out[j] += data.w[base + j] / list.length;
    }
    return out;
  }

  function patchValues(r) {
    const n = grid()[0] * grid()[1];
    return r.subarray(first(), first() + n);
  }

  function buildControls() {
    layerSelect.replaceChildren();
    const roll = h("option", "", "rollout");
    roll.value = "-1";
    layerSelect.append(roll);
    layers().forEach((layer, li) => {
      const opt = h("option", "", `${layer}`);
      opt.value = String(li);
      layerSelect.append(opt);
    });
    layerSelect.value = String(model.get("layer"));
    headSelect.replaceChildren();
    const mean = h("option", "", "mean");
    mean.value = "-1";
    headSelect.append(mean);
    heads().forEach((head, hi) => {
      const opt = h("option", "", `${head}`);
      opt.value = String(hi);
      headSelect.append(opt);
    });
    headSelect.value = String(model.get("head"));
    headSelect.disabled = model.get("layer") < 0;
  }

  // the image with values [rows * cols] on the attention ramp, the image ghosted in
  function paint(c, values, scale, top, outline) {
    const H = model.get("height");
    const W = model.get("width");
    const C = model.get("channels") || 1;
    const [rows, cols] = grid();
    const img = bytesOf(model.get("image"));
    const ghost = model.get("ghost");
    c.width = W * scale;
    c.height = H * scale;
    const ctx = c.getContext("2d");
    const out = ctx.createImageData(W, H);
    const end = PALETTE.attention;
    for (let y = 0; y < H; y++) {
      const r = Math.min(rows - 1, Math.floor((y * rows) / H));
      for (let x = 0; x < W; x++) {
        const cc = Math.min(cols - 1, Math.floor((x * cols) / W));
        const t = top > 0 ? Math.min(1, values[r * cols + cc] / top) : 0;
        const p = (y * W + x) * C;
        const luma = C >= 3 ? (0.299 * img[p] + 0.587 * img[p + 1] + 0.114 * img[p + 2]) : img[p];
        const col = ramp(end, t);
        const o = 4 * (y * W + x);
        for (let k = 0; k < 3; k++) out.data[o + k] = (1 - ghost) * col[k] + ghost * luma;
        out.data[o + 3] = 255;
      }
    }
    // draw at 1:1, then enlarge without smoothing
    const tmp = document.createElement("canvas");
    tmp.width = W;
    tmp.height = H;
    tmp.getContext("2d").putImageData(out, 0, 0);
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(tmp, 0, 0, W * scale, H * scale);
    ctx.strokeStyle = "rgba(128,128,128,0.45)";
    ctx.lineWidth = 1;
    ctx.beginPath();
    for (let k = 1; k < cols; k++) {
      const x = Math.round((k * W * scale) / cols) + 0.5;
      ctx.moveTo(x, 0);
      ctx.lineTo(x, H * scale);
    }
    for (let k = 1; k < rows; k++) {
      const y = Math.round((k * H * scale) / rows) + 0.5;
      ctx.moveTo(0, y);
      ctx.lineTo(W * scale, y);
    }
    ctx.stroke();
    if (outline) {
      const [r, cc] = outline;
      ctx.strokeStyle = "rgb(255,170,0)";
      ctx.lineWidth = 2;
      ctx.strokeRect((cc * W * scale) / cols + 1, (r * H * scale) / rows + 1,
        (W * scale) / cols - 2, (H * scale) / rows - 2);
    }
  }

  function maxOf(values) {
    let top = 0;
    for (const v of values) if (v > top) top = v;
    return top;
  }

  function drawLegend(top) {
    legend.replaceChildren();
    const bar = h("span", "lk-img-bar");
    const end = PALETTE.attention;
    bar.style.background = `linear-gradient(to right, #fff, rgb(${end[0]},${end[1]},${end[2]}))`;
    legend.append(h("span", "", "0"), bar, h("span", "lk-img-top", sig(top)));
  }

  function drawStrip(li, q) {
    strip.replaceChildren();
    if (li < 0) return;
    const names = [...heads().map((hd) => `${hd}`), "mean"];
    names.forEach((name, k) => {
      const hi = k < heads().length ? k : -1;
      const values = patchValues(row(li, hi, q));
      const cell = h("div", "lk-img-cell");
      const c = h("canvas", "lk-img-thumb");
      const scale = Math.max(1, Math.floor(THUMB / Math.max(model.get("width"), 1)));
      paint(c, values, scale, maxOf(values), null);
      c.style.width = `${THUMB}px`;
      cell.classList.toggle("active", hi === model.get("head"));
      cell.title = hi < 0 ? "mean of the heads" : `head ${name}`;
      c.addEventListener("click", () => {
        model.set("head", hi);
        model.save_changes();
      });
      cell.append(c, h("div", "lk-img-name", hi < 0 ? "mean" : `head ${name}`));
      strip.append(cell);
    });
  }

  function draw() {
    const li = model.get("layer");
    const hi = model.get("head");
    const q = Math.max(0, Math.min(tokens().length - 1, model.get("query")));
    const toks = tokens();
    title.textContent = `${model.get("model_name") || "model"} · ${grid()[0]}x${grid()[1]} ` +
      `patches + [CLS] · ${layers().length} layers x ${heads().length} heads`;
    from.textContent = `from ${toks[q] || ""}`;
    const r = row(li, hi, q);
    if (!r) {
      status.textContent = `loading layer ${layers()[li]}…`;
      root.dataset.ready = "0";
      requestReply(model, li, { type: "layer", layer: li });
      return;
    }
    const values = patchValues(r);
    const top = maxOf(values);
    const W = model.get("width") || 1;
    const scale = Math.max(1, Math.round(SHOWN / W));
    const [rows, cols] = grid();
    const p = q - first();
    paint(canvas, values, scale, top, p >= 0 ? [Math.floor(p / cols), p % cols] : null);
    drawLegend(top);
    drawStrip(li, q);
    const what = li < 0 ? "attention rollout" : `layer ${layers()[li]}, ` +
      (hi < 0 ? "mean of heads" : `head ${heads()[hi]}`);
    status.textContent = `${what} · click a patch to see where it looks`;
    root.dataset.ready = "1";
    root.dataset.layer = String(li);
    root.dataset.head = String(hi);
    root.dataset.query = String(q);
    root.dataset.top = String(top);
    root.dataset.rows = String(rows);
  }

  canvas.addEventListener("click", (ev) => {
    const rect = canvas.getBoundingClientRect();
    const [rows, cols] = grid();
    const c = Math.min(cols - 1, Math.floor(((ev.clientX - rect.left) / rect.width) * cols));
    const r = Math.min(rows - 1, Math.floor(((ev.clientY - rect.top) / rect.height) * rows));
    model.set("query", first() + r * cols + c);
    model.save_changes();
  });
  reset.addEventListener("click", () => {
    model.set("query", 0);
    model.save_changes();
  });
  layerSelect.addEventListener("change", () => {
    model.set("layer", Number(layerSelect.value));
    model.save_changes();
  });
  headSelect.addEventListener("change", () => {
    model.set("head", Number(headSelect.value));
    model.save_changes();
  });

  function refresh() {
    buildControls();
    draw();
  }
  const onLayer = (li) => {
    if (li === model.get("layer")) draw();
  };
  s.listeners.add(onLayer);
  const unsubscribe = subscribe(
    model,
    ["change:layer", "change:head", "change:query", "change:image", "change:rollout",
      "change:tokens", "change:model_name"],
    refresh,
  );
  refresh();

  return () => {
    s.listeners.delete(onLayer);
    unsubscribe();
    unlisten();
  };
}

export default {
  initialize({ model }) {
    return listenLayers(model);
  },
  render,
};
