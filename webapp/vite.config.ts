// The bundle goes into the Python package (src/scenebase/webapp_dist, git-ignored), which `scenebase serve`
// serves under /app/ (src/scenebase/api/webapp.py). No CDN: everything the app loads comes from the server.
import { defineConfig } from "vite";

export default defineConfig({
  base: "/app/",
  build: { outDir: "../src/scenebase/webapp_dist", emptyOutDir: true, sourcemap: false, target: "es2022" },
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  resolve: { alias: { react: "preact/compat", "react-dom": "preact/compat" } },
});
