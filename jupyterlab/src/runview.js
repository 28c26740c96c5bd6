// A run's full live chart in the main area: labkit's anywidget panel (widgets/run_panel.js),
// rendered with a model of our own in place of the kernel's. RunFeed reads the run's record
// through GET labkit/run?id&offset (only the bytes added since the last read) and plays it to the
// panel as the kernel's RunPanel does (labkit/ui/panel.py): "rows" messages with one binary
// buffer per column, answers to the panel's "sync", and the traits the panel shows. The panel's
// buttons ({type: "control", action}) become POST labkit/run/control; the answer (or why not)
// shows as the panel's notice.
import { Widget } from '@lumino/widgets';

import runPanel from '../../widgets/run_panel.js';

import { ENDED, RequestError, statusLabel } from './api.js';
import { labkitIcon } from './icon.js';

const COLUMNS = [
  ['step', Float64Array],
  ['epoch', Float32Array],
  ['loss', Float32Array],
  ['lr', Float32Array],
];
const PROMPT_CHARS = 400; // labkit.render.run: what a sample row keeps for display
const TEXT_CHARS = 600;
const ANSWER_CHARS = 120;
let KEYS = 0;

function clip(text, n) {
  const s = String(text ?? '');
  return s.length > n ? `${s.slice(0, n - 1)}…` : s;
}

function same(a, b) {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || !a || !b) return false;
  return JSON.stringify(a) === JSON.stringify(b);
}

// The part of the anywidget model interface run_panel.js uses.
export class PanelModel {
  constructor(state, onSend) {
    this.state = { ...state };
    this.handlers = new Map();
    this.onSend = onSend;
  }

  get(name) {
    return this.state[name];
  }

  set(name, value) {
    if (same(this.state[name], value)) return;
    this.state[name] = value;
    this.emit(`change:${name}`, value);
  }

  save_changes() {} // the view settings (smoothing, log scale, window) stay in this page

  on(event, fn) {
    if (!this.handlers.has(event)) this.handlers.set(event, new Set());
    this.handlers.get(event).add(fn);
  }

  off(event, fn) {
    if (!event) this.handlers.clear();
    else if (!fn) this.handlers.delete(event);
    else this.handlers.get(event)?.delete(fn);
  }

  send(msg) {
    this.onSend(msg);
  }

  emit(event, ...args) {
    for (const fn of [...(this.handlers.get(event) || [])]) {
      try {
        fn(...args);
      } catch (err) {
        console.error('labkit: the run view failed on', event, err);
      }
    }
  }
}

// What one run's record holds so far, as the panel's messages are made of.
class Record {
  constructor() {
    this.cols = { step: [], epoch: [], loss: [], lr: [], time: [] };
    this.evals = [];
    this.samples = [];
    this.saves = [];
    this.header = null;
    this.end = null;
  }

  get n() {
    return this.cols.step.length;
  }

  add(chunk) {
    const steps = chunk.steps || {};
    const count = (steps.step || []).length;
    for (const name of Object.keys(this.cols)) {
      const values = steps[name] || [];
      for (let i = 0; i < count; i++) this.cols[name].push(values[i] ?? null);
    }
    for (const [step, metrics] of chunk.evals || []) this.evals.push([step, metrics || {}]);
    for (const [step, prompts, texts] of chunk.samples || []) {
      const ps = (prompts || []).map((p) => clip(p, PROMPT_CHARS));
      const ts = (texts || []).map((t) => clip(t, TEXT_CHARS));
      const first = texts && texts.length ? String(texts[0]).split(/\s+/).join(' ').trim() : '';
      this.samples.push([step, ps, ts, clip(first, ANSWER_CHARS)]);
    }
    for (const [, path] of chunk.saves || []) this.saves.push(String(path));
    if (chunk.end) this.end = chunk.end;
  }

  // the panel's "rows" message for rows / evaluations / samples from the given starts
  message(start, evalsStart, samplesStart, reply) {
    const buffers = COLUMNS.map(([name, T]) => {
      const values = this.cols[name].slice(start);
      return T.from(values, (v) => (v === null || v === undefined ? NaN : v)).buffer;
    });
    const msg = {
      type: 'rows',
      start,
      n: this.n - start,
      cols: COLUMNS.map(([name]) => name),
      evals_start: evalsStart,
      evals: this.evals.slice(evalsStart),
      samples_start: samplesStart,
      samples: this.samples.slice(samplesStart),
      reply,
    };
    return [msg, buffers];
  }

  // seconds left, from the pace of the last steps (like MetricHistory.eta); -1 while unknown
  eta(total) {
    const n = this.n, times = this.cols.time, steps = this.cols.step;
    if (!total || n < 2) return -1;
    const i = Math.max(0, n - 50);
    const dt = times[n - 1] - times[i], ds = steps[n - 1] - steps[i];
    if (!(dt > 0 && ds > 0)) return -1;
    return Math.max(0, ((total - steps[n - 1]) * dt) / ds);
  }
}

export class RunView extends Widget {
  constructor(api, id, summary) {
    super();
    this.api = api;
    this.runId = id;
    this.id = `labkit-run-${(++KEYS).toString(36)}`;
    this.addClass('labkit-run-view');
    this.node.dataset.runId = id;
    this.title.icon = labkitIcon;
    this.title.closable = true;
    this.title.label = summary?.name || id;
    this.title.caption = `labkit run ${id}`;
    this.offset = 0;
    this.timer = 0;
    this.busy = false;
    this.failures = 0;
    this.summary = summary || null;
    this.start();
    this.poll(0);
  }

