/**
 * One jest run over every project: tests sit beside the code as *.spec.ts (the web console's components as
 * *.spec.tsx, each in jsdom by its `@jest-environment jsdom` docblock); what they share (corpora, clients, suites)
 * lives in the project's test/ folder, which ships in no bundle.
 */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/libs', '<rootDir>/services', '<rootDir>/tools'],
  testMatch: ['**/*.spec.ts', '**/*.spec.tsx'],
  // Transpile only (tsconfig has isolatedModules); `npm run typecheck` does the type checking once. The console's
  // sources compile with its own tsconfig (JSX for Preact, the DOM's types).
  transform: {
    '/services/console/(src|test)/.+\\.tsx?$': ['ts-jest', { tsconfig: '<rootDir>/services/console/tsconfig.json', diagnostics: false }],
    '^.+\\.ts$': ['ts-jest', { tsconfig: '<rootDir>/tsconfig.json', diagnostics: false }],
  },
  // Node's export conditions in jsdom too: the browser builds of preact and its testing library are ES modules,
  // which jest's CommonJS runtime cannot load (this is node's default already, so node specs resolve as before).
  testEnvironmentOptions: { customExportConditions: ['node', 'node-addons'] },
  testTimeout: 60000,
  maxWorkers: 2,
};
