// The "labkit runs" sidebar: every run under the server's root and every run started on this
// machine, from GET labkit/runs?since=V (only what changed since the last answer). Each row:
// status badge, name, model, step / total, last loss, a sparkline of the training loss and where
// the run lives; Stop for a run that is still going. Clicking a row opens the run's live chart.
// Every value from the server is set as text (textContent, attributes), never as HTML.
import { Widget } from '@lumino/widgets';

import { ENDED, RequestError, statusColor, statusLabel } from './api.js';
import { labkitIcon } from './icon.js';

const SVGNS = 'http://www.w3.org/2000/svg';
const VISIBLE_MS = 1000; // the list follows new events within ~1 s while it is shown
const HIDDEN_MS = 5000;
const SPARK_W = 120;
const SPARK_H = 22;

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}

export function fmtNumber(v) {
  if (v === null || v === undefined || !Number.isFinite(v)) return '–';
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 10000) return `${+(v / 1000).toPrecision(4)}k`;
  if (a < 1e-3) return v.toExponential(1);
  return String(+v.toPrecision(4));
}

// An SVG path through the points (null breaks the line), scaled to w x h.
export function sparkPath(points, w, h) {
  const finite = (points || []).filter((v) => Number.isFinite(v));
  if (!finite.length) return '';
  let lo = Math.min(...finite), hi = Math.max(...finite);
  if (hi === lo) { hi += 1; lo -= 1; }
  const n = points.length, dx = n > 1 ? (w - 2) / (n - 1) : 0;
  let pen = 'M', d = '';
  points.forEach((v, i) => {
    if (!Number.isFinite(v)) { pen = 'M'; return; }
    const x = 1 + i * dx, y = 1 + (h - 2) * (1 - (v - lo) / (hi - lo));
    d += `${pen}${x.toFixed(1)} ${y.toFixed(1)}`;
    pen = 'L';
  });
  return d;
}

class RunRow {
  constructor(sidebar, summary) {
    this.sidebar = sidebar;
    this.node = el('li', 'labkit-runs-item');
    this.node.tabIndex = 0;
    this.node.setAttribute('role', 'button');
    const head = el('div', 'labkit-runs-head');
    this.badge = el('span', 'labkit-runs-badge');
    this.name = el('span', 'labkit-runs-name');
    this.stop = el('button', 'labkit-runs-stop', 'Stop');
    this.stop.type = 'button';
    this.stop.title = 'save a checkpoint, then stop';
    head.append(this.badge, this.name, this.stop);
    this.facts = el('div', 'labkit-runs-facts');
    this.spark = document.createElementNS(SVGNS, 'svg');
    this.spark.setAttribute('class', 'labkit-runs-spark');
    this.spark.setAttribute('viewBox', `0 0 ${SPARK_W} ${SPARK_H}`);
    this.spark.setAttribute('width', String(SPARK_W));
    this.spark.setAttribute('height', String(SPARK_H));
    this.spark.setAttribute('preserveAspectRatio', 'none');
    this.line = document.createElementNS(SVGNS, 'path');
    this.spark.appendChild(this.line);
    const line2 = el('div', 'labkit-runs-line');
    this.loss = el('span', 'labkit-runs-loss');
    line2.append(this.spark, this.loss);
    this.where = el('div', 'labkit-runs-where');
    this.notice = el('div', 'labkit-runs-notice');
    this.node.append(head, this.facts, line2, this.where, this.notice);
    this.node.addEventListener('click', () => sidebar.open(this.summary.id));
    this.node.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); sidebar.open(this.summary.id); }
    });
    this.stop.addEventListener('click', (e) => {
      e.stopPropagation();
      void this.control('stop');
    });
    this.update(summary);
  }

  async control(action) {
    this.stop.disabled = true;
    try {
      const answer = await this.sidebar.api.control(this.summary.id, action);
      this.notice.textContent = (answer && answer.notice) || '';
      if (answer && answer.status) this.update({ ...this.summary, status: answer.status });
    } catch (err) {
      this.notice.textContent = err instanceof RequestError ? err.message : String(err);
      this.stop.disabled = false;
    }
    this.sidebar.poll(0);
  }

  update(s) {
    const before = this.summary;
    this.summary = s;
    const status = String(s.status || 'pending');
    this.node.dataset.id = s.id;
    this.node.dataset.status = status;
    this.badge.textContent = statusLabel(status);
    this.badge.style.background = statusColor(status);
    this.name.textContent = s.name || s.id;
    this.name.title = s.name || s.id;
    const ended = ENDED.has(status);
    this.stop.hidden = ended;
    if (!before || before.status !== status) this.stop.disabled = ended || status === 'stopping';
    if (before && before.status !== status && status !== 'stopping') this.notice.textContent = '';
    const step = Number(s.step || 0), total = Number(s.total_steps || 0);
    const progress = total ? `step ${step.toLocaleString()} / ${total.toLocaleString()}` : `step ${step.toLocaleString()}`;
    this.facts.replaceChildren();
    if (s.model) {
      // a local folder reads as its last part (the whole path on hover)
      const model = el('span', 'labkit-runs-model', String(s.model).replace(/[\\/]+$/, '').split(/[\\/]/).pop());
      model.title = String(s.model);
      this.facts.append(model, document.createTextNode(' · '));
    }
    this.facts.append(el('span', 'labkit-runs-progress', progress));
    this.loss.textContent = `loss ${fmtNumber(s.loss)}`;
    this.line.setAttribute('d', sparkPath(s.spark || [], SPARK_W, SPARK_H));
    this.spark.dataset.points = String((s.spark || []).length);
    const where = s.where === 'root' && s.path !== null && s.path !== undefined ? s.path || '.' : 'this machine';
    this.where.textContent = where;
    this.where.title = s.where === 'root' ? `under this server's folder: ${where}` : 'started on this machine, outside this server\'s folder';
    this.node.title = s.error ? String(s.error) : '';
  }
}

