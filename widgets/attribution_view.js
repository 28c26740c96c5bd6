// labkit AttributionView: tokens coloured by how much they push the model toward a label.
//
// State is traits only: tokens/special/spaces (lists), scores (one float32 buffer), scale (the
// |score| drawn at full colour when shared with other results, else null), target, labels,
// probs, method, methods, delta, n_steps, comprehensiveness, sufficiency, busy, error.
// Choosing another target or method sets the trait (and busy); the kernel recomputes through
// labkit.explain and sends new traits. Every token and label is written with textContent:
// no data is ever parsed as HTML.

// The colours (PALETTE.toward, green; PALETTE.against, red) and diverging() are _common.js's.

export function scaleOf(scores, special) {
  let top = 0;
  for (let i = 0; i < scores.length; i++) {
    if (special && special[i]) continue;
    const a = Math.abs(scores[i]);
    if (Number.isFinite(a) && a > top) top = a;
  }
  return top > 0 ? top : 1;
}

// The scale the tokens are drawn on and what the legend calls it: a shared one when the kernel
// set `scale` (before/after on one scale), else the view's own largest |score|.
export function scaleFor(shared, scores, special) {
  const isShared = typeof shared === "number" && Number.isFinite(shared) && shared > 0;
  const top = isShared ? shared : scaleOf(scores, special);
  const p = Number(top.toPrecision(2)); // two digits, as labkit.render's static legend
  const shown = p !== 0 && Math.abs(p) < 1e-4 ? p.toExponential(1).replace(".0e", "e") : String(p);
  return { top, label: `${isShared ? "shared" : "own"} scale ±${shown}` };
}

function fixed(v, digits = 3) {
  if (v === null || v === undefined || Number.isNaN(v)) return "n/a";
  return Number(v).toFixed(digits);
}

function signed(v) {
  if (!Number.isFinite(v)) return String(v);
  const s = Math.abs(v) >= 1e-3 || v === 0 ? v.toFixed(4) : v.toExponential(2);
  return v > 0 ? `+${s}` : s;
}

function option(select, value, label) {
  const o = h("option", null, label);
  o.value = value;
  select.appendChild(o);
}

