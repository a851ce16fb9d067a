// `npm run lint` (part of `npm test`): typescript-eslint's strict rules on every TypeScript and
// JavaScript file of the control plane, the scripts and the tests; zero warnings allowed.
import js from "@eslint/js";
import globals from "globals";
import tseslint from "typescript-eslint";

export default tseslint.config(
  // .next/ and next-env.d.ts: what `next build` writes in apps/web.
  { ignores: ["**/dist/**", "**/node_modules/**", ".data/**", "worker/**", "**/*.d.mts", "**/.next/**", "**/next-env.d.ts"] },
  js.configs.recommended,
  ...tseslint.configs.strict,
  {
    languageOptions: { globals: { ...globals.node } },
    linterOptions: { reportUnusedDisableDirectives: "error" },
    rules: {
      // The tsconfig has noUncheckedIndexedAccess: `rows[0]!` right after a length check is how
      // the code says "present"; forbidding it would trade one visible assertion for a branch
      // that cannot run.
      "@typescript-eslint/no-non-null-assertion": "off",
      // `_name` says "deliberately unused" (an interface's parameter, a key dropped by a rest).
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_", ignoreRestSiblings: true }],
    },
  },
);
