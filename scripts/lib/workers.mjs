// Serving the repository's workers through Miniflare's API (one workerd process), as wrangler dev
// would: the parts of a wrangler.toml that matter locally, `.dev.vars`, worker-build outputs as
// modules, local D1 migrations. Used by tests/e2e/serve.mjs (the e2e harness) and bench/serve.mjs.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

// ---------------------------------------------------------------------------------------------
// A small TOML reader: tables, arrays of tables, and key = value with strings, numbers, booleans,
// arrays and inline tables (what wrangler.toml files here use; no dotted keys, no multi-line
// strings, no dates).
// ---------------------------------------------------------------------------------------------

function stripComment(line) {
  let quote = null;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quote) {
      if (c === "\\" && quote === '"') i++;
      else if (c === quote) quote = null;
    } else if (c === '"' || c === "'") quote = c;
    else if (c === "#") return line.slice(0, i);
  }
  return line;
}

function parseValue(src, file) {
  let i = 0;
  const fail = (what) => {
    throw new Error(`${file}: cannot read TOML value (${what}) in: ${src}`);
  };
  const ws = () => {
    while (i < src.length && /\s/.test(src[i])) i++;
  };
  const value = () => {
    ws();
    const c = src[i];
    if (c === '"') {
      let j = i + 1;
      while (j < src.length && src[j] !== '"') j += src[j] === "\\" ? 2 : 1;
      if (j >= src.length) fail("unterminated string");
      const s = JSON.parse(src.slice(i, j + 1));
      i = j + 1;
      return s;
    }
    if (c === "'") {
      const j = src.indexOf("'", i + 1);
      if (j < 0) fail("unterminated literal string");
      const s = src.slice(i + 1, j);
      i = j + 1;
      return s;
    }
    if (c === "[") {
      i++;
      const out = [];
      for (;;) {
        ws();
        if (src[i] === "]") {
          i++;
          return out;
        }
        out.push(value());
        ws();
        if (src[i] === ",") i++;
        else if (src[i] !== "]") fail("expected , or ]");
      }
    }
    if (c === "{") {
      i++;
      const out = {};
      for (;;) {
        ws();
        if (src[i] === "}") {
          i++;
          return out;
        }
        const m = /^([A-Za-z0-9_-]+|"[^"]*")\s*=/.exec(src.slice(i));
        if (!m) fail("expected key = value");
        i += m[0].length;
        out[m[1].replace(/^"|"$/g, "")] = value();
        ws();
        if (src[i] === ",") i++;
        else if (src[i] !== "}") fail("expected , or }");
      }
    }
    const m = /^(true|false|[+-]?[0-9][0-9_]*(\.[0-9_]+)?([eE][+-]?[0-9]+)?)/.exec(src.slice(i));
    if (!m) fail("unsupported value");
    i += m[0].length;
    return m[1] === "true" ? true : m[1] === "false" ? false : Number(m[1].replace(/_/g, ""));
  };
  const v = value();
  ws();
  if (i !== src.length) fail("trailing characters");
  return v;
}

function depth(text) {
  let d = 0;
  let quote = null;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quote) {
      if (c === "\\" && quote === '"') i++;
      else if (c === quote) quote = null;
    } else if (c === '"' || c === "'") quote = c;
    else if (c === "[" || c === "{") d++;
    else if (c === "]" || c === "}") d--;
  }
  return d;
}

export function parseToml(text, file = "toml") {
  const root = {};
  let current = root;
  const lines = text.split(/\r?\n/);
  for (let n = 0; n < lines.length; n++) {
    const line = stripComment(lines[n]).trim();
    if (!line) continue;
    let m = /^\[\[\s*([A-Za-z0-9_.-]+)\s*\]\]$/.exec(line);
    if (m) {
      const keys = m[1].split(".");
      let t = root;
      for (const k of keys.slice(0, -1)) t = t[k] ??= {};
      const arr = (t[keys.at(-1)] ??= []);
      current = {};
      arr.push(current);
      continue;
    }
    m = /^\[\s*([A-Za-z0-9_.-]+)\s*\]$/.exec(line);
    if (m) {
      current = root;
      for (const k of m[1].split(".")) current = current[k] ??= {};
      continue;
    }
    m = /^([A-Za-z0-9_-]+|"[^"]*")\s*=\s*(.*)$/.exec(line);
    if (!m) throw new Error(`${file}:${n + 1}: cannot read: ${line}`);
    let value = m[2];
    while (depth(value) > 0 && n + 1 < lines.length) value += " " + stripComment(lines[++n]).trim();
    current[m[1].replace(/^"|"$/g, "")] = parseValue(value, `${file}:${n + 1}`);
  }
  return root;
}

