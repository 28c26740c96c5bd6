// The "labkit" launcher card and its palette command: a new notebook in the launcher's folder
// whose first cell opens the whole lab (`import labkit as lk` / `lk.App()`), opened and run.
import { ICommandPalette } from '@jupyterlab/apputils';
import { IDefaultFileBrowser } from '@jupyterlab/filebrowser';
import { ILauncher } from '@jupyterlab/launcher';
import { NotebookActions } from '@jupyterlab/notebook';

import { labkitIcon, labkitIconUrl } from './icon.js';

export const NEW_NOTEBOOK = 'labkit:new-notebook';
export const APP_CELL = 'import labkit as lk\nlk.App()';
const INTRO =
  '# labkit\n\n' +
  'The cell below opens the whole lab as one widget: Model | Data | Train | Attention | ' +
  'Explain | Compare. Run it again after a kernel restart.\n\n' +
  'New to labkit? The quickstart notebook walks through it: `notebooks/01_quickstart.ipynb` ' +
  'in labkit\'s repository (`labkit lab` opens it). The **labkit runs** sidebar on the left ' +
  'follows every run, from a notebook or a terminal.';

function notebookContent(kernel) {
  return {
    nbformat: 4,
    nbformat_minor: 5,
    metadata: {
      kernelspec: kernel ? { name: kernel.name, display_name: kernel.display_name, language: kernel.language } : undefined,
      language_info: { name: 'python' },
    },
    cells: [
      { cell_type: 'code', source: APP_CELL, metadata: {}, outputs: [], execution_count: null },
      { cell_type: 'markdown', source: INTRO, metadata: {} },
    ],
  };
}

function defaultKernel(app) {
  const specs = app.serviceManager.kernelspecs?.specs;
  if (!specs) return null;
  const name = specs.kernelspecs.python3 ? 'python3' : specs.default;
  const spec = specs.kernelspecs[name];
  return spec ? { name, display_name: spec.display_name, language: spec.language } : null;
}

async function newLabkitNotebook(app, cwd) {
  const contents = app.serviceManager.contents;
  await app.serviceManager.kernelspecs?.ready;
  const kernel = defaultKernel(app);
  const model = await contents.newUntitled({ path: cwd || '', type: 'notebook' });
  const content = notebookContent(kernel);
  if (!kernel) delete content.metadata.kernelspec;
  await contents.save(model.path, { type: 'notebook', format: 'json', content });
  const panel = await app.commands.execute('docmanager:open', {
    path: model.path,
    factory: 'Notebook',
    kernel: kernel ? { name: kernel.name } : undefined,
  });
  // Notebook 7 opens a notebook in a tab of its own: nothing to run from here then
  if (!panel || !panel.content || !panel.sessionContext) return model.path;
  await panel.context.ready;
  await panel.sessionContext.ready;
  panel.content.activeCellIndex = 0;
  await NotebookActions.run(panel.content, panel.sessionContext);
  return model.path;
}

export const launcherPlugin = {
  id: 'labkit-jupyterlab:launcher',
  description: 'The "labkit" launcher card and palette command: a new notebook opening the lab.',
  autoStart: true,
  optional: [ILauncher, ICommandPalette, IDefaultFileBrowser],
  activate: (app, launcher, palette, browser) => {
    app.commands.addCommand(NEW_NOTEBOOK, {
      label: (args) => (args.isLauncher ? 'labkit' : 'New labkit notebook'),
      caption: 'A new notebook that opens the whole lab: import labkit as lk; lk.App()',
      icon: labkitIcon,
      execute: (args) => {
        const cwd = args.cwd ?? browser?.model?.path ?? '';
        return newLabkitNotebook(app, String(cwd)).catch((err) => {
          console.error('labkit: could not create the notebook', err);
          throw err;
        });
      },
    });
    if (launcher) launcher.add({
        command: NEW_NOTEBOOK,
        category: 'Notebook',
        rank: 100,
        kernelIconUrl: labkitIconUrl,
        args: { isLauncher: true },
      });
    if (palette) palette.addItem({ command: NEW_NOTEBOOK, category: 'labkit' });
  },
};
