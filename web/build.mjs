// Builds the web app (web/) into build/web/, the directory wrangler.toml's [assets] serves:
//   index.html            web/index.html with the hashed names of the two files below
//   assets/app-HASH.js    web/src/main.ts and what it imports (packages/client-ts included),
//                         bundled and minified by esbuild (ES2020, one ES module)
//   assets/app-HASH.css   web/src/style.css, minified
//   favicon.svg           web/favicon.svg
// Hashed names let a browser keep them forever; index.html is small and always revalidated.
// Run by scripts/build after packages/client-ts's build (its generated frame types); alone:
// node web/build.mjs [--outdir DIR]. Type-checks with tsc first; prints the sizes (raw, gzip).
import * as esbuild from "esbuild";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import zlib from "node:zlib";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "..");
const i = process.argv.indexOf("--outdir");
const outdir = i > 0 ? path.resolve(process.argv[i + 1]) : path.join(root, "build/web");

// Type check first (web/tsconfig.json: strict, the library's sources included through its imports).
const tsc = path.join(root, "node_modules/.bin/tsc");
const checked = spawnSync(tsc, ["-p", path.join(here, "tsconfig.json")], { stdio: "inherit" });
if (checked.status !== 0) {
  console.error("build: the web app does not type-check (tsc -p web/tsconfig.json)");
  process.exit(1);
}

// A fresh directory each time: no stale hashed files are served.
const tmp = `${outdir}.tmp-${process.pid}`;
fs.rmSync(tmp, { recursive: true, force: true });
fs.mkdirSync(path.join(tmp, "assets"), { recursive: true });

const result = await esbuild.build({
  entryPoints: { app: path.join(here, "src/main.ts"), style: path.join(here, "src/style.css") },
  outdir: path.join(tmp, "assets"),
  entryNames: "[name]-[hash]",
  bundle: true,
  minify: true,
  format: "esm",
  target: ["es2020", "chrome100", "safari15", "firefox100"],
  sourcemap: false,
  legalComments: "none",
  metafile: true,
  logLevel: "warning",
});

const outputs = Object.keys(result.metafile.outputs).map((f) => path.basename(f));
const js = outputs.find((f) => f.startsWith("app-") && f.endsWith(".js"));
const css = outputs.find((f) => f.startsWith("style-") && f.endsWith(".css"));
if (!js || !css) throw new Error(`web build: unexpected outputs ${outputs.join(", ")}`);
const html = fs
  .readFileSync(path.join(here, "index.html"), "utf8")
  .replace("%APP_JS%", `/assets/${js}`)
  .replace("%APP_CSS%", `/assets/${css}`);
if (html.includes("%APP_")) throw new Error("web build: index.html has an unreplaced placeholder");
fs.writeFileSync(path.join(tmp, "index.html"), html);
fs.copyFileSync(path.join(here, "favicon.svg"), path.join(tmp, "favicon.svg"));

fs.rmSync(outdir, { recursive: true, force: true });
fs.renameSync(tmp, outdir);

const size = (f) => {
  const b = fs.readFileSync(path.join(outdir, f));
  return `${f} ${(b.length / 1024).toFixed(1)} KiB (${(zlib.gzipSync(b).length / 1024).toFixed(1)} KiB gzipped)`;
};
console.log(`build: web app in ${path.relative(root, outdir) || outdir}: ${["index.html", `assets/${js}`, `assets/${css}`].map(size).join(", ")}`);