/// What a wrangler.toml says about running its worker locally. Paths are absolute.
export function readWranglerToml(file) {
  file = path.resolve(file);
  const dir = path.dirname(file);
  const t = parseToml(fs.readFileSync(file, "utf8"), file);
  const durableObjects = {};
  for (const b of t.durable_objects?.bindings ?? []) durableObjects[b.name] = b.class_name;
  const sqliteClasses = (t.migrations ?? []).flatMap((m) => m.new_sqlite_classes ?? []);
  const d1Databases = (t.d1_databases ?? []).map((d) => ({
    binding: d.binding,
    id: d.preview_database_id ?? d.database_id ?? d.database_name,
    migrationsDir: path.resolve(dir, d.migrations_dir ?? "migrations"),
  }));
  const serviceBindings = (t.services ?? []).map((s) => ({ binding: s.binding, service: s.service, entrypoint: s.entrypoint }));
  const vars = {};
  for (const [k, v] of Object.entries(t.vars ?? {})) vars[k] = typeof v === "string" ? v : JSON.stringify(v);
  // [assets]: static files served in front of the worker (wrangler's getAssetsOptions)
  const assets = t.assets
    ? {
        directory: path.resolve(dir, t.assets.directory ?? ""),
        htmlHandling: t.assets.html_handling,
        notFoundHandling: t.assets.not_found_handling,
        runWorkerFirst: t.assets.run_worker_first,
      }
    : null;
  return {
    file,
    dir,
    name: t.name,
    main: t.main ? path.resolve(dir, t.main) : null,
    compat: t.compatibility_date ?? "2026-04-01",
    compatibilityFlags: t.compatibility_flags ?? [],
    vars,
    durableObjects,
    sqliteClasses,
    d1Databases,
    serviceBindings,
    assets,
    // binding names only (bench/serve.mjs)
    d1: d1Databases.map((d) => d.binding),
    services: serviceBindings.map((s) => s.binding),
  };
}

/// The `.dev.vars` beside a wrangler.toml (NAME=value or NAME="value" lines), or {}.
export function readDevVars(dir) {
  const out = {};
  let text;
  try {
    text = fs.readFileSync(path.join(dir, ".dev.vars"), "utf8");
  } catch {
    return out;
  }
  for (const raw of text.split(/\r?\n/)) {
    const m = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$/.exec(raw);
    if (!m || raw.trim().startsWith("#")) continue;
    let v = m[2];
    if (v.startsWith('"') && v.endsWith('"') && v.length >= 2) v = JSON.parse(v);
    else if (v.startsWith("'") && v.endsWith("'") && v.length >= 2) v = v.slice(1, -1);
    out[m[1]] = v;
  }
  return out;
}

