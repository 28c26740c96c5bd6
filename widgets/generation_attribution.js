// labkit GenerationAttributionView: which prompt tokens drove each generated token.
//
// State is traits only: tokens/spaces (the prompt's P tokens as shown), target_tokens /
// target_spaces / target_special / target_logprobs (the answer's N tokens), scores (one float32
// buffer [N, P], row-major), sequence_scores (float32 [P]: the whole answer), delta (per answer
// token, integrated gradients only), scale (a shared |score| at full colour, else null),
// selected (the answer token whose row colours the prompt; -1 = the whole answer). Hovering an
// answer token or a heatmap row previews its row; a click keeps it, a second click (or "whole
// answer") goes back. Every text is written with textContent: nothing is parsed as HTML.

// The colours (PALETTE.toward, PALETTE.against, PALETTE.opacity), diverging() and ramp() are
// _common.js's, the same numbers labkit.render draws the static view with.

function largest(values) {
  let top = 0;
  for (let i = 0; i < values.length; i++) {
    const a = Math.abs(values[i]);
    if (Number.isFinite(a) && a > top) top = a;
  }
  return top > 0 ? top : 1;
}

// The scale a row is drawn on and what the legend calls it: the shared one when the kernel set
// `scale`, else the sequence row's own largest |score| or, for answer tokens, the matrix's (so
// that rows compare).
export function rowScale(shared, seq, matrix, row) {
  const isShared = typeof shared === "number" && Number.isFinite(shared) && shared > 0;
  const top = isShared ? shared : largest(row < 0 ? seq : matrix);
  return { top, label: `${isShared ? "shared" : "own"} scale ±${sig(top, 2)}` };
}

function signed(v) {
  if (!Number.isFinite(v)) return String(v);
  const s = Math.abs(v) >= 1e-3 || v === 0 ? v.toFixed(4) : v.toExponential(2);
  return v > 0 ? `+${s}` : s;
}

// The colour of one heatmap cell: what diverging() gives a span, as it looks on white.
function cellColour(value, top) {
  const x = Math.max(-1, Math.min(1, value / top));
  return ramp(x >= 0 ? PALETTE.toward : PALETTE.against, Math.abs(x) * PALETTE.opacity);
}

