// labkit's JupyterLab front end (JupyterLab 4 and Notebook 7).
//
// A labkit output (a run's panel, an attention or attribution view, the App) is one mime bundle:
// the live widget (application/vnd.jupyter.widget-view+json), its static snapshot (text/html)
// and a marker, application/vnd.labkit.view+json. JupyterLab always prefers the widget, and when
// its model is gone (the notebook reopened after its kernel shut down) it shows "Error displaying
// widget: model not found" although the saved file holds the snapshot. The renderer registered
// here for the marker shows the live view while the kernel holds its model and the snapshot
// otherwise: before the widget manager has answered, when it cannot find the model, and when the
// view is closed later. Front ends without this extension (nbviewer, GitHub, VS Code, Colab)
// never see the marker: nbviewer and GitHub show the snapshot, the others the widget as before.

import { INotebookTracker } from '@jupyterlab/notebook';
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { Panel } from '@lumino/widgets';

import { RunsApi } from './api.js';
import { launcherPlugin } from './launcher.js';
import { RunView } from './runview.js';
import { RunsSidebar } from './sidebar.js';

export const LIVE_MIME = 'application/vnd.labkit.view+json';
const WIDGET_MIME = 'application/vnd.jupyter.widget-view+json';
const HTML_MIME = 'text/html';
// ahead of the widget manager's renderer (-10), so a labkit bundle comes here first
const RANK = -20;
// how long a live view may take before the snapshot shows in its place meanwhile
const SNAPSHOT_AFTER_MS = 400;

// The widget manager registers a renderer of its own in each notebook once the notebook's
// kernel is ready; until then the notebook holds the app-wide one, which has no manager (and a
// notebook without a kernel never gets one). One poll per notebook registry, running only while
// some renderer of it still waits: closing the notebook disposes them, and the poll ends.
// Resolves with the notebook's factory, or null when widgets are not installed at all (or the
// renderer was disposed while it waited).
const polls = new WeakMap();
function managedWidgetFactory(registry, appRegistry, renderer) {
  const found = () => {
    const factory = registry.getFactory(WIDGET_MIME);
    if (!factory) return { factory: null };
    return factory !== appRegistry.getFactory(WIDGET_MIME) ? { factory } : null;
  };
  const now = found();
  if (now) return Promise.resolve(now.factory);
  return new Promise((resolve) => {
    let poll = polls.get(registry);
    if (!poll) {
      poll = { waiting: new Map(), timer: 0 };
      polls.set(registry, poll);
    }
    poll.waiting.set(renderer, resolve);
    const look = () => {
      poll.timer = 0;
      for (const [r, done] of poll.waiting) {
        if (r.isDisposed) {
          poll.waiting.delete(r);
          done(null);
        }
      }
      const result = found();
      if (result) {
        for (const done of poll.waiting.values()) done(result.factory);
        poll.waiting.clear();
      }
      if (poll.waiting.size) poll.timer = setTimeout(look, 100);
    };
    if (!poll.timer) poll.timer = setTimeout(look, 100);
  });
}

// What the widget manager's renderer shows: 'live' (a view is in), 'gone' (it gave up, or the
// view was closed and it hid itself) or 'waiting' ("Loading widget...").
export function widgetState(renderer) {
  if (renderer.isDisposed || renderer.isHidden) return 'gone';
  const node = renderer.node;
  if (node.firstElementChild) return 'live';
  return /^Error displaying widget/.test(node.textContent || '') ? 'gone' : 'waiting';
}

export class LabkitRenderer extends Panel {
  constructor(options, registry, appRegistry) {
    super();
    this.addClass('labkit-output');
    this._options = options;
    this._registry = registry;
    this._appRegistry = appRegistry;
    this._snapshot = null;
    this._live = null;
    this._modelId = null;
    this._generation = 0;
    this._timer = 0;
    this._observer = null;
  }

  // 'live' or 'snapshot': what the output shows now (tests read it as data-labkit-shows)
  get shows() {
    return this.node.dataset.labkitShows || '';
  }

  async renderModel(model) {
    const id = (model.data[WIDGET_MIME] || {}).model_id || '';
    // the same widget (live, or still on its way): keep its renderer, refresh the snapshot
    const same = id && id === this._modelId && this._live && widgetState(this._live) !== 'gone';
    await this._renderSnapshot(model);
    if (same) return; // the view stays as it is
    this._dropLive();
    this._modelId = id;
    const generation = ++this._generation;
    if (!id) {
      this._show('snapshot');
      return;
    }
    this._show(this.shows === 'snapshot' ? 'snapshot' : 'pending');
    clearTimeout(this._timer);
    this._timer = setTimeout(() => {
      if (generation === this._generation && this.shows !== 'live') this._show('snapshot');
    }, SNAPSHOT_AFTER_MS);
    void this._renderLive(model, generation);
  }

