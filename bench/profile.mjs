// Samples a worker's isolate with V8's CPU profiler through workerd's inspector (Miniflare's
// inspector proxy), while `switchboard-bench load` keeps it saturated, and summarizes where the
// time goes: self and inclusive time per function (wasm functions carry their Rust names), and
// the share of a few categories (wasm, JS glue, native/builtins, GC, idle).
//
// It starts `switchboard-bench load` itself (pinned to core 1), attaches while workerd is idle (its
// inspector does not answer a saturated isolate), starts the load, and stops after it.
// Writes OUT.cpuprofile (open it in Chrome DevTools), OUT.txt (the summary, also printed) and, when
// `perf` works here, OUT.perf.txt (native profile of the whole workerd process).
import WebSocket from "ws";
import fs from "node:fs";
import path from "node:path";
import readline from "node:readline";
import { spawn, spawnSync } from "node:child_process";

// node bench/profile.mjs --bin target/bench/release/switchboard-bench --build DIR --server ours --n 1000
//   --mode socket --secs 8 --port 9231 --out bench/results/profile-ours-n1000-socket [-- extra load args]
const args = { v8: true, summarize: null, bin: "target/bench/release/switchboard-bench", build: "build", server: "ours", n: 1000, mode: "socket", secs: 8, port: 9231, out: "profile", interval: 200, top: 40, extra: [] };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === "--") {
    args.extra = argv.slice(i + 1);
    break;
  }
  const v = argv[++i];
  switch (argv[i - 1]) {
    case "--summarize": args.summarize = v; break;
    case "--no-v8": args.v8 = false; i--; break;
    case "--bin": args.bin = v; break;
    case "--build": args.build = v; break;
    case "--server": args.server = v; break;
    case "--n": args.n = Number(v); break;
    case "--mode": args.mode = v; break;
    case "--secs": args.secs = Number(v); break;
    case "--port": args.port = Number(v); break;
    case "--out": args.out = v; break;
    case "--interval-us": args.interval = Number(v); break;
    case "--top": args.top = Number(v); break;
    default: throw new Error(`unknown argument ${argv[i - 1]}`);
  }
}

