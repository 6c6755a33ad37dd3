#!/usr/bin/env bash
# Builds packages/client-ts: the frame types generated from docs/schemas/frames.json, the ES module
# bundle dist/switchboard-client.js (esbuild) and the declarations dist/types/ (tsc, which also
# type-checks). Each step is skipped when its outputs are newer than its inputs.
# Usage: bash packages/client-ts/scripts/build.sh   (scripts/build runs it)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root="$(cd ../.. && pwd)"
schema="$root/docs/schemas/frames.json"
gen=src/generated/frames.ts

# newer OUT INPUTS...: true when OUT exists and is newer than every input
newer() {
  local out="$1"; shift
  [[ -e "$out" ]] || return 1
  [[ -z "$(find "$@" -newer "$out" -print -quit 2>/dev/null)" ]]
}

if ! newer "$gen" "$schema" scripts/gen-types.mjs; then
  echo "client-ts: generating $gen from docs/schemas/frames.json"
  node scripts/gen-types.mjs "$schema" "$gen"
fi
if ! newer dist/switchboard-client.js src; then
  echo "client-ts: esbuild dist/switchboard-client.js"
  "$root/node_modules/.bin/esbuild" src/index.ts --bundle --format=esm --target=es2022 --platform=neutral \
    --sourcemap --log-level=warning --outfile=dist/switchboard-client.js
fi
if ! newer dist/types/index.d.ts src tsconfig.json; then
  echo "client-ts: tsc (type check, declarations)"
  "$root/node_modules/.bin/tsc" -p tsconfig.json
  touch dist/types/index.d.ts
fi
