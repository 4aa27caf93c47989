import js from "@eslint/js";
import globals from "globals";
import reactHooks from "eslint-plugin-react-hooks";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["node_modules", "src/api/schema.d.ts"] },
  {
    files: ["**/*.{ts,tsx}"],
    extends: [js.configs.recommended, ...tseslint.configs.strictTypeChecked],
    languageOptions: {
      globals: globals.browser,
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    plugins: { "react-hooks": reactHooks },
    rules: {
      ...reactHooks.configs.recommended.rules,
      "@typescript-eslint/restrict-template-expressions": ["error", { allowNumber: true }],
      "no-restricted-globals": [
        "error",
        { name: "localStorage", message: "Tokens live in memory only." },
        { name: "sessionStorage", message: "Tokens live in memory only." },
      ],
      "no-restricted-properties": [
        "error",
        { object: "window", property: "localStorage", message: "Tokens live in memory only." },
        { object: "window", property: "sessionStorage", message: "Tokens live in memory only." },
      ],
    },
  },
);
