/**
 * One jest run over every project: tests sit beside the code as *.spec.ts (the web console's components as
 * *.spec.tsx, each in jsdom by its `@jest-environment jsdom` docblock); what they share (corpora, clients, suites)
 * lives in the project's test/ folder, which ships in no bundle.
 */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/libs', '<rootDir>/services', '<rootDir>/tools'],
  testMatch: ['**/*.spec.ts', '**/*.spec.tsx'],
  // Transpile only (tsconfig has isolatedModules); `npm run typecheck` does the type checking once. One transform for
  // .ts and .tsx (a second ts-jest entry with the console's tsconfig was not used for the console's files when a
  // worker had loaded the first): the root tsconfig, plus Preact's JSX for the console's components. Not in
  // tsconfig.json itself: Preact's JSX types bring in the DOM's, which the server code must not see.
  transform: { '^.+\\.tsx?$': ['ts-jest', { tsconfig: { jsx: 'react-jsx', jsxImportSource: 'preact' }, diagnostics: false }] },
  // Node's export conditions in jsdom too: the browser builds of preact and its testing library are ES modules,
  // which jest's CommonJS runtime cannot load (this is node's default already, so node specs resolve as before).
  testEnvironmentOptions: { customExportConditions: ['node', 'node-addons'] },
  testTimeout: 60000,
  maxWorkers: 2,
};