let profile, done = {};
if (args.summarize) {
  profile = JSON.parse(fs.readFileSync(args.summarize, "utf8"));
  args.out = args.summarize.replace(/\.cpuprofile$/, "");
  // Files are named <server>-n<N>-<mode>[-tag].cpuprofile: the header names what was profiled.
  const named = path.basename(args.summarize).match(/^(.+)-n(\d+)-(socket|http)/);
  if (named && !process.argv.includes("--server")) [args.server, args.n, args.mode] = [named[1], Number(named[2]), named[3]];
} else {
// 1. The load: set up, then wait for "go".
const load = spawn("taskset", ["-c", "1", args.bin, "load", "--server", args.server, "--n", String(args.n), "--mode", args.mode,
  "--secs", String(args.secs), "--inspector", String(args.port), "--build", args.build, ...args.extra], { stdio: ["pipe", "pipe", "inherit"] });
const lines = readline.createInterface({ input: load.stdout });
const nextLine = () => new Promise((resolve, reject) => {
  lines.once("line", resolve);
  load.once("exit", (c) => reject(new Error(`load exited (${c})`)));
});
const ready = JSON.parse(await nextLine());
process.stderr.write(`profile: ${JSON.stringify(ready)}\n`);

// 2. Attach the V8 profiler while workerd is idle (--no-v8: perf only, without the profiler's own cost).
let ws = null, call = null;
if (args.v8) {
// 2. Attach the V8 profiler while workerd is idle.
ws = new WebSocket(`ws://127.0.0.1:${args.port}/core:user:${args.server}`, { perMessageDeflate: false, maxPayload: 1 << 30 });
let id = 0;
const pending = new Map();
ws.on("message", (data) => {
  const m = JSON.parse(data.toString());
  if (m.id && pending.has(m.id)) {
    pending.get(m.id)(m);
    pending.delete(m.id);
  }
});
call = (method, params = {}) =>
  new Promise((resolve, reject) => {
    const n = ++id;
    pending.set(n, (m) => (m.error ? reject(new Error(`${method}: ${JSON.stringify(m.error)}`)) : resolve(m.result || {})));
    ws.send(JSON.stringify({ id: n, method, params }));
  });
await new Promise((resolve, reject) => {
  ws.on("open", resolve);
  ws.on("error", reject);
});
await call("Runtime.enable");
await call("Profiler.enable");
await call("Profiler.setSamplingInterval", { interval: args.interval });
await call("Profiler.start");

}
// 3. perf on the whole workerd process, when perf works here.
let perf = null;
const perfData = `${args.out}.perf.data`;
if (spawnSync("perf", ["record", "-q", "-o", "/dev/null", "-p", String(ready.workerd_pid), "--", "sleep", "0.1"]).status === 0) {
  perf = spawn("perf", ["record", "-q", "-F", "499", "-g", "-o", perfData, "-p", String(ready.workerd_pid), "--", "sleep", String(args.secs + 2)], { stdio: "ignore" });
}

// 4. Go; wait for the load to finish; stop the profiler (idle again).
load.stdin.write("go\n");
done = JSON.parse(await nextLine());
process.stderr.write(`profile: ${JSON.stringify(done)}\n`);
if (args.v8) {
  ({ profile } = await call("Profiler.stop"));
  ws.close();
}
load.stdin.end("quit\n");
if (profile) fs.writeFileSync(`${args.out}.cpuprofile`, JSON.stringify(profile));
if (perf) {
  await new Promise((r) => perf.once("exit", r));
  const rep = (extra) => spawnSync("perf", ["report", "-i", perfData, "--no-children", "--stdio", ...extra], { encoding: "utf8", maxBuffer: 1 << 28 }).stdout || "";
  const clean = (t, n) => t.split("\n").filter((l) => l.trim() && !l.startsWith("#")).slice(0, n).join("\n");
  const text = `perf: whole workerd process during the load (${args.secs + 2} s), share of samples\n\nby shared object:\n` +
    clean(rep(["--sort", "dso"]), 20) + "\n\nby symbol (>= 0.5%):\n" + clean(rep(["--sort", "dso,sym", "--percent-limit", "0.5", "-g", "none"]), 70) + "\n";
  fs.writeFileSync(`${args.out}.perf.txt`, text);
  fs.rmSync(perfData, { force: true });
  process.stdout.write(text + "\n");
}
await new Promise((r) => load.once("exit", r));
}
if (!profile) process.exit(0);
// ---- summary ----
const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map();
for (const n of profile.nodes) for (const c of n.children || []) parent.set(c, n.id);
const total = profile.samples.length;
const dt = (profile.endTime - profile.startTime) / 1000 / Math.max(1, total); // ms per sample
const label = (n) => {
  const f = n.callFrame;
  const name = f.functionName || "(anonymous)";
  const where = f.url ? (f.url.startsWith("wasm://") ? "wasm" : f.url.split("/").pop() + ":" + f.lineNumber) : "";
  return where ? `${name} [${where}]` : name;
};
const category = (n) => {
  const f = n.callFrame;
  if (f.functionName === "(idle)") return "idle";
  if (f.functionName === "(garbage collector)") return "GC";
  if (f.functionName === "(program)") return "program (native, outside JS)";
  if (f.url.startsWith("wasm://")) return "wasm (Rust)";
  if (f.url === "") return "native builtins (send, exec, getWebSockets, ...)";
  return "JS (glue and baselines)";
};
const selfHits = new Map();
const inclHits = new Map();
const catHits = new Map();
for (const s of profile.samples) {
  const n = nodes.get(s);
  const l = label(n);
  selfHits.set(l, (selfHits.get(l) || 0) + 1);
  const c = category(n);
  catHits.set(c, (catHits.get(c) || 0) + 1);
  const seen = new Set();
  for (let cur = s; cur !== undefined; cur = parent.get(cur)) {
    const ll = label(nodes.get(cur));
    if (!seen.has(ll)) {
      seen.add(ll);
      inclHits.set(ll, (inclHits.get(ll) || 0) + 1);
    }
  }
}
const busy = total - (catHits.get("idle") || 0);
const pct = (h, of) => ((100 * h) / Math.max(1, of)).toFixed(1).padStart(5);
let out = `V8 profile of the ${args.server} isolate (N=${args.n}, ${args.mode} sends): ${total} samples over ${((profile.endTime - profile.startTime) / 1e6).toFixed(1)} s (${(dt * 1000).toFixed(0)} us each); busy ${pct(busy, total)}%\n`;
out += `\nby category (share of busy samples):\n`;
for (const [c, h] of [...catHits].sort((a, b) => b[1] - a[1])) if (c !== "idle") out += `  ${pct(h, busy)}%  ${c}\n`;
out += `\nself time, top ${args.top} (share of busy samples):\n`;
for (const [l, h] of [...selfHits].sort((a, b) => b[1] - a[1]).filter(([l]) => !l.startsWith("(idle)")).slice(0, args.top)) out += `  ${pct(h, busy)}%  ${l.slice(0, 160)}\n`;
out += `\ninclusive time, top ${args.top} (share of busy samples):\n`;
for (const [l, h] of [...inclHits].sort((a, b) => b[1] - a[1]).filter(([l]) => !l.startsWith("(idle)") && l !== "(root)").slice(0, args.top)) out += `  ${pct(h, busy)}%  ${l.slice(0, 160)}\n`;
out = `load: ${JSON.stringify(done)}\n` + out;
fs.writeFileSync(`${args.out}.txt`, out);
process.stdout.write(out);
