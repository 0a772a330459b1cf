// Run by `npm start` and `npm test` (not at install: the published package has no install script). npm puts node_modules/.bin first on PATH
// for scripts, and the `node` dev dependency places Node 22 there, so scripts run on 22 even
// where the machine's own node is older. This fails loudly if that did not happen.
const [major] = process.versions.node.split('.').map(Number);
if (major < 22) {
  console.error(
    `cloudmom needs Node >= 22 (found ${process.version} at ${process.execPath}).\n` +
      'Run the project through npm scripts (npm start, npm test): they use the Node 22 that the\n' +
      '`node` dev dependency installs in node_modules/.bin. If it is missing, run `npm ci` again.',
  );
  process.exit(1);
}
