// labkit ImageAttributionView: an image explanation drawn over the image, green toward the
// explained label and red against it (the text view's colours and opacity). Show the pixel
// scores or their sums per patch; hover a patch for its score; pick another label to explain
// (the kernel recomputes and sends new scores; `busy` meanwhile).
//
// Scores arrive as float32 buffers (traits); text goes through textContent only.

const SHOWN = 280; // the image is drawn about this many pixels wide (whole multiples)
const LIFT = 0.4; // the image's blacks lifted toward white under the colours

function render({ model, el }) {
  const root = h("div", "lk-iattr");
  root.dataset.ready = "0";
  const title = h("div", "lk-iattr-title");
  const controls = h("div", "lk-iattr-controls");
  const targetLabel = h("label", "", "Explain ");
  const targetSelect = h("select", "lk-iattr-target");
  targetLabel.append(targetSelect);
  const pixelsTab = h("button", "lk-tab", "Pixels");
  const patchesTab = h("button", "lk-tab", "Patches");
  const status = h("span", "lk-iattr-status");
  controls.append(targetLabel, pixelsTab, patchesTab, status);
  const canvas = h("canvas", "lk-iattr-canvas");
  const hover = h("div", "lk-iattr-hover");
  const legend = h("div", "lk-iattr-legend");
  root.append(title, controls, canvas, hover, legend);
  el.append(root);

  const grid = () => model.get("grid") || [1, 1];

  function values() {
    return model.get("mode") === "patches" ? f32(model.get("patch_scores")) :
      f32(model.get("scores"));
  }

  function topOf(v) {
    let top = 0;
    for (const x of v) if (Math.abs(x) > top) top = Math.abs(x);
    return top > 0 ? top : 1;
  }

  function paint() {
    const H = model.get("height");
    const W = model.get("width");
    const C = model.get("channels") || 1;
    const [rows, cols] = grid();
    const img = bytesOf(model.get("image"));
    const v = values();
    const perPatch = model.get("mode") === "patches";
    const top = topOf(v);
    const scale = Math.max(1, Math.round(SHOWN / Math.max(W, 1)));
    const tmp = document.createElement("canvas");
    tmp.width = W;
    tmp.height = H;
    const tctx = tmp.getContext("2d");
    const out = tctx.createImageData(W, H);
    for (let y = 0; y < H; y++) {
      const r = Math.min(rows - 1, Math.floor((y * rows) / H));
      for (let x = 0; x < W; x++) {
        const c = Math.min(cols - 1, Math.floor((x * cols) / W));
        const s = perPatch ? v[r * cols + c] : v[y * W + x];
        const p = (y * W + x) * C;
        const luma = C >= 3 ? (0.299 * img[p] + 0.587 * img[p + 1] + 0.114 * img[p + 2]) : img[p];
        const base = 255 * LIFT + (1 - LIFT) * luma;
        const t = Math.max(-1, Math.min(1, s / top));
        const col = t >= 0 ? PALETTE.toward : PALETTE.against;
        const a = Math.abs(t) * PALETTE.opacity;
        const o = 4 * (y * W + x);
        for (let k = 0; k < 3; k++) out.data[o + k] = (1 - a) * base + a * col[k];
        out.data[o + 3] = 255;
      }
    }
    tctx.putImageData(out, 0, 0);
    canvas.width = W * scale;
    canvas.height = H * scale;
    const ctx = canvas.getContext("2d");
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(tmp, 0, 0, W * scale, H * scale);
    ctx.strokeStyle = "rgba(128,128,128,0.45)";
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
    return top;
  }

  function drawLegend(top) {
    legend.replaceChildren();
    const target = model.get("target");
    const bar = h("span", "lk-iattr-bar");
    const neg = PALETTE.against;
    const pos = PALETTE.toward;
    bar.style.background = `linear-gradient(to right, rgb(${neg.join(",")}), #fff, ` +
      `rgb(${pos.join(",")}))`;
    legend.append(h("span", "", `against ${target}`), bar, h("span", "", `toward ${target}`),
      h("span", "lk-iattr-scale", `±${sig(top)}`));
  }

  function draw() {
    const labels = model.get("labels") || [];
    const probs = model.get("probs") || [];
    const target = model.get("target");
    const i = labels.indexOf(target);
    const method = String(model.get("method") || "").replace(/_/g, " ");
    const delta = model.get("delta");
    title.textContent = `${model.get("model_name") || "model"} · ${target} ` +
      `(p=${i >= 0 ? (probs[i] || 0).toFixed(3) : "?"}) · ${method}` +
      (delta === null || delta === undefined ? "" : ` · completeness error ${sig(delta)}`);
    targetSelect.replaceChildren();
    labels.forEach((label, k) => {
      const opt = h("option", "", `${label} (p=${(probs[k] || 0).toFixed(3)})`);
      opt.value = label;
      targetSelect.append(opt);
    });
    targetSelect.value = target;
    targetSelect.disabled = !model.get("interactive") || model.get("busy");
    const patches = model.get("mode") === "patches";
    pixelsTab.classList.toggle("active", !patches);
    patchesTab.classList.toggle("active", patches);
    status.textContent = model.get("busy") ? "explaining…" : (model.get("error") || "");
    drawLegend(paint());
    root.dataset.ready = model.get("busy") ? "0" : "1";
    root.dataset.mode = patches ? "patches" : "pixels";
    root.dataset.target = target;
  }

  canvas.addEventListener("mousemove", (ev) => {
    const rect = canvas.getBoundingClientRect();
    const [rows, cols] = grid();
    const c = Math.min(cols - 1, Math.floor(((ev.clientX - rect.left) / rect.width) * cols));
    const r = Math.min(rows - 1, Math.floor(((ev.clientY - rect.top) / rect.height) * rows));
    const v = f32(model.get("patch_scores"));
    hover.textContent = `patch (${r},${c}): ${sig(v[r * cols + c])}`;
    root.dataset.hover = `${r},${c}`;
  });
  canvas.addEventListener("mouseleave", () => {
    hover.textContent = "";
  });
  pixelsTab.addEventListener("click", () => {
    model.set("mode", "pixels");
    model.save_changes();
  });
  patchesTab.addEventListener("click", () => {
    model.set("mode", "patches");
    model.save_changes();
  });
  targetSelect.addEventListener("change", () => {
    model.set("target", targetSelect.value);
    model.save_changes();
  });

  const unsubscribe = subscribe(
    model,
    ["change:mode", "change:scores", "change:patch_scores", "change:target", "change:busy",
      "change:error", "change:probs", "change:image", "change:model_name"],
    draw,
  );
  draw();
  return unsubscribe;
}

export default { render };
