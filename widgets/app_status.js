// labkit App status line: a message (info / busy / error / ok) and an optional progress bar.
// Text is set with textContent only: messages may quote user input.

function render({ model, el }) {
  const root = h("div", "labkit-app-status");
  const dot = h("span", "labkit-app-status-dot");
  const text = h("span", "labkit-app-status-text");
  const bar = h("div", "labkit-app-status-bar");
  const fill = h("div", "labkit-app-status-fill");
  bar.appendChild(fill);
  root.append(dot, text, bar);
  el.appendChild(root);

  function update() {
    const kind = model.get("kind") || "info";
    root.dataset.kind = kind;
    text.textContent = model.get("message") || "";
    const p = model.get("progress");
    bar.style.display = p === null || p === undefined || p < 0 ? "none" : "block";
    fill.style.width = `${Math.max(0, Math.min(1, p || 0)) * 100}%`;
  }
  const unsubscribe = subscribe(model, ["change:message", "change:kind", "change:progress"], update);
  update();
  return unsubscribe;
}

export default { render };
