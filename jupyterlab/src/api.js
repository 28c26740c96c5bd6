// labkit's server extension, as the front end asks it (labkit/jupyter/server.py answers):
// GET labkit/runs?since=, GET labkit/run?id=&offset=, POST labkit/run/control. Every request
// goes through ServerConnection, which adds the base URL, the token and the XSRF header.
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import constants from './constants.json';

export const PALETTE = constants.palette;
export const ENDED = new Set(constants.ended);
const REQUESTED = new Set(constants.requested);

// what the badge says (labkit.render.run.status_label): a request on its way reads "stopping…"
export function statusLabel(status) {
  const s = String(status || 'pending');
  return s.replace(/_/g, ' ') + (REQUESTED.has(s) ? '…' : '');
}

export function statusColor(status) {
  return PALETTE.status[status] || '#777';
}

// An answer that is not 2xx: `status` is the HTTP status, `message` what the server said.
export class RequestError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export class RunsApi {
  constructor(settings) {
    this.settings = settings || ServerConnection.makeSettings();
  }

  _url(route, query) {
    const base = URLExt.join(this.settings.baseUrl, 'labkit', route);
    return query ? base + URLExt.objectToQueryString(query) : base;
  }

  async _request(url, init) {
    let response;
    try {
      response = await ServerConnection.makeRequest(url, init || {}, this.settings);
    } catch (err) {
      throw new RequestError(0, `the Jupyter server did not answer (${err.message || err})`);
    }
    let body = null;
    const text = await response.text();
    try {
      body = text ? JSON.parse(text) : null;
    } catch {
      body = null;
    }
    if (!response.ok) {
      let message = (body && (body.message || body.reason)) || response.statusText;
      if (response.status === 404 && !(body && body.message)) {
        message =
          "labkit's server extension does not answer here: install labkit in the Python " +
          'environment that runs Jupyter (pip install labkit), then restart Jupyter';
      }
      throw new RequestError(response.status, String(message || `HTTP ${response.status}`));
    }
    return body;
  }

  runs(since) {
    return this._request(this._url('runs', { since: String(since || 0) }));
  }

  run(id, offset) {
    return this._request(this._url('run', { id, offset: String(offset || 0) }));
  }

  control(id, action) {
    return this._request(this._url('run/control'), {
      method: 'POST',
      body: JSON.stringify({ id, action }),
    });
  }
}
