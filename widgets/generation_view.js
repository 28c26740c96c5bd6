// labkit GenerationView: a streamed generation, live, with a Stop button.
//
// The text never travels as a trait. The kernel sends what is new as small custom messages,
// {type: "text", start, text, reply}: "from offset `start` the text is `text`". The store keeps
// what it holds before `start` and writes `text` after it, so a message seen twice changes
// nothing and a correction of the end replaces it. The trait `length` says how many characters
// the kernel has sent; a store that holds fewer (a message lost before its listener existed, a
// reload) or that sees a `start` beyond its end asks {type: "sync", have} and is answered from
// there. The listener lives in initialize() and feeds one store per model, so nothing is lost
// while a view is being built, and a second view of the same model draws at once. Stop sends
// {type: "control", action: "stop"}. All text goes through textContent (h() is _common.js's).

const STREAMS = new WeakMap(); // model -> TextStore

class TextStore {
  constructor(model) {
    this.model = model;
    this.text = "";
    this.listeners = new Set();
    this.pending = false;
    this.timer = null;
    this.backoff = 2000;
    this.onMsg = (msg) => this.receive(msg);
    this.onLength = () => this.check();
    model.on("msg:custom", this.onMsg);
    model.on("change:length", this.onLength);
  }

  detach() {
    clearTimeout(this.timer);
    this.model.off("msg:custom", this.onMsg);
    this.model.off("change:length", this.onLength);
  }

  sync() {
    if (this.pending) return;
    this.pending = true;
    this.model.send({ type: "sync", have: this.text.length });
    clearTimeout(this.timer);
    this.timer = setTimeout(() => { // no answer (kernel busy or gone): ask again, less often
      this.pending = false;
      this.backoff = Math.min(this.backoff * 2, 30000);
      this.check();
    }, this.backoff);
  }

  check() {
    if (this.text.length < (this.model.get("length") || 0)) this.sync();
  }

  receive(msg) {
    if (!msg || msg.type !== "text") return;
    if (msg.reply) { this.pending = false; clearTimeout(this.timer); this.backoff = 2000; }
    const start = Number(msg.start) || 0;
    if (start > this.text.length) { this.sync(); return; } // a gap: ask for what is missing
    this.text = this.text.slice(0, start) + String(msg.text ?? "");
    this.notify();
  }

  notify() { for (const fn of this.listeners) fn(); }
}

function storeFor(model) {
  let store = STREAMS.get(model);
  if (!store) {
    store = new TextStore(model);
    STREAMS.set(model, store);
  }
  return store;
}

// What the badge says, in the kernel's words: a Stop on its way reads "stopping…".
export function statusLabel(status, stopRequested) {
  if (status === "running" && stopRequested) return "stopping…";
  return status || "running";
}

// The facts line: tokens (of the most while running), tokens/s, and how it finished.
export function factsText(s) {
  const n = Number(s.n_tokens) || 0;
  const parts = [];
  if (s.status === "running") parts.push(`${n.toLocaleString("en-US")} / ${(Number(s.max_new_tokens) || 0).toLocaleString("en-US")} tokens`);
  else parts.push(`${n.toLocaleString("en-US")} token${n === 1 ? "" : "s"}`);
  if (n) parts.push(`${sig(Number(s.tokens_per_s) || 0)} tokens/s`);
  if (s.finish_label) parts.push(`finished: ${s.finish_label}`);
  return parts.join(" · ");
}

class StreamView {
  constructor(model, store, el) {
    this.model = model;
    this.store = store;
    this.frame = 0;
    this.stopSent = false;
    this.root = h("div", "labkit-gen");
    this.prompt = h("div", "labkit-gen-prompt");
    const out = h("div", "labkit-gen-out");
    this.text = h("span", "labkit-gen-text");
    this.caret = h("span", "labkit-gen-caret", "▌");
    out.append(this.text, this.caret);
    const bar = h("div", "labkit-gen-bar");
    this.stop = h("button", "labkit-gen-stop", "Stop");
    this.stop.title = "end the generation after the token being made";
    this.stop.addEventListener("click", () => this.pressStop());
    this.status = h("span", "labkit-gen-status");
    this.facts = h("span", "labkit-gen-facts");
    bar.append(this.stop, this.status, this.facts);
    this.error = h("div", "labkit-gen-error");
    this.root.append(this.prompt, out, bar, this.error);
    el.appendChild(this.root);
    this.onStore = () => this.schedule();
    store.listeners.add(this.onStore);
    this.unsubscribe = subscribe(
      model,
      ["prompt", "status", "stop_requested", "n_tokens", "max_new_tokens", "tokens_per_s",
        "finish_label", "error"].map((name) => `change:${name}`),
      () => this.schedule(),
    );
    this.draw();
    store.check(); // what was sent before this page listened
  }

  pressStop() {
    if (this.stopSent || this.model.get("status") !== "running") return;
    this.stopSent = true; // the button answers at once; the kernel's words follow
    this.model.send({ type: "control", action: "stop" });
    this.draw();
  }

  schedule() {
    if (this.frame) return;
    const raf = typeof requestAnimationFrame === "function" ? requestAnimationFrame : (f) => setTimeout(f, 16);
    this.frame = raf(() => { this.frame = 0; this.draw(); });
  }

  draw() {
    const m = this.model;
    const status = m.get("status") || "running";
    const running = status === "running";
    const stopping = running && (m.get("stop_requested") || this.stopSent);
    this.prompt.textContent = m.get("prompt") || "";
    if (this.text.textContent !== this.store.text) this.text.textContent = this.store.text;
    this.text.dataset.length = String(this.store.text.length);
    this.caret.hidden = !running;
    this.root.dataset.status = status;
    this.status.textContent = statusLabel(status, stopping);
    this.status.dataset.status = stopping ? "stopping" : status;
    const colour = PALETTE.status[stopping ? "stopping" : status === "done" ? "finished" : status];
    this.status.style.background = colour || "#777";
    this.stop.disabled = !running || stopping;
    this.facts.textContent = factsText({
      status,
      n_tokens: m.get("n_tokens"),
      max_new_tokens: m.get("max_new_tokens"),
      tokens_per_s: m.get("tokens_per_s"),
      finish_label: m.get("finish_label"),
    });
    const error = m.get("error") || "";
    this.error.textContent = error;
    this.error.hidden = !error;
  }

  destroy() {
    this.store.listeners.delete(this.onStore);
    this.unsubscribe();
    this.root.remove();
  }
}

export default {
  initialize({ model }) {
    const store = storeFor(model);
    return () => { store.detach(); STREAMS.delete(model); };
  },

  render({ model, el }) {
    const view = new StreamView(model, storeFor(model), el);
    return () => view.destroy();
  },
};