/// The config files listed in scripts/wrangler-configs (primary first), absolute.
export function listedConfigs(listFile = path.join(repoRoot, "scripts/wrangler-configs")) {
  const lines = fs.readFileSync(listFile, "utf8").split(/\r?\n/);
  const out = lines.map((l) => l.replace(/#.*/, "").trim()).filter(Boolean).map((l) => path.resolve(repoRoot, l));
  return out.length ? out : [path.join(repoRoot, "wrangler.toml")];
}

/// Module rules for a worker-build output directory (build/index.js + ES modules + wasm).
export const buildModulesRules = [
  { type: "ESModule", include: ["**/*.js", "**/*.mjs"] },
  { type: "CompiledWasm", include: ["**/*.wasm"] },
];

/// Miniflare's `assets` option for a config's [assets], as wrangler dev builds it: files that exist
/// in the directory are served (GET/HEAD) and everything else reaches the worker, unless
/// run_worker_first says otherwise. Only `true`/`false` run_worker_first is supported here.
export function assetsOptions(cfg) {
  const a = cfg.assets;
  if (!a) return undefined;
  if (!fs.existsSync(a.directory) || !fs.statSync(a.directory).isDirectory()) {
    throw new Error(`${cfg.file}: [assets] directory ${a.directory} does not exist: run bash scripts/build`);
  }
  if (a.runWorkerFirst !== undefined && typeof a.runWorkerFirst !== "boolean") {
    throw new Error(`${cfg.file}: [assets] run_worker_first: only true or false is supported by scripts/lib/workers.mjs`);
  }
  const routerConfig = { has_user_worker: Boolean(cfg.main) };
  if (a.runWorkerFirst !== undefined) routerConfig.invoke_user_worker_ahead_of_assets = a.runWorkerFirst;
  return {
    directory: a.directory,
    routerConfig,
    assetConfig: {
      html_handling: a.htmlHandling,
      not_found_handling: a.notFoundHandling,
      compatibility_date: cfg.compat,
      compatibility_flags: cfg.compatibilityFlags,
    },
  };
}

/// Miniflare worker options for a built worker described by `cfg` (from readWranglerToml).
/// `bindings` go over the config's [vars]; `services` maps a service name to the Miniflare worker
/// that answers it (bindings to services not in the map are left out); `port` is its direct
/// socket on 127.0.0.1 (0: any free port; null: none).
export function workerOptions(cfg, { bindings = {}, services = {}, port = 0, name = cfg.name } = {}) {
  if (!cfg.main) throw new Error(`${cfg.file}: no main`);
  if (!fs.existsSync(cfg.main)) throw new Error(`${cfg.main} does not exist: run bash scripts/build`);
  const serviceBindings = {};
  for (const s of cfg.serviceBindings) {
    if (services[s.service] === undefined) continue;
    serviceBindings[s.binding] = s.entrypoint ? { name: services[s.service], entrypoint: s.entrypoint } : services[s.service];
  }
  const durableObjects = {};
  for (const [binding, className] of Object.entries(cfg.durableObjects)) {
    durableObjects[binding] = { className, useSQLite: cfg.sqliteClasses.includes(className) };
  }
  const assets = assetsOptions(cfg);
  return {
    name,
    modules: true,
    scriptPath: cfg.main,
    modulesRoot: path.dirname(cfg.main),
    modulesRules: buildModulesRules,
    compatibilityDate: cfg.compat,
    compatibilityFlags: cfg.compatibilityFlags,
    bindings: { ...cfg.vars, ...bindings },
    d1Databases: Object.fromEntries(cfg.d1Databases.map((d) => [d.binding, d.id])),
    durableObjects,
    serviceBindings,
    // with assets, the direct socket is served by Miniflare's asset router in front of the worker
    ...(assets ? { assets } : {}),
    ...(port === null ? {} : { unsafeDirectSockets: [{ host: "127.0.0.1", port }] }),
  };
}

// ---------------------------------------------------------------------------------------------
// D1 migrations
// ---------------------------------------------------------------------------------------------

/// Splits SQL into statements at `;` outside strings and comments; drops comments.
export function splitSql(sql) {
  const out = [];
  let cur = "";
  for (let i = 0; i < sql.length; i++) {
    const c = sql[i];
    if (c === "-" && sql[i + 1] === "-") {
      while (i < sql.length && sql[i] !== "\n") i++;
      cur += "\n";
    } else if (c === "/" && sql[i + 1] === "*") {
      const end = sql.indexOf("*/", i + 2);
      i = end < 0 ? sql.length : end + 1;
      cur += " ";
    } else if (c === "'" || c === '"' || c === "`") {
      let j = i + 1;
      while (j < sql.length && !(sql[j] === c && sql[j + 1] !== c)) j += sql[j] === c ? 2 : 1;
      cur += sql.slice(i, j + 1);
      i = j;
    } else if (c === ";") {
      if (cur.trim()) out.push(cur.trim());
      cur = "";
    } else cur += c;
  }
  if (cur.trim()) out.push(cur.trim());
  return out;
}

/// Applies the `*.sql` files of `dir` not yet recorded in `d1_migrations` (the table wrangler's
/// `d1 migrations apply` keeps), in name order, each in one batch with its record. Returns the
/// names applied.
export async function applyMigrations(db, dir) {
  if (!fs.existsSync(dir)) return [];
  await db
    .prepare(
      "CREATE TABLE IF NOT EXISTS d1_migrations(id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT UNIQUE, applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL)",
    )
    .run();
  const done = new Set((await db.prepare("SELECT name FROM d1_migrations").all()).results.map((r) => r.name));
  const applied = [];
  for (const f of fs.readdirSync(dir).filter((f) => f.endsWith(".sql")).sort()) {
    if (done.has(f)) continue;
    const stmts = splitSql(fs.readFileSync(path.join(dir, f), "utf8")).map((s) => db.prepare(s));
    stmts.push(db.prepare("INSERT INTO d1_migrations (name) VALUES (?)").bind(f));
    await db.batch(stmts);
    applied.push(f);
  }
  return applied;
}

/// Applies each D1 database's migrations once (databases shared by several workers by id).
export async function applyAllMigrations(mf, workers) {
  const seen = new Set();
  const applied = {};
  for (const { name, cfg } of workers) {
    for (const d of cfg.d1Databases) {
      const key = `${d.id}\0${d.migrationsDir}`;
      if (seen.has(key)) continue;
      seen.add(key);
      applied[`${name}.${d.binding}`] = await applyMigrations(await mf.getD1Database(d.binding, name), d.migrationsDir);
    }
  }
  return applied;
}

/// Pids of the workerd processes whose parent is `pid`.
export function workerdChildren(pid) {
  const out = [];
  for (const d of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, "utf8");
      const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === pid && comm.startsWith("workerd")) out.push(Number(d));
    } catch {}
  }
  return out;
}
