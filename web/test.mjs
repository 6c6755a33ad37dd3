// Unit tests of the web app's logic without a browser (web/test/*.test.ts): esbuild bundles them to
// build/web-test/, then `node --test` runs them. Seconds. Run by scripts/test; the app in a real
// browser is tested by tests/e2e/tests/web.rs.
import * as esbuild from "esbuild";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const out = path.join(here, "../build/web-test");
fs.rmSync(out, { recursive: true, force: true });
const tests = fs.readdirSync(path.join(here, "test")).filter((f) => f.endsWith(".test.ts"));
await esbuild.build({
  entryPoints: tests.map((f) => path.join(here, "test", f)),
  outdir: out,
  bundle: true,
  format: "esm",
  platform: "node",
  target: "node20",
  outExtension: { ".js": ".mjs" },
  logLevel: "warning",
});
const r = spawnSync(process.execPath, ["--test", out], { stdio: "inherit" });
process.exit(r.status ?? 1);
