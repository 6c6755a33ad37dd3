#!/usr/bin/env bash
# Unit tests of packages/client-ts (reconnect, resume, outbox, acks, typing) with a fake socket and
# fake time: tsc type-checks them, esbuild bundles test/*.test.ts to dist/test/, then `node --test` runs them. Seconds.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root="$(cd ../.. && pwd)"
bash scripts/build.sh
"$root/node_modules/.bin/tsc" -p test/tsconfig.json   # the tests type-check against the generated frame types
rm -rf dist/test
"$root/node_modules/.bin/esbuild" test/*.test.ts --bundle --format=esm --platform=node --target=node20 \
  --log-level=warning --outdir=dist/test --out-extension:.js=.mjs
node --test --test-reporter=spec dist/test/