function render({ model, el }) {
  const root = h("div", "labkit-gattr");
  const stats = h("div", "labkit-gattr-stats");
  const promptCaption = h("div", "labkit-gattr-caption");
  const promptEl = h("div", "labkit-gattr-prompt");
  const answerBar = h("div", "labkit-gattr-caption");
  const answerLabel = h("span", null, "answer (hover or click a token):");
  const whole = h("button", "labkit-gattr-whole", "whole answer");
  whole.title = "colour the prompt by the whole answer again";
  answerBar.append(answerLabel, whole);
  const answerEl = h("div", "labkit-gattr-answer");
  const legend = h("div", "labkit-gattr-legend");
  const legLeft = h("span");
  const legBar = h("span", "labkit-gattr-legend-bar");
  legBar.style.background =
    `linear-gradient(to right, ${rgba(PALETTE.against, 1)}, #fff, ${rgba(PALETTE.toward, 1)})`;
  const legRight = h("span");
  const legScale = h("span", "labkit-gattr-scale");
  legend.append(legLeft, legBar, legRight, legScale);
  const matrixCaption = h("div", "labkit-gattr-caption",
    "every answer token (rows) by prompt token (columns): hover a cell, click a row");
  const matrixBox = h("div", "labkit-gattr-matrix");
  const canvas = document.createElement("canvas");
  canvas.className = "labkit-gattr-canvas";
  const mark = h("div", "labkit-gattr-row-mark");
  matrixBox.append(canvas, mark);
  const tip = h("div", "labkit-gattr-tip");
  tip.style.display = "none";
  root.append(stats, promptCaption, promptEl, answerBar, answerEl, legend, matrixCaption,
    matrixBox, tip);
  el.appendChild(root);

  let shown = -1; // the row the prompt is coloured by now (a preview or the selection)
  let cell = 8; // px of one heatmap cell

  const data = () => {
    const tokens = model.get("tokens") || [];
    const answer = model.get("target_tokens") || [];
    return {
      tokens,
      answer,
      P: tokens.length,
      N: answer.length,
      scores: f32(model.get("scores")),
      seq: f32(model.get("sequence_scores")),
    };
  };

  function rowOf(d, row) {
    if (row < 0 || row >= d.N) return d.seq;
    return d.scores.subarray(row * d.P, (row + 1) * d.P);
  }

  function drawStats(d) {
    const parts = [String(model.get("method") || "").replace(/_/g, " ")];
    parts.push(`${d.N} token${d.N === 1 ? "" : "s"} of ${model.get("generated")
      ? "the model's greedy continuation" : "the given target"}`);
    const lp = model.get("logprob");
    if (typeof lp === "number") parts.push(`log p = ${lp.toFixed(3)}`);
    const delta = model.get("delta") || [];
    if (delta.length) {
      const steps = model.get("n_steps");
      parts.push(`completeness error up to ${sig(Math.max(...delta), 3)} nats${
        steps ? ` at ${steps} steps` : ""}`);
    }
    if (model.get("chat")) parts.push("prompt in the chat template (its own tokens fixed)");
    stats.textContent = parts.join(" · ");
  }

  function colourPrompt(d, row) {
    shown = row;
    const values = rowOf(d, row);
    const { top, label } = rowScale(model.get("scale"), d.seq, d.scores, row);
    const spans = promptEl.children;
    for (let j = 0; j < spans.length; j++) {
      const v = j < values.length ? values[j] : 0;
      spans[j].style.background = diverging(v, top);
      spans[j].dataset.score = String(v);
    }
    const selected = model.get("selected");
    for (const span of answerEl.children) {
      const i = Number(span.dataset.index);
      span.classList.toggle("labkit-gattr-selected", i === selected);
      span.classList.toggle("labkit-gattr-shown", i === row);
    }
    if (row < 0 || row >= d.N) {
      promptCaption.textContent = "prompt, coloured by how much each token drove the whole answer:";
    } else {
      const lps = model.get("target_logprobs") || [];
      const lp = lps[row];
      promptCaption.textContent = `prompt, coloured by how much each token drove answer token ${
        row} “${d.answer[row]}”${typeof lp === "number" ? ` (log p ${lp.toFixed(3)})` : ""}:`;
    }
    const what = row < 0 || row >= d.N ? "the answer" : `“${d.answer[row]}”`;
    legLeft.textContent = `lowers ${what}`;
    legRight.textContent = `raises ${what}`;
    legScale.textContent = label;
    legend.dataset.scale = String(top);
    root.dataset.row = String(row);
    if (row >= 0 && row < d.N) {
      mark.style.display = "block";
      mark.style.top = `${row * cell}px`;
      mark.style.height = `${cell}px`;
      mark.style.width = `${d.P * cell}px`;
    } else {
      mark.style.display = "none";
    }
  }

  function drawMatrix(d) {
    const { top } = rowScale(model.get("scale"), d.seq, d.scores, 0);
    cell = Math.max(1, Math.min(14, Math.floor(560 / Math.max(d.P, 1))));
    canvas.width = Math.max(d.P, 1);
    canvas.height = Math.max(d.N, 1);
    canvas.style.width = `${d.P * cell}px`;
    canvas.style.height = `${d.N * cell}px`;
    if (!d.P || !d.N) return;
    const ctx = canvas.getContext("2d");
    const img = ctx.createImageData(d.P, d.N);
    for (let p = 0; p < d.P * d.N; p++) {
      const [r, g, b] = cellColour(p < d.scores.length ? d.scores[p] : 0, top);
      img.data[4 * p] = r;
      img.data[4 * p + 1] = g;
      img.data[4 * p + 2] = b;
      img.data[4 * p + 3] = 255;
    }
    ctx.putImageData(img, 0, 0);
  }

  function draw() {
    const d = data();
    drawStats(d);
    const spaces = model.get("spaces") || [];
    promptEl.replaceChildren();
    d.tokens.forEach((tok, j) => {
      if (j > 0 && (spaces.length ? spaces[j] : true)) promptEl.appendChild(document.createTextNode(" "));
      const span = h("span", "labkit-gattr-token", tok);
      span.dataset.index = String(j);
      promptEl.appendChild(span);
    });
    const tspaces = model.get("target_spaces") || [];
    const special = model.get("target_special") || [];
    answerEl.replaceChildren();
    d.answer.forEach((tok, i) => {
      if (i > 0 && tspaces[i]) answerEl.appendChild(document.createTextNode(" "));
      const span = h("span", special[i]
        ? "labkit-gattr-answer-token labkit-gattr-special" : "labkit-gattr-answer-token", tok);
      span.dataset.index = String(i);
      answerEl.appendChild(span);
    });
    drawMatrix(d);
    const selected = model.get("selected");
    colourPrompt(d, Number.isInteger(selected) ? selected : -1);
  }

  function select(i) {
    const now = model.get("selected");
    model.set("selected", i === now ? -1 : i);
    model.save_changes();
  }

  function showTip(ev, text) {
    tip.textContent = text;
    tip.style.display = "block";
    const box = root.getBoundingClientRect();
    tip.style.left = `${ev.clientX - box.left + 12}px`;
    tip.style.top = `${ev.clientY - box.top + 12}px`;
  }
  const hideTip = () => { tip.style.display = "none"; };
  const back = () => colourPrompt(data(), model.get("selected"));

  answerEl.addEventListener("mouseover", (ev) => {
    const span = ev.target.closest ? ev.target.closest(".labkit-gattr-answer-token") : null;
    if (span) colourPrompt(data(), Number(span.dataset.index));
  });
  answerEl.addEventListener("mouseleave", back);
  answerEl.addEventListener("click", (ev) => {
    const span = ev.target.closest ? ev.target.closest(".labkit-gattr-answer-token") : null;
    if (span) select(Number(span.dataset.index));
  });
  whole.addEventListener("click", () => {
    model.set("selected", -1);
    model.save_changes();
  });
  promptEl.addEventListener("mousemove", (ev) => {
    const span = ev.target.closest ? ev.target.closest(".labkit-gattr-token") : null;
    if (!span) { hideTip(); return; }
    showTip(ev, `${span.textContent}: ${signed(Number(span.dataset.score))}`);
  });
  promptEl.addEventListener("mouseleave", hideTip);

  function cellAt(ev) {
    const box = canvas.getBoundingClientRect();
    const d = data();
    const j = Math.floor((ev.clientX - box.left) / cell);
    const i = Math.floor((ev.clientY - box.top) / cell);
    return i >= 0 && i < d.N && j >= 0 && j < d.P ? { i, j, d } : null;
  }
  canvas.addEventListener("mousemove", (ev) => {
    const at = cellAt(ev);
    if (!at) { hideTip(); return; }
    const { i, j, d } = at;
    if (shown !== i) colourPrompt(d, i);
    showTip(ev, `answer “${d.answer[i]}” ← prompt “${d.tokens[j]}”: ${signed(d.scores[i * d.P + j])}`);
  });
  canvas.addEventListener("mouseleave", () => { hideTip(); back(); });
  canvas.addEventListener("click", (ev) => {
    const at = cellAt(ev);
    if (at) select(at.i);
  });

  const names = ["tokens", "spaces", "target_tokens", "target_spaces", "target_special",
    "target_logprobs", "logprob", "scores", "sequence_scores", "delta", "n_steps", "scale",
    "method", "chat", "generated"];
  const offData = subscribe(model, names.map((n) => `change:${n}`), () => draw());
  const offSelected = subscribe(model, ["change:selected"], () => back());
  draw();
  return () => { offData(); offSelected(); };
}

export default { render };
