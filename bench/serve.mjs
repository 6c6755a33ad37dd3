// Serves the three workers under test from ONE workerd process through Miniflare's API (no wrangler
// dev proxy in the data path), each on its own direct socket on 127.0.0.1:
//   ours     build/index.js + build/index_bg.wasm (CompiledWasm), bindings read from wrangler.toml
//   ceiling  bench/baselines/ceiling.mjs   (broadcast-only Durable Object)
//   room     bench/baselines/room.mjs      (JS room: validate, persist to SQLite, broadcast)
//   room-min the same with STORE = "message": one INSERT per message, nothing else stored
//   ceiling-rs  bench/baselines/ceiling-rs (the ceiling written with workers-rs), when
//            bench/baselines/ceiling-rs/build/ exists (bench/run builds it when a run names it)
// Durable Objects are SQLite-backed (useSQLite: true) and persisted under --state, so a second start
// on the same directory finds the same objects (used for the fresh-object measurement).
//
// Prints one JSON line on stdout when ready: {"urls": {"ours","ceiling","room",...}, "workerd_pid"}, then
// runs until stdin closes or it gets SIGTERM/SIGINT. workerd is pinned to --core (default 0) with
// `taskset -a -p`; this Node process stays wherever it was started (the runner puts it beside the
// generator).
//
// Usage: node bench/serve.mjs --state DIR [--build DIR (default build/)] [--core 0|none] [--inspector PORT] [--var NAME=VALUE]...
//                             [--notifications stub|absent (default stub: a do-nothing notifications worker)] [--variant NAME[=BUILD_DIR][,VAR=VALUE...]]...
import { Miniflare, Log, LogLevel } from "miniflare";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { applyMigrations, readWranglerToml, workerdChildren } from "../scripts/lib/workers.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "..");

function parseArgs(argv) {
  const a = { state: null, build: path.join(root, "build"), core: "0", inspector: null, vars: {}, notifications: "stub", secret: "switchboard-bench-secret-0123456789abcdef", variants: [] };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const v = () => argv[++i];
    if (k === "--state") a.state = v();
    else if (k === "--build") a.build = path.resolve(v());
    else if (k === "--core") a.core = v();
    else if (k === "--inspector") a.inspector = Number(v());
    else if (k === "--var") {
      const [n, ...rest] = v().split("=");
      a.vars[n] = rest.join("=");
    } else if (k === "--notifications") a.notifications = v();
    else if (k === "--secret") a.secret = v();
    else if (k === "--variant") {
      // NAME[=BUILD_DIR][,VAR=VALUE...]: another copy of our worker (own objects), e.g.
      // ours-noflush,ACTIVITY_FLUSH_MS=3600000 or ours-exp=/tmp/exp/build,BENCH_EXPERIMENT=3
      const [head, ...kv] = v().split(",");
      const [name, dir] = head.split("=");
      const vars = Object.fromEntries(kv.map((x) => [x.slice(0, x.indexOf("=")), x.slice(x.indexOf("=") + 1)]));
      a.variants.push({ name, dir: dir ? path.resolve(dir) : null, vars });
    }
    else throw new Error(`unknown argument ${k}`);
  }
  if (!a.state) throw new Error("--state DIR is required");
  return a;
}

const args = parseArgs(process.argv.slice(2));
fs.mkdirSync(args.state, { recursive: true });
const cfg = readWranglerToml(path.join(root, "wrangler.toml"));