  async _renderSnapshot(model) {
    if (!model.data[HTML_MIME]) return;
    const snapshot = this._registry.createRenderer(HTML_MIME);
    snapshot.addClass('labkit-snapshot');
    await snapshot.renderModel(model);
    if (this._snapshot) this._snapshot.dispose();
    this._snapshot = snapshot;
    this.insertWidget(0, snapshot);
    this._show(this.shows || 'pending');
  }

  async _renderLive(model, generation) {
    const factory = await managedWidgetFactory(this._registry, this._appRegistry, this);
    if (generation !== this._generation || this.isDisposed) return;
    if (!factory) {
      this._show('snapshot');
      return;
    }
    const live = factory.createRenderer({ ...this._options, mimeType: WIDGET_MIME });
    live.addClass('labkit-live');
    this._live = live;
    this.addWidget(live);
    this._show(this.shows);
    const check = () => {
      if (generation !== this._generation) return;
      const state = widgetState(live);
      if (state === 'live') this._show('live');
      else if (state === 'gone') this._show('snapshot');
    };
    this._observer = new MutationObserver(check);
    this._observer.observe(live.node, {
      childList: true,
      characterData: true,
      subtree: false,
      attributes: true,
      attributeFilter: ['class'],
    });
    try {
      await live.renderModel(model);
    } catch (err) {
      console.error('labkit: the live view failed; showing the saved snapshot', err);
    }
    check();
  }

  _dropLive() {
    if (this._observer) this._observer.disconnect();
    this._observer = null;
    if (this._live) this._live.dispose();
    this._live = null;
  }

  // at most one of the two is visible: the live view once it is in, else the snapshot ('pending':
  // neither, for the moment a live view normally takes to appear). Plain styles, not Lumino's
  // hide(): the widget manager's renderer hides itself when its view closes, which is read above.
  _show(what) {
    const shows = what === 'live' && !this._live ? 'snapshot' : what;
    this.node.dataset.labkitShows = shows;
    if (this._snapshot) this._snapshot.node.style.display = shows === 'snapshot' ? '' : 'none';
    if (this._live) this._live.node.style.display = shows === 'live' ? '' : 'none';
  }

  dispose() {
    if (this.isDisposed) return;
    clearTimeout(this._timer);
    this._dropLive();
    super.dispose();
  }
}

function addLabkitRenderer(registry, appRegistry) {
  if (registry.getFactory(LIVE_MIME)) return;
  registry.addFactory(
    {
      safe: false, // an untrusted notebook gets the sanitized snapshot, as before
      mimeTypes: [LIVE_MIME],
      createRenderer: (options) => new LabkitRenderer(options, registry, appRegistry),
    },
    RANK
  );
}

const snapshotsPlugin = {
  id: 'labkit-jupyterlab:snapshots',
  description: 'labkit outputs show their saved snapshot when their live widget is gone.',
  autoStart: true,
  requires: [IRenderMimeRegistry],
  optional: [INotebookTracker],
  activate: (app, appRegistry, notebooks) => {
    if (!notebooks) return;
    notebooks.widgetAdded.connect((_, panel) => {
      addLabkitRenderer(panel.content.rendermime, appRegistry);
    });
    notebooks.forEach((panel) => addLabkitRenderer(panel.content.rendermime, appRegistry));
  },
};

// The "labkit runs" sidebar (JupyterLab's left area; Notebook 7's left panel, View > Left
// Sidebar, on every page), and each run's live chart in the main area, one per run.
export const OPEN_RUN = 'labkit:open-run';
export const SHOW_RUNS = 'labkit:show-runs';

const runsPlugin = {
  id: 'labkit-jupyterlab:runs',
  description: 'The "labkit runs" sidebar: every run under the server\'s folder and on this machine.',
  autoStart: true,
  activate: (app) => {
    const api = new RunsApi(app.serviceManager.serverSettings);
    const views = new Map(); // run id -> its open RunView
    const openRun = (id, summary) => {
      let view = views.get(id);
      if (!view || view.isDisposed) {
        view = new RunView(api, id, summary);
        views.set(id, view);
        view.disposed.connect(() => {
          if (views.get(id) === view) views.delete(id);
        });
        app.shell.add(view, 'main');
        // Notebook 7's pages hold one main widget (the file browser, the notebook): the run
        // view goes to the right-hand panel there
        if (!view.isAttached) app.shell.add(view, 'right', { rank: 650 });
      }
      app.shell.activateById(view.id);
      return view;
    };
    const sidebar = new RunsSidebar(api, openRun);
    app.commands.addCommand(OPEN_RUN, {
      label: 'Open a labkit run',
      execute: (args) => openRun(String(args.id), sidebar.summary(String(args.id))),
    });
    app.commands.addCommand(SHOW_RUNS, {
      label: 'Show labkit runs',
      // after the shell has restored its saved layout, which would fold the panel again
      execute: async () => {
        await app.restored;
        app.shell.activateById(sidebar.id);
      },
    });
    app.shell.add(sidebar, 'left', { rank: 650 });
  },
};

export default [snapshotsPlugin, launcherPlugin, runsPlugin];
