// A webpack loader for labkit's anywidget modules (widgets/*.js): the same join as the kernel's
// (labkit/ui/_base.py prelude()): widgets/_common.js, then `const PALETTE = ...;`, then the
// module. PALETTE comes from src/constants.json, written from labkit.ui's palette() by
// `make labextension` (constants.py), so the bundled panel draws with the kernel's colours.
const fs = require('fs');
const path = require('path');

module.exports = function widgetLoader(source) {
  const common = path.resolve(__dirname, '..', 'widgets', '_common.js');
  const constants = path.resolve(__dirname, 'src', 'constants.json');
  this.addDependency(common);
  this.addDependency(constants);
  const { palette } = JSON.parse(fs.readFileSync(constants, 'utf8'));
  return `${fs.readFileSync(common, 'utf8')}\nconst PALETTE = ${JSON.stringify(palette)};\n${source}`;
};
