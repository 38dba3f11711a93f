// Builds the web UI into dist/: one JS and one CSS bundle with content
// hashes in their names (served as immutable) and index.html pointing at
// them (served with no-cache). Run with `make ui` (or `npm run build`).
// The output is deterministic, so CI can rebuild and `git diff` it.
import * as esbuild from "esbuild";
import { readFileSync, writeFileSync, rmSync, mkdirSync } from "node:fs";
import path from "node:path";

const out = "dist";
rmSync(out, { recursive: true, force: true });
mkdirSync(path.join(out, "assets"), { recursive: true });

const result = await esbuild.build({
  entryPoints: { app: "src/app.js" },
  bundle: true,
  minify: true,
  sourcemap: false,
  format: "esm",
  target: ["es2020", "chrome100", "firefox100", "safari15"],
  outdir: path.join(out, "assets"),
  entryNames: "[name]-[hash]",
  metafile: true,
  legalComments: "linked",
  logLevel: "warning",
});

let js = "", css = "";
for (const [file, meta] of Object.entries(result.metafile.outputs)) {
  if (!meta.entryPoint) continue;
  js = "/" + path.relative(out, file);
  if (meta.cssBundle) css = "/" + path.relative(out, meta.cssBundle);
}
if (!js || !css) throw new Error("build: no JS or CSS bundle in the metafile");

const html = readFileSync("src/index.html", "utf8")
  .replace("%APP_JS%", js)
  .replace("%APP_CSS%", css);
writeFileSync(path.join(out, "index.html"), html);
console.log(`built ${js} ${css}`);