function render({ model, el }) {
  const root = h("div", "labkit-attr");
  const bar = h("div", "labkit-attr-bar");
  const targetLabel = h("label", null, "explain ");
  const targetSel = h("select", "labkit-attr-target");
  targetLabel.appendChild(targetSel);
  const methodLabel = h("label", null, "method ");
  const methodSel = h("select", "labkit-attr-method");
  methodLabel.appendChild(methodSel);
  const aopc = h("button", "labkit-attr-aopc", "AOPC");
  aopc.title = "compute faithfulness (AOPC comprehensiveness and sufficiency)";
  const status = h("span", "labkit-attr-status");
  bar.append(targetLabel, methodLabel, aopc, status);

  const stats = h("div", "labkit-attr-stats");
  const tokensEl = h("div", "labkit-attr-tokens");
  const tip = h("div", "labkit-attr-tip");
  tip.style.display = "none";
  const legend = h("div", "labkit-attr-legend");
  const legLeft = h("span");
  const legBar = h("span", "labkit-attr-legend-bar");
  legBar.style.background =
    `linear-gradient(to right, ${rgba(PALETTE.against, 1)}, #fff, ${rgba(PALETTE.toward, 1)})`;
  const legRight = h("span");
  const legScale = h("span", "labkit-attr-scale");
  legend.append(legLeft, legBar, legRight, legScale);
  const error = h("div", "labkit-attr-error");
  root.append(bar, stats, tokensEl, legend, error, tip);
  el.appendChild(root);

  function fillSelect(select, values, current, labelOf) {
    select.replaceChildren();
    for (const v of values) option(select, v, labelOf(v));
    select.value = current;
  }

  function draw() {
    const tokens = model.get("tokens") || [];
    const special = model.get("special") || [];
    const spaces = model.get("spaces") || [];
    const scores = f32(model.get("scores"));
    const labels = model.get("labels") || [];
    const probs = model.get("probs") || [];
    const target = model.get("target");
    const interactive = !!model.get("interactive");
    const busy = !!model.get("busy");

    fillSelect(targetSel, labels, target, (l) => {
      const i = labels.indexOf(l);
      return i >= 0 && probs[i] !== undefined ? `${l} (${fixed(probs[i])})` : l;
    });
    const methods = model.get("methods") || [];
    const method = model.get("method");
    fillSelect(methodSel, methods.includes(method) ? methods : [...methods, method], method,
      (m) => m.replace(/_/g, " "));
    targetSel.disabled = methodSel.disabled = !interactive || busy;
    aopc.disabled = !interactive || busy || !!model.get("faithfulness");
    status.textContent = busy ? "computing…" : "";

    const parts = [];
    const ti = labels.indexOf(target);
    if (ti >= 0) parts.push(`p(${target}) = ${fixed(probs[ti])}`);
    let best = 0;
    for (let i = 1; i < probs.length; i++) if (probs[i] > probs[best]) best = i;
    if (labels.length && labels[best] !== target) parts.push(`predicted ${labels[best]}`);
    const delta = model.get("delta");
    if (delta !== null && delta !== undefined) {
      const steps = model.get("n_steps");
      parts.push(`completeness error ${fixed(delta, 4)}${steps ? ` at ${steps} steps` : ""}`);
    }
    const comp = model.get("comprehensiveness");
    if (comp !== null && comp !== undefined) {
      parts.push(`AOPC comprehensiveness ${fixed(comp)}, sufficiency ${fixed(model.get("sufficiency"))}`);
    }
    stats.textContent = parts.join(" · ");

    const { top, label: scaleLabel } = scaleFor(model.get("scale"), scores, special);
    tokensEl.replaceChildren();
    tokens.forEach((tok, i) => {
      if (i > 0 && (spaces.length ? spaces[i] : true)) tokensEl.appendChild(document.createTextNode(" "));
      const span = h("span", special[i] ? "labkit-attr-token labkit-attr-special" : "labkit-attr-token", tok);
      const value = i < scores.length ? scores[i] : 0;
      span.style.background = diverging(value, top);
      span.dataset.index = String(i);
      span.dataset.score = String(value);
      tokensEl.appendChild(span);
    });
    legLeft.textContent = `against ${target}`;
    legRight.textContent = `toward ${target}`;
    legScale.textContent = scaleLabel;
    legend.dataset.scale = String(top);
    legend.dataset.shared = model.get("scale") == null ? "0" : "1";
    root.dataset.busy = busy ? "1" : "0";
    error.textContent = model.get("error") || "";
  }

  tokensEl.addEventListener("mousemove", (ev) => {
    const span = ev.target.closest ? ev.target.closest(".labkit-attr-token") : null;
    if (!span) { tip.style.display = "none"; return; }
    tip.textContent = `${span.textContent}: ${signed(Number(span.dataset.score))}`;
    tip.style.display = "block";
    const box = root.getBoundingClientRect();
    tip.style.left = `${ev.clientX - box.left + 12}px`;
    tip.style.top = `${ev.clientY - box.top + 12}px`;
  });
  tokensEl.addEventListener("mouseleave", () => { tip.style.display = "none"; });

  function ask(name, value) {
    model.set("error", "");
    model.set("busy", true);
    model.set(name, value);
    model.save_changes();
  }
  targetSel.addEventListener("change", () => ask("target", targetSel.value));
  methodSel.addEventListener("change", () => ask("method", methodSel.value));
  aopc.addEventListener("click", () => ask("faithfulness", true));

  const names = ["tokens", "special", "spaces", "scores", "scale", "target", "labels", "probs", "method",
    "methods", "delta", "n_steps", "comprehensiveness", "sufficiency", "faithfulness",
    "interactive", "busy", "error"];
  const unsubscribe = subscribe(model, names.map((n) => `change:${n}`), () => draw());
  draw();
  return unsubscribe;
}

export default { render };