// workerd's stdout/stderr: each kind of line (ids and numbers masked) is written to the log the
// first 5 times and counted after that; the counts go at the end. A worker that logs per message
// must neither flood the log nor hide a rare error, nor keep this process (which shares a core with
// the generator) busy.
const logFile = fs.openSync(path.join(args.state, "workerd.log"), "a");
let logLines = 0;
const kinds = new Map();
function drain(stream) {
  let rest = "";
  stream.on("data", (chunk) => {
    const text = rest + chunk.toString("utf8");
    const lines = text.split("\n");
    rest = lines.pop();
    for (const line of lines) {
      logLines++;
      const kind = line.replace(/[0-9A-HJKMNP-TV-Z]{26}/g, "<ulid>").replace(/\d+/g, "#").slice(0, 200);
      const n = (kinds.get(kind) || 0) + 1;
      kinds.set(kind, n);
      if (n <= 5) fs.writeSync(logFile, line + "\n");
    }
  });
}
function logSummary() {
  const top = [...kinds].sort((x, y) => y[1] - x[1]).slice(0, 50);
  fs.writeSync(logFile, `\n[serve] workerd log lines: ${logLines}; by kind:\n` + top.map(([k, n]) => `${String(n).padStart(9)}  ${k}`).join("\n") + "\n");
}

const oursDOs = {};
for (const [binding, className] of Object.entries(cfg.durableObjects)) oursDOs[binding] = { className, useSQLite: true };
// PUSHER_APP_SECRET: the app the Pusher scenario publishes to (bench/src/pusher.rs).
// The benchmark's one sender goes far past the per-member send and per-connection frame rate limits
// on purpose (it measures throughput), so they are lifted here; `--var` may set them back.
const benchLimits = { LIMIT_SENDS: "1000000/1s,1000000", LIMIT_SOCKET_FRAMES: "1000000/1s,1000000" };
const oursBindings = { ...cfg.vars, ...benchLimits, LOCAL_MODE: "true", JWT_SECRET: args.secret, PUSHER_APP_SECRET: "switchboard-bench-pusher-secret", ...args.vars };
const direct = [{ host: "127.0.0.1", port: 0 }];
const ceilingRs = path.join(here, "baselines/ceiling-rs/build");

const workers = [
  {
    name: "ours",
    modules: true,
    scriptPath: path.join(args.build, "index.js"),
    modulesRoot: args.build,
    modulesRules: [
      { type: "ESModule", include: ["**/*.js", "**/*.mjs"] },
      { type: "CompiledWasm", include: ["**/*.wasm"] },
    ],
    compatibilityDate: cfg.compat,
    compatibilityFlags: cfg.compatibilityFlags,
    bindings: oursBindings,
    d1Databases: Object.fromEntries(cfg.d1.map((b) => [b, `bench-${b}`])),
    durableObjects: oursDOs,
    unsafeDirectSockets: direct,
  },
  ...args.variants.map((v) => ({
    name: v.name,
    modules: true,
    scriptPath: path.join(v.dir ?? args.build, "index.js"),
    modulesRoot: v.dir ?? args.build,
    modulesRules: [
      { type: "ESModule", include: ["**/*.js", "**/*.mjs"] },
      { type: "CompiledWasm", include: ["**/*.wasm"] },
    ],
    compatibilityDate: cfg.compat,
    compatibilityFlags: cfg.compatibilityFlags,
    bindings: Object.fromEntries(Object.entries({ ...oursBindings, ...v.vars }).filter(([k]) => !k.startsWith("__"))),
    d1Databases: Object.fromEntries(cfg.d1.map((b) => [b, `bench-${v.name}-${b}`])),
    durableObjects: oursDOs,
    unsafeDirectSockets: direct,
  })),
  {
    name: "ceiling",
    modules: true,
    scriptPath: path.join(here, "baselines/ceiling.mjs"),
    compatibilityDate: cfg.compat,
    durableObjects: { ROOMS: { className: "CeilingRoom", useSQLite: true } },
    unsafeDirectSockets: direct,
  },
  ...(fs.existsSync(path.join(ceilingRs, "index.js"))
    ? [
        {
          name: "ceiling-rs",
          modules: true,
          scriptPath: path.join(ceilingRs, "index.js"),
          modulesRoot: ceilingRs,
          modulesRules: [
            { type: "ESModule", include: ["**/*.js", "**/*.mjs"] },
            { type: "CompiledWasm", include: ["**/*.wasm"] },
          ],
          compatibilityDate: cfg.compat,
          compatibilityFlags: cfg.compatibilityFlags,
          durableObjects: { ROOMS: { className: "CeilingRoom", useSQLite: true } },
          unsafeDirectSockets: direct,
        },
      ]
    : []),
  // room-min: the JS room storing only the message row (STORE = "message", see room.mjs).
  ...[["room", {}], ["room-min", { STORE: "message" }]].map(([name, extra]) => ({
    name,
    modules: true,
    scriptPath: path.join(here, "baselines/room.mjs"),
    compatibilityDate: cfg.compat,
    bindings: { JWT_SECRET: args.secret, JWT_AUDIENCE: cfg.vars.JWT_AUDIENCE || "switchboard", ...extra },
    durableObjects: { ROOMS: { className: "JsRoom", useSQLite: true } },
    unsafeDirectSockets: direct,
  })),
];
// Per copy of our worker: --notifications sets the default, a variant may override it with
// __notifications=stub|absent (e.g. --variant ours-absent,__notifications=absent).
const stubFor = (w) => {
  if (w.name === "ours") return args.notifications === "stub";
  const v = args.variants.find((x) => x.name === w.name);
  return v ? (v.vars.__notifications ?? args.notifications) === "stub" : false;
};
if (workers.some(stubFor) && cfg.services.includes("NOTIFICATIONS")) {
  // A do-nothing notifications worker: the RPC per message happens, its work does not.
  workers.push({
    name: "notifications-stub",
    modules: [
      {
        type: "ESModule",
        path: "stub.mjs",
        contents: `import { WorkerEntrypoint } from "cloudflare:workers";
export default class extends WorkerEntrypoint {
  async fetch() { return new Response("{}", { headers: { "content-type": "application/json" } }); }
  async sendPushForConversation(p) { return JSON.stringify({ version: 1, skipped: "bench stub", outcomes: [] }); }
  async clearBadgeBucketForUser(p) { return JSON.stringify({ version: 1, badgeCount: 0 }); }
}`,
      },
    ],
    compatibilityDate: cfg.compat,
  });
  for (const w of workers) if (stubFor(w)) w.serviceBindings = { NOTIFICATIONS: "notifications-stub" };
}

