/** Jest runs the TypeScript sources as ES modules (NestJS 12 ships ES modules only). */
const base = {
  testEnvironment: 'node',
  setupFiles: ['<rootDir>/test/setup/load-cjs-nest-packages.mjs'],
  // Suites that boot the app or the embedded database need seconds on a busy 2-core machine; a hung test still fails.
  testTimeout: 30_000,
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform: {
    '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: 'tsconfig.json' }],
  },
};

/** Drives the system Chromium, so it runs alone and only when asked for (`npm run test:browser` sets TEST_BROWSER=1). */
const browser = {
  ...base,
  displayName: 'browser',
  roots: ['<rootDir>/test/browser'],
  testMatch: ['**/*.spec.ts'],
  testTimeout: 60_000,
};

const config = {
  testTimeout: base.testTimeout,
  globalSetup: '<rootDir>/test/setup/global-setup.mjs',
  globalTeardown: '<rootDir>/test/setup/global-teardown.mjs',
  projects: [
    { ...base, displayName: 'unit', roots: ['<rootDir>/src'], testMatch: ['**/*.spec.ts'] },
    {
      ...base,
      displayName: 'integration',
      roots: ['<rootDir>/test/integration'],
      testMatch: ['**/*.spec.ts'],
    },
    {
      ...base,
      displayName: 'e2e',
      roots: ['<rootDir>/test/e2e'],
      testMatch: ['**/*.spec.ts'],
    },
    // The operations side with the real tools: Prometheus and promtool, the Kubernetes schemas (deploy/).
    {
      ...base,
      displayName: 'deploy',
      roots: ['<rootDir>/test/deploy'],
      testMatch: ['**/*.spec.ts'],
      testTimeout: 120_000,
    },
  ],
};

export default process.env.TEST_BROWSER === '1' ? { ...config, projects: [browser] } : config;
