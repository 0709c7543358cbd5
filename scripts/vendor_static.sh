#!/usr/bin/env bash
# Re-fetch the web app's one third-party library, uPlot, from the npm registry into
# app/web/vendor/uplot/ (committed: the app has no build step and the server needs
# no network). Only the ES module build, its stylesheet and the licence are kept.
#
# Usage: scripts/vendor_static.sh            (needs node + npm)
#
# Vendored: uplot 1.6.32 (MIT, Copyright (c) 2022 Leon Sorokin)
#   npm integrity sha512-KIMVnG68zvu5XXUbC4LQEPnhwOxBuLyW1AHtpm6IKTXImkbLgkMy+jabjLgSLMasNuGGzQm/ep3tOkyTxpiQIw==
#   tarball sha256 4b8a8191e425658e3ea8c8c1314b0fc679c861ee3a1af2b20c7b16ba50b5133d
# To upgrade: change UPLOT_VERSION and the two checksums above, run, look at the
# charts (tests/browser), commit app/web/vendor/uplot/ and this file together,
# with the same version in package.json's devDependencies (npm install -D -E
# uplot@<version>): scripts/check_web.sh checks the vendored files equal that package
# and type-checks against its declarations (vendor/uplot/uPlot.esm.d.ts re-exports them).
set -euo pipefail
cd "$(dirname "$0")/.."

UPLOT_VERSION="1.6.32"
UPLOT_SHA256="4b8a8191e425658e3ea8c8c1314b0fc679c861ee3a1af2b20c7b16ba50b5133d"
dest="app/web/vendor/uplot"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "uplot@${UPLOT_VERSION}" >/dev/null)
tarball="$tmp/uplot-${UPLOT_VERSION}.tgz"
echo "${UPLOT_SHA256}  ${tarball}" | sha256sum --check --quiet
tar -xzf "$tarball" -C "$tmp"

mkdir -p "$dest"
cp "$tmp/package/dist/uPlot.esm.js" "$dest/uPlot.esm.js"
cp "$tmp/package/dist/uPlot.min.css" "$dest/uPlot.min.css"
cp "$tmp/package/LICENSE" "$dest/LICENSE"
echo "$UPLOT_VERSION" > "$dest/VERSION"
echo "vendored uplot ${UPLOT_VERSION} into ${dest}"
