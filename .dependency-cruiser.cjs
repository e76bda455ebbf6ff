/**
 * Import rules of src/ (`npm run lint` checks them with dependency-cruiser). Each says what keeps a part replaceable:
 * the Atlassian adapter and the cipher know no domain; folders do not import each other in a circle; only the app
 * module reaches the sandbox; controllers leave SQL to repositories.
 */
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-folder-cycles',
      comment: 'Folders of src/ form no cycle: a folder that needs another is above it, never also below it.',
      severity: 'error',
      from: { path: '^src/[^/]+' },
      to: { path: '^src/[^/]+', circular: true },
      scope: 'folder',
    },
    {
      name: 'no-module-cycles',
      comment: 'Files import each other in no circle, type-only imports included.',
      severity: 'error',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      name: 'adapters-stand-apart',
      comment: 'src/atlassian (HTTP to Atlassian) and src/crypto (the cipher) import no domain folder, only config and common.',
      severity: 'error',
      from: { path: '^src/(atlassian|crypto)/' },
      to: { path: '^src/', pathNot: ['^src/(atlassian|crypto|config|common)/'] },
    },
    {
      name: 'sandbox-only-from-the-app-module',
      comment: 'The sandbox is wired in by the app module alone, so that nothing else can come to depend on the stand-in.',
      severity: 'error',
      from: { path: '^src/', pathNot: ['^src/sandbox/', '^src/app\\.module\\.ts$', '\\.spec\\.ts$'] },
      to: { path: '^src/sandbox/' },
    },
    {
      name: 'controllers-import-no-typeorm',
      comment: 'Controllers call services; SQL and entities stay in repositories.',
      severity: 'error',
      from: { path: '\\.controller\\.ts$' },
      to: { path: 'node_modules/(typeorm|@nestjs/typeorm)/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '\\.spec\\.ts$' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default'],
      extensions: ['.ts', '.js'],
    },
    reporterOptions: { text: { highlightFocused: true } },
  },
};
