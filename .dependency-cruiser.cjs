/**
 * Import rules between the folders of src/ (docs/architecture.md explains them).
 * `npm run deps` checks them; `npm test` runs it, so a wrong import fails the suite.
 * @type {import('dependency-cruiser').IConfiguration}
 */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'A cycle between modules means neither can be understood, tested or moved alone.',
      from: {},
      to: { circular: true },
    },
    {
      name: 'storage-backend-only-through-open',
      severity: 'error',
      comment:
        'Stages depend on the storage interfaces in src/queue/storage.ts, never on a backend. ' +
        'Only src/queue/open.ts chooses SQLite or PostgreSQL (and a backend may import its own files).',
      from: { path: '^src/', pathNot: ['^src/queue/open\\.ts$', '^src/queue/(sqlite|postgres)/'] },
      to: { path: '^src/queue/(sqlite|postgres)/' },
    },
    {
      name: 'backends-do-not-import-each-other',
      severity: 'error',
      comment: 'The SQLite and PostgreSQL backends share only what src/queue/ outside them holds.',
      from: { path: '^src/queue/(sqlite|postgres)/' },
      to: { path: '^src/queue/(sqlite|postgres)/', pathNot: '^src/queue/$1/' },
    },
    {
      name: 'nothing-imports-the-http-door',
      severity: 'error',
      comment: 'src/http is a door: it calls stages; only src/relay.ts (the assembly) starts it.',
      from: { path: '^src/', pathNot: ['^src/http/', '^src/relay\\.ts$'] },
      to: { path: '^src/http/' },
    },
    {
      name: 'nothing-imports-the-inbound-door',
      severity: 'error',
      comment: 'src/inbound is a door (the port-25 listener for feedback): it hands mail to src/feedback; only src/relay.ts starts it.',
      from: { path: '^src/', pathNot: ['^src/inbound/', '^src/relay\\.ts$'] },
      to: { path: '^src/inbound/' },
    },
    {
      name: 'nothing-imports-the-cli-door',
      severity: 'error',
      comment: 'src/cli is a door: it calls stages; bin/relay.js runs src/cli/main.ts.',
      from: { path: '^src/', pathNot: '^src/cli/' },
      to: { path: '^src/cli/' },
    },
    {
      name: 'only-the-cli-starts-the-relay',
      severity: 'error',
      comment: 'src/relay.ts assembles a running relay; `relay serve` (src/cli) is what starts it.',
      from: { path: '^src/', pathNot: '^src/cli/' },
      to: { path: '^src/relay\\.ts$' },
    },
    {
      name: 'not-to-unresolvable',
      severity: 'error',
      comment: 'An import that does not resolve fails at run time.',
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsConfig: { fileName: 'tsconfig.json' },
    tsPreCompilationDeps: true,
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
    },
  },
};
