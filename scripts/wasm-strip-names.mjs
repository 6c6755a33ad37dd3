// Drops the `name` custom section (function names, ~15% of the chat worker's raw wasm, ~100 KiB
// gzipped) from a wasm module, in place, after copying the named module to a second path for
// `python3 bench/tools/wasm_sizes.py` (which needs the names).
//   node scripts/wasm-strip-names.mjs build/index_bg.wasm target/wasm-names/chat.wasm
// A panic's stack then shows `wasm-function[N]`; the named copy of the same build maps N to a name.
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";

const [wasmPath, namedPath] = process.argv.slice(2);
if (!wasmPath || !namedPath) {
  console.error("usage: node scripts/wasm-strip-names.mjs MODULE.wasm NAMED_COPY.wasm");
  process.exit(2);
}
const bytes = readFileSync(wasmPath);
if (bytes.readUInt32LE(0) !== 0x6d736100) {
  console.error(`${wasmPath}: not a wasm module`);
  process.exit(1);
}

function leb(at) {
  let value = 0;
  let shift = 0;
  for (;;) {
    const b = bytes[at++];
    value += (b & 0x7f) * 2 ** shift;
    shift += 7;
    if (b < 0x80) return [value, at];
  }
}

const kept = [bytes.subarray(0, 8)];
let dropped = 0;
for (let at = 8; at < bytes.length; ) {
  const start = at;
  const id = bytes[at++];
  const [size, body] = leb(at);
  const end = body + size;
  if (end > bytes.length) {
    console.error(`${wasmPath}: section at ${start} runs past the end`);
    process.exit(1);
  }
  let isName = false;
  if (id === 0) {
    const [len, nameAt] = leb(body);
    isName = bytes.toString("latin1", nameAt, nameAt + len) === "name";
  }
  if (isName) dropped += end - start;
  else kept.push(bytes.subarray(start, end));
  at = end;
}
mkdirSync(dirname(namedPath), { recursive: true });
copyFileSync(wasmPath, namedPath);
if (dropped > 0) writeFileSync(wasmPath, Buffer.concat(kept));
console.log(`build: ${wasmPath}: name section (${dropped} bytes) dropped; the named copy is ${namedPath}`);
