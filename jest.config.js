/**
 * One jest run over every project: tests sit beside the code as *.spec.ts; what they share (corpora, clients, suites)
 * lives in the project's test/ folder, which ships in no bundle.
 */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/libs', '<rootDir>/services', '<rootDir>/tools'],
  testMatch: ['**/*.spec.ts'],
  // Transpile only (tsconfig has isolatedModules); `npm run typecheck` does the type checking once.
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: '<rootDir>/tsconfig.json', diagnostics: false }] },
  testTimeout: 60000,
  maxWorkers: 2,
};
