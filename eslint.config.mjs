// Lint rules that keep the architecture honest: libs never import services, services never import each other.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import nx from '@nx/eslint-plugin';

export default [
  { ignores: ['**/node_modules/**', '**/dist/**', 'data/**', '.cache/**', '.nx/**', '.infra/**', '**/*.js', '**/*.mjs'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts', '**/*.tsx'],
    plugins: { '@nx': nx },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      'no-restricted-properties': ['error', { object: 'process', property: 'env', message: 'Read configuration through @lading/config.' }],
      '@nx/enforce-module-boundaries': [
        'error',
        {
          enforceBuildableLibDependency: false,
          allow: [],
          depConstraints: [
            // The composition root of the embedded mode is the only project that may import services.
            { sourceTag: 'type:app', onlyDependOnLibsWithTags: ['type:service', 'type:adapter', 'type:domain', 'type:util'] },
            // A service never imports another service; it talks to them over HTTP or the bus.
            { sourceTag: 'type:service', onlyDependOnLibsWithTags: ['type:adapter', 'type:domain', 'type:util'] },
            // The web console runs in a browser: it talks to the registry over HTTP and imports no server code.
            { sourceTag: 'type:ui', onlyDependOnLibsWithTags: [] },
            // Libs never import services.
            { sourceTag: 'type:adapter', onlyDependOnLibsWithTags: ['type:adapter', 'type:domain', 'type:util'] },
            { sourceTag: 'type:domain', onlyDependOnLibsWithTags: ['type:domain', 'type:util'] },
            { sourceTag: 'type:util', onlyDependOnLibsWithTags: ['type:util'] },
          ],
        },
      ],
    },
  },
  {
    // Plain CommonJS that must load without a TypeScript loader (a worker thread's body).
    files: ['**/*.cjs'],
    languageOptions: { sourceType: 'commonjs', globals: { require: 'readonly', module: 'writable', Buffer: 'readonly', __dirname: 'readonly' } },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    // A service's test/ folder runs it inside a real registry (gateway, blob and manifest services, or the auth app
    // beside the delivery worker): like services/embedded it may compose services. Nothing under test/ ships.
    files: ['services/*/test/**/*.ts', 'services/*/test/**/*.tsx'],
    rules: { '@nx/enforce-module-boundaries': 'off' },
  },
  {
    files: ['libs/config/**/*.ts', 'tools/**/*.ts', '**/*.spec.ts', '**/*.spec.tsx', 'libs/*/test/**/*.ts', 'services/*/test/**/*.ts', 'services/*/test/**/*.tsx'],
    rules: { 'no-restricted-properties': 'off' },
  },
  // What ships (a project's src/, minus its specs) never imports test support: a project's test/ folder or @lading/testing.
  {
    files: ['libs/*/src/**/*.ts', 'services/*/src/**/*.ts', 'services/*/src/**/*.tsx'],
    ignores: ['**/*.spec.ts', '**/*.spec.tsx'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['**/test/*', '**/test/**', '@lading/testing', '@lading/testing/**', '@lading/*/testing'], message: 'Test support stays out of what ships; only specs import it.' },
          ],
        },
      ],
    },
  },
];