  start() {
    this.teardown();
    this.record = new Record();
    this.offset = 0;
    this.sent = { n: 0, evals: 0, samples: 0 };
    this.model = new PanelModel(
      {
        _kind: 'panel',
        _key: `sidebar-${this.id}-${++KEYS}`,
        smoothing: 0.6,
        log_scale: false,
        window: 0,
        metric: '',
        rows: 0,
        n_evals: 0,
        n_samples: 0,
        status: 'pending',
        status_label: 'pending',
        ended: false,
        step: 0,
        total_steps: 0,
        epoch: 0,
        samples_per_s: 0,
        eta_s: -1,
        device: '',
        gpu_memory: '',
        metrics: {},
        checkpoints: [],
        error: '',
        notice: '',
        title: this.summary?.name || '',
      },
      (msg) => this.onPanelMessage(msg)
    );
    if (this.summary) this.applySummary(this.summary);
    this.cleanupModel = runPanel.initialize ? runPanel.initialize({ model: this.model }) : null;
    this.body = document.createElement('div');
    this.body.className = 'labkit-run-body';
    this.node.replaceChildren(this.body);
    this.cleanupView = runPanel.render({ model: this.model, el: this.body });
  }

  teardown() {
    if (typeof this.cleanupView === 'function') this.cleanupView();
    if (typeof this.cleanupModel === 'function') this.cleanupModel();
    this.cleanupView = this.cleanupModel = null;
  }

  onPanelMessage(msg) {
    if (!msg) return;
    if (msg.type === 'sync') {
      // the panel's store asks for what it lacks: answer from what this page holds
      const r = this.record;
      const start = Math.min(msg.have || 0, this.sent.n);
      const [reply, buffers] = r.message(
        start,
        Math.min(msg.have_evals || 0, this.sent.evals),
        Math.min(msg.have_samples || 0, this.sent.samples),
        true
      );
      reply.n = this.sent.n - start;
      setTimeout(() => this.model.emit('msg:custom', reply, buffers), 0);
    } else if (msg.type === 'control') {
      void this.control(String(msg.action));
    }
  }

  async control(action) {
    let notice;
    try {
      const answer = await this.api.control(this.runId, action);
      if (answer && answer.status) this.setStatus(answer.status);
      notice = (answer && answer.notice) || '';
    } catch (err) {
      notice = err instanceof RequestError ? err.message : String(err);
    }
    // always a change, so the panel re-enables the button it disabled while it waited
    this.model.state.notice = notice;
    this.model.emit('change:notice', notice);
    this.poll(0);
  }

  setStatus(status) {
    const m = this.model;
    m.set('status', status);
    m.set('status_label', statusLabel(status));
    m.set('ended', ENDED.has(status));
    this.node.dataset.status = status;
  }

  applySummary(s) {
    const m = this.model;
    this.summary = s;
    this.title.label = s.name || this.runId;
    m.set('title', s.name || '');
    this.setStatus(s.status || 'pending');
    m.set('step', s.step || 0);
    m.set('total_steps', s.total_steps || 0);
    const metrics = {};
    for (const [k, v] of Object.entries(s.metrics || {})) if (Number.isFinite(v)) metrics[k] = v;
    m.set('metrics', metrics);
    m.set('error', ENDED.has(s.status) && s.error ? String(s.error) : '');
  }

  // one read of what the record gained; the panel gets it as the kernel's panel sends a delta
  async read() {
    const answer = await this.api.run(this.runId, this.offset);
    if (!answer) return false;
    if (answer.reset && (this.offset > 0 || this.record.n)) {
      this.start(); // a new run in the same folder (or the file was replaced): start over
    }
    if (answer.header) {
      this.record.header = answer.header;
      this.model.set('device', String(answer.header.device || ''));
    }
    this.offset = answer.offset;
    const r = this.record;
    const from = { n: r.n, evals: r.evals.length, samples: r.samples.length };
    r.add(answer);
    if (r.n > from.n || r.evals.length > from.evals || r.samples.length > from.samples) {
      const [msg, buffers] = r.message(from.n, from.evals, from.samples, false);
      this.sent = { n: r.n, evals: r.evals.length, samples: r.samples.length };
      this.model.emit('msg:custom', msg, buffers);
      this.model.set('rows', r.n);
      this.model.set('n_evals', r.evals.length);
      this.model.set('n_samples', r.samples.length);
    }
    if (answer.summary) this.applySummary(answer.summary);
    const m = this.model;
    if (r.n) m.set('epoch', Number(r.cols.epoch[r.n - 1]) || 0);
    m.set('eta_s', m.get('status') === 'running' ? r.eta(m.get('total_steps')) : -1);
    m.set('checkpoints', r.saves.slice());
    this.node.dataset.points = String(r.n);
    return !!answer.more;
  }

  poll(delay) {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.tick(), delay);
  }

  async tick() {
    if (this.isDisposed) return;
    if (this.busy) return this.poll(200);
    this.busy = true;
    let more = false;
    try {
      more = await this.read();
      this.failures = 0;
    } catch (err) {
      this.failures += 1;
      const gone = err instanceof RequestError && (err.status === 404 || err.status === 403);
      this.model.set('notice', gone ? `this run's record is gone: ${err.message}` : err.message);
    } finally {
      this.busy = false;
    }
    if (this.isDisposed) return;
    const ended = this.model.get('ended');
    // at once while bytes remain; each second while visible; rarely once the run has ended
    const delay = more
      ? 0
      : Math.min(30000, (ended ? 10000 : this.isVisible ? 1000 : 5000) * 2 ** this.failures);
    this.poll(delay);
  }

  onAfterShow() {
    this.poll(0);
  }

  dispose() {
    if (this.isDisposed) return;
    clearTimeout(this.timer);
    this.teardown();
    super.dispose();
  }
}
