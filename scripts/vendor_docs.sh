#!/usr/bin/env bash
# Re-fetch the API docs' two browser bundles from the npm registry into
# app/web/vendor/ (committed: /docs and /redoc then load nothing from a CDN and work
# with no outside network). app/api/docs.py serves the pages that use them.
#
# Usage: scripts/vendor_docs.sh            (needs node + npm)
#
# Vendored:
#   swagger-ui-dist 5.36.0 (Apache-2.0, SmartBear Software)
#     npm integrity sha512-Lt6/Kb0gXmLdiabLhvso4VdJP9V7qJWB0zh0gzeXUV3+CMOTzMmvpJRSXN7EAjfwixwmoi9ezDbLHiexC7lA9A==
#     tarball sha256 685a2b38b5d6eab2dbc096a8596db11cc7409cdb671d2e3bec8f9b017d0d566b
#   redoc 2.5.4 (MIT, Redocly): the 2.x line FastAPI's own pages use (redoc@2)
#     npm integrity sha512-M6jWhG1qoBnH6TFmzJnstyCZ87HmOY/UzDm78mHiYihEdlV/YcS9ogOo1NlElnJMeLsyxHFe2yFc4sNjHTrABQ==
#     tarball sha256 44922df4d0eb45c1b066c09ec251e6bd9bd7ded16bc69e87613337b9d911a56e
# Each destination gets VERSION and SHA256SUMS (of the copied files), which
# tests/unit/test_vendored_docs.py checks against the files and the versions here.
# To upgrade: change a version and its checksum above and below, run, open /docs and
# /redoc (tests/browser/test_docs_offline.py), commit app/web/vendor/ and this file.
set -euo pipefail
cd "$(dirname "$0")/.."

SWAGGER_UI_VERSION="5.36.0"
SWAGGER_UI_SHA256="685a2b38b5d6eab2dbc096a8596db11cc7409cdb671d2e3bec8f9b017d0d566b"
REDOC_VERSION="2.5.4"
REDOC_SHA256="44922df4d0eb45c1b066c09ec251e6bd9bd7ded16bc69e87613337b9d911a56e"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# fetch NAME VERSION SHA256: npm pack into $tmp/NAME, checksum-verified, unpacked.
fetch() {
  local name="$1" version="$2" sha="$3"
  mkdir -p "$tmp/$name"
  (cd "$tmp/$name" && npm pack --silent "${name}@${version}" >/dev/null)
  echo "${sha}  $tmp/$name/${name}-${version}.tgz" | sha256sum --check --quiet
  tar -xzf "$tmp/$name/${name}-${version}.tgz" -C "$tmp/$name"
}

# install SRC_DIR DEST VERSION FILE...: copy FILEs, write VERSION and SHA256SUMS.
install_files() {
  local src="$1" dest="$2" version="$3"
  shift 3
  rm -rf "$dest"
  mkdir -p "$dest"
  for file in "$@"; do
    cp "$src/$file" "$dest/$(basename "$file")"
  done
  echo "$version" > "$dest/VERSION"
  (cd "$dest" && sha256sum -- * | grep -v ' SHA256SUMS$' > SHA256SUMS)
}

fetch swagger-ui-dist "$SWAGGER_UI_VERSION" "$SWAGGER_UI_SHA256"
install_files "$tmp/swagger-ui-dist/package" app/web/vendor/swagger-ui \
  "$SWAGGER_UI_VERSION" swagger-ui-bundle.js swagger-ui.css LICENSE NOTICE

fetch redoc "$REDOC_VERSION" "$REDOC_SHA256"
install_files "$tmp/redoc/package" app/web/vendor/redoc "$REDOC_VERSION" \
  bundles/redoc.standalone.js bundles/redoc.standalone.js.LICENSE.txt LICENSE

echo "vendored swagger-ui-dist ${SWAGGER_UI_VERSION} and redoc ${REDOC_VERSION}"
