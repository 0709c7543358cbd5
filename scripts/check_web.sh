#!/usr/bin/env bash
# The web app's own checks (app/web has no build step; these only read it):
#   1. npm ci: TypeScript and uPlot's type declarations, versions and checksums from
#      package-lock.json (node_modules/ is git-ignored and not package data);
#   2. the vendored uPlot is byte-identical to the locked npm package;
#   3. tsc --noEmit --allowJs --checkJs over every module (// @ts-check + JSDoc);
#   4. function lengths: no function longer than 60 lines (STYLE.md, "Web app");
#   5. node --test tests/web/: unit tests of the pure modules.
# Needs node >= 20 and npm. Run by tests/unit/test_web_checks.py (so scripts/test.sh
# covers it) or directly: scripts/check_web.sh
set -euo pipefail
cd "$(dirname "$0")/.."

command -v node >/dev/null || { echo "check_web: node is not installed" >&2; exit 127; }
command -v npm >/dev/null || { echo "check_web: npm is not installed" >&2; exit 127; }

echo "== npm ci"
npm ci --no-audit --no-fund --loglevel=error

echo "== vendored uPlot matches the locked package"
cmp node_modules/uplot/dist/uPlot.esm.js app/web/vendor/uplot/uPlot.esm.js
cmp node_modules/uplot/dist/uPlot.min.css app/web/vendor/uplot/uPlot.min.css
test "$(cat app/web/vendor/uplot/VERSION)" = "$(node -p 'require("./node_modules/uplot/package.json").version')"

echo "== tsc"
node_modules/.bin/tsc -p jsconfig.json --noEmit --allowJs --checkJs

echo "== every module is // @ts-check"
missing="$(grep -L '^// @ts-check' $(find app/web -name '*.js' -not -path '*/vendor/*'))" || true
if [ -n "$missing" ]; then echo "missing // @ts-check:" $missing >&2; exit 1; fi

echo "== function lengths"
node scripts/web_function_lengths.mjs --max 60

echo "== node --test"
node --test tests/web/*.test.mjs
