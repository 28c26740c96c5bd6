// Merged into @jupyterlab/builder's own configuration (package.json "jupyterlab.webpackConfig").
// The sidebar's run view is labkit's anywidget panel, widgets/run_panel.js, bundled as it is: the
// loader below gives it what the kernel sends ahead of it (labkit/ui/_base.py prelude()).
const path = require('path');

module.exports = {
  module: {
    rules: [
      {
        test: /[\\/]widgets[\\/]run_panel\.js$/,
        use: [path.resolve(__dirname, 'widget-loader.js')],
      },
    ],
  },
};
