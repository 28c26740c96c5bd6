// labkit's icon: an inline SVG (nothing fetched), coloured by the theme through JupyterLab's
// jp-icon classes. A small loss curve falling inside a flask.
import { LabIcon } from '@jupyterlab/ui-components';

const SVG = `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
  <g class="jp-icon3" fill="none" stroke="#616161" stroke-width="1.8" stroke-linecap="round" stroke-linejoin="round">
    <path d="M9 3h6M10 3v6L4.5 19a1.5 1.5 0 0 0 1.3 2.2h12.4a1.5 1.5 0 0 0 1.3-2.2L14 9V3"/>
  </g>
  <g class="jp-icon-brand0" fill="none" stroke="#1976d2" stroke-width="1.8" stroke-linecap="round" stroke-linejoin="round">
    <path d="M7.5 15.5c1.5-.2 2.2 2.7 3.8 2.7s2-2.2 3.3-2.6 1.9.9 2.9 1"/>
  </g>
</svg>`;

// the launcher draws a notebook card's icon from a URL: the same SVG as a data: URL
export const labkitIconUrl = `data:image/svg+xml;charset=utf-8,${encodeURIComponent(SVG)}`;

export const labkitIcon = new LabIcon({ name: 'labkit-jupyterlab:labkit', svgstr: SVG });
