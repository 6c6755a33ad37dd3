// Serves the built workers for the e2e tests from ONE workerd process through Miniflare's API, as
// `wrangler dev -c wrangler.toml -c services/...` would, without wrangler's proxy or dev registry:
// every worker listed in scripts/wrangler-configs (the first is the primary), each on a direct
// socket on 127.0.0.1, with
//   - its wrangler.toml [vars], then its .dev.vars (unless --no-dev-vars), then --var overrides;
//   - its local D1 databases (one per database_id, shared between workers), with the migrations of
//     its migrations_dir applied (recorded in d1_migrations, as wrangler does);
//   - its Durable Objects (SQLite-backed as its [[migrations]] say), persisted under --state;
//   - its service bindings to the other listed workers (Workers RPC on the default entrypoint);
//   - its [assets] (the web app, build/web/), served in front of it on its socket as wrangler dev
//     does: existing files are answered from the directory, everything else reaches the worker.
// Starting it again on the same --state finds the same objects and rows.
//
// Prints one JSON line on stdout when ready:
//   {"url": "http://127.0.0.1:PORT", "port": PORT, "urls": {"<worker name>": url, ...}, "workerd_pid": N}
// and runs until stdin closes (so it ends with the process that started it) or SIGTERM/SIGINT.
// Everything else (workerd's output, Miniflare's log, errors) goes to --log (default: stderr).
//
// Usage: node tests/e2e/serve.mjs --state DIR [--port N (the primary's; default any free port)]
//          [--only WORKER_NAME (serve just that worker, as the primary)] [--no-dev-vars]
//          [--var [WORKER_NAME:]NAME=VALUE]... (without WORKER_NAME: the primary's)
//          [--configs FILE (default scripts/wrangler-configs)] [--log FILE]
import { Miniflare, Log, LogLevel } from "miniflare";
import fs from "node:fs";
import path from "node:path";
import {
  applyAllMigrations,
  listedConfigs,
  readDevVars,
  readWranglerToml,
  workerdChildren,
  workerOptions,
} from "../../scripts/lib/workers.mjs";

function parseArgs(argv) {
  const a = { state: null, port: 0, only: null, devVars: true, vars: [], configs: undefined, log: null };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const v = () => {
      if (i + 1 >= argv.length) throw new Error(`${k} needs a value`);
      return argv[++i];
    };
    if (k === "--state") a.state = path.resolve(v());
    else if (k === "--port") a.port = Number(v());
    else if (k === "--only") a.only = v();
    else if (k === "--no-dev-vars") a.devVars = false;
    else if (k === "--configs") a.configs = path.resolve(v());
    else if (k === "--log") a.log = path.resolve(v());
    else if (k === "--var") {
      const s = v();
      const eq = s.indexOf("=");
      if (eq < 0) throw new Error(`--var ${s}: expected [WORKER:]NAME=VALUE`);
      const head = s.slice(0, eq);
      const colon = head.indexOf(":");
      a.vars.push({ worker: colon < 0 ? null : head.slice(0, colon), name: head.slice(colon + 1), value: s.slice(eq + 1) });
    } else throw new Error(`unknown argument ${k}`);
  }
  if (!a.state) throw new Error("--state DIR is required");
  if (!Number.isInteger(a.port) || a.port < 0 || a.port > 65535) throw new Error(`bad --port`);
  return a;
}

const logFd = (() => {
  const i = process.argv.indexOf("--log");
  return i > 0 && process.argv[i + 1] ? fs.openSync(path.resolve(process.argv[i + 1]), "a") : 2;
})();
const writeLog = (s) => fs.writeSync(logFd, s.endsWith("\n") ? s : s + "\n");

class FileLog extends Log {
  log(message) {
    writeLog(message);
  }
}

let mf = null;
let closing = false;
async function shutdown(code) {
  if (closing) return;
  closing = true;
  try {
    if (mf) await mf.dispose();
  } catch (e) {
    writeLog(`serve: dispose: ${e}`);
  }
  writeLog(`serve: stopped (${code})`);
  process.exit(code);
}
process.on("SIGTERM", () => shutdown(0));
process.on("SIGINT", () => shutdown(0));
process.on("SIGHUP", () => shutdown(0));
process.stdin.on("end", () => shutdown(0));
process.stdin.on("error", () => shutdown(0));
process.stdin.resume();

try {
  const args = parseArgs(process.argv.slice(2));
  fs.mkdirSync(args.state, { recursive: true });
  let cfgs = listedConfigs(args.configs).map(readWranglerToml);
  if (args.only) {
    cfgs = cfgs.filter((c) => c.name === args.only);
    if (!cfgs.length) throw new Error(`--only ${args.only}: no such worker in the listed configs`);
  }
  const names = new Set(cfgs.map((c) => c.name));
  for (const v of args.vars) {
    if (v.worker !== null && !names.has(v.worker)) throw new Error(`--var ${v.worker}:${v.name}: no such worker served`);
  }
  const primary = cfgs[0].name;
  const services = Object.fromEntries(cfgs.map((c) => [c.name, c.name]));
  const workers = cfgs.map((cfg, i) => {
    const overrides = Object.fromEntries(
      args.vars.filter((v) => (v.worker ?? primary) === cfg.name).map((v) => [v.name, v.value]),
    );
    const bindings = { ...(args.devVars ? readDevVars(cfg.dir) : {}), ...overrides };
    return workerOptions(cfg, { bindings, services, port: i === 0 ? args.port : 0 });
  });
  writeLog(`serve: ${new Date().toISOString()} starting ${[...names].join(", ")} (state ${args.state})`);

  mf = new Miniflare({
    host: "127.0.0.1",
    port: 0,
    cf: false,
    log: new FileLog(LogLevel.WARN),
    handleRuntimeStdio(stdout, stderr) {
      stdout.on("data", (b) => fs.writeSync(logFd, b));
      stderr.on("data", (b) => fs.writeSync(logFd, b));
    },
    durableObjectsPersist: path.join(args.state, "do"),
    d1Persist: path.join(args.state, "d1"),
    workers,
  });
  await mf.ready;
  const applied = await applyAllMigrations(mf, cfgs.map((cfg) => ({ name: cfg.name, cfg })));
  for (const [db, files] of Object.entries(applied)) if (files.length) writeLog(`serve: ${db}: applied ${files.join(", ")}`);
  const urls = {};
  for (const name of names) urls[name] = (await mf.unsafeGetDirectURL(name)).toString().replace(/\/$/, "");
  const url = urls[primary];
  const pids = workerdChildren(process.pid);
  const ready = { url, port: Number(new URL(url).port), urls, workerd_pid: pids.length === 1 ? pids[0] : null };
  writeLog(`serve: ready ${JSON.stringify(ready)}`);
  process.stdout.write(JSON.stringify(ready) + "\n");
} catch (e) {
  writeLog(`serve: ${e && e.stack ? e.stack : e}`);
  process.stderr.write(`serve: ${e && e.message ? e.message : e}\n`);
  await shutdown(1);
}