const mf = new Miniflare({
  host: "127.0.0.1",
  cf: false,
  port: 0,
  log: new Log(LogLevel.WARN),
  inspectorPort: args.inspector ?? undefined,
  handleRuntimeStdio(stdout, stderr) {
    drain(stdout);
    drain(stderr);
  },
  durableObjectsPersist: path.join(args.state, "do"),
  d1Persist: path.join(args.state, "d1"),
  workers,
});

let closing = false;
async function shutdown(code = 0) {
  if (closing) return;
  closing = true;
  try {
    await mf.dispose();
  } catch {}
  logSummary();
  process.exit(code);
}
process.on("SIGTERM", () => shutdown(0));
process.on("SIGINT", () => shutdown(0));
process.stdin.on("end", () => shutdown(0));
process.stdin.on("error", () => shutdown(0));
process.stdin.resume();

try {
  await mf.ready;
  // Local D1: apply the migrations (the send path never reads D1, but the worker expects its tables).
  for (const [b, w] of cfg.d1.flatMap((b) => ["ours", ...args.variants.map((v) => v.name)].map((w) => [b, w]))) {
    await applyMigrations(await mf.getD1Database(b, w), path.join(root, "migrations"));
  }
  const urls = {};
  for (const w of workers.filter((x) => x.unsafeDirectSockets).map((x) => x.name)) urls[w] = (await mf.unsafeGetDirectURL(w)).toString().replace(/\/$/, "");
  const pids = workerdChildren(process.pid);
  if (pids.length !== 1) throw new Error(`expected one workerd child, found ${JSON.stringify(pids)}`);
  const pid = pids[0];
  if (args.core !== "none") execFileSync("taskset", ["-a", "-p", "-c", args.core, String(pid)], { stdio: "ignore" });
  process.stdout.write(JSON.stringify({ urls, workerd_pid: pid, state: args.state }) + "\n");
} catch (e) {
  process.stderr.write(`serve: ${e && e.stack ? e.stack : e}\n`);
  await shutdown(1);
}