export class RunsSidebar extends Widget {
  constructor(api, openRun) {
    super();
    this.api = api;
    this.openRun = openRun;
    this.id = 'labkit-runs';
    this.addClass('labkit-runs');
    this.title.icon = labkitIcon;
    this.title.caption = 'labkit runs';
    this.version = 0;
    this.runs = new Map(); // id -> RunRow
    this.timer = 0;
    this.busy = false;
    this.failures = 0;
    const header = el('div', 'labkit-runs-header');
    header.append(el('span', 'labkit-runs-heading', 'labkit runs'));
    this.count = el('span', 'labkit-runs-count');
    header.append(this.count);
    this.error = el('div', 'labkit-runs-error');
    this.error.hidden = true;
    this.empty = el(
      'div',
      'labkit-runs-empty',
      'No runs yet. A run started with lk.finetune(...) in a notebook, or with `labkit train` ' +
        "in a terminal, shows here: every run under this server's folder and every run " +
        'started on this machine.'
    );
    this.list = el('ul', 'labkit-runs-list');
    this.node.append(header, this.error, this.empty, this.list);
    this.poll(0);
  }

  open(id) {
    const row = this.runs.get(id);
    if (row) this.openRun(id, row.summary);
  }

  summary(id) {
    return this.runs.get(id)?.summary;
  }

  poll(delay) {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.tick(), delay);
  }

  async tick() {
    if (this.isDisposed) return;
    if (this.busy) return this.poll(200);
    this.busy = true;
    try {
      this.apply(await this.api.runs(this.version));
      this.failures = 0;
      this.error.hidden = true;
    } catch (err) {
      this.failures += 1;
      this.error.textContent = err instanceof RequestError ? err.message : String(err);
      this.error.hidden = false;
    } finally {
      this.busy = false;
    }
    if (this.isDisposed) return;
    const base = this.isVisible ? VISIBLE_MS : HIDDEN_MS;
    this.poll(Math.min(30000, base * 2 ** Math.min(this.failures, 5)));
  }

  apply(answer) {
    if (!answer) return;
    if (answer.full) {
      const keep = new Set((answer.runs || []).map((s) => s.id));
      for (const id of [...this.runs.keys()]) if (!keep.has(id)) this.drop(id);
    }
    for (const id of answer.gone || []) this.drop(id);
    for (const s of answer.runs || []) {
      const row = this.runs.get(s.id);
      if (row) row.update(s);
      else this.runs.set(s.id, new RunRow(this, s));
    }
    this.version = answer.version || 0;
    this.order();
    this.onChange?.(answer);
  }

  drop(id) {
    const row = this.runs.get(id);
    if (row) row.node.remove();
    this.runs.delete(id);
  }

  // newest first: a run started a moment ago is on top
  order() {
    const key = (row) => row.summary.started ?? '';
    const rows = [...this.runs.values()].sort((a, b) => {
      const x = key(a), y = key(b);
      return x > y ? -1 : x < y ? 1 : String(a.summary.id).localeCompare(String(b.summary.id));
    });
    rows.forEach((row, i) => {
      if (this.list.children[i] !== row.node) this.list.insertBefore(row.node, this.list.children[i] || null);
    });
    this.empty.hidden = rows.length > 0;
    this.count.textContent = rows.length ? String(rows.length) : '';
    this.node.dataset.runs = String(rows.length);
  }

  onAfterShow() {
    this.poll(0);
  }

  dispose() {
    if (this.isDisposed) return;
    clearTimeout(this.timer);
    super.dispose();
  }
}
