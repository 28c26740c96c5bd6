// labkit App status line: a message (info / busy / error / ok) and an optional progress bar.
// Text is set with textContent only: messages may quote user input.

function render({ model, el }) {
  const root = document.createElement("div");
  root.className = "labkit-app-status";
  const dot = document.createElement("span");
  dot.className = "labkit-app-status-dot";
  const text = document.createElement("span");
  text.className = "labkit-app-status-text";
  const bar = document.createElement("div");
  bar.className = "labkit-app-status-bar";
  const fill = document.createElement("div");
  fill.className = "labkit-app-status-fill";
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
  model.on("change:message", update);
  model.on("change:kind", update);
  model.on("change:progress", update);
  update();
  return () => {
    model.off("change:message", update);
    model.off("change:kind", update);
    model.off("change:progress", update);
  };
}

export default { render };
