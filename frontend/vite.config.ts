/// <reference types="vitest/config" />
import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

// Flask serves the build at /app/ from static/app/ (see app/web/client.py). In
// development `npm run dev` proxies the API and the shared stylesheet to `make run`.
const flask = process.env.FLASK_URL ?? "http://127.0.0.1:5000";

export default defineConfig({
  base: "/app/",
  plugins: [react()],
  build: {
    outDir: "../static/app",
    emptyOutDir: true,
    sourcemap: false,
    reportCompressedSize: true,
  },
  server: {
    proxy: { "/api": flask, "/static": flask },
  },
  test: {
    environment: "jsdom",
    globals: true,
    setupFiles: ["./src/test/setup.ts"],
    css: false,
    restoreMocks: true,
    testTimeout: 20000, // 2 shared cores: user-event typing can be slow here
  },
});
