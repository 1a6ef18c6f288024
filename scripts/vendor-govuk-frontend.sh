#!/usr/bin/env bash
# Vendors GOV.UK Frontend into core/console/assets/govuk-frontend/ for a service that is
# not on GOV.UK.
#
# The stylesheet is compiled here from the package's Sass with core/console/assets/console.scss,
# which sets Arial instead of GOV.UK's typeface (GDS Transport, for GOV.UK only) and leaves
# out the Royal Arms; the JavaScript is the package's precompiled govuk-frontend.min.js. No
# fonts, crown images, favicons or manifest are copied: only the files the stylesheet's
# url(...)s name (none at present). This runs by hand, not as part of the Rust build.
#
# Every package (govuk-frontend, sass, and immutable, the one package sass's JavaScript
# API loads) is fetched with `npm pack` into a temporary directory and checked against the
# sha512 pinned below before it is used. To upgrade one: change its version, set its
# integrity to the output of
#   npm view <package>@<version> dist.integrity
# run this script, and check the printed url(...) list still matches what the console serves.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION="6.6.0"
INTEGRITY="sha512-xctkWrQvLnvQt7fyjQ3MGX9S0wz0x0RQuLxCeoXF+s8EjGICG81/DYQGKN5qgO+0KVT12UAaRwUsGY6fulRcRg=="
SASS_VERSION="1.108.2"
SASS_INTEGRITY="sha512-kugK8djotnG9HQRPTOf36asKYlxg8rWWsNLYHOgWDIVOiZQqlRfKBgF4XXM6kfw146kIDMvm57B4GIkvDSyTzA=="
# Must satisfy sass's own range for it (`npm view sass@<version> dependencies`).
IMMUTABLE_VERSION="5.2.1"
IMMUTABLE_INTEGRITY="sha512-CgXNM1BhKqpMjFHTyqQSk09OWqzHNJ/U4BdeBgXoBdR2DdgBdOSv131cO1/YMgzopqnka3B/i949UaMLEKUxOA=="

ENTRY="core/console/assets/console.scss"
DEST="core/console/assets/govuk-frontend"

die() { printf 'vendor-govuk-frontend: %s\n' "$*" >&2; exit 1; }

command -v npm >/dev/null || die "npm is not installed"
command -v node >/dev/null || die "node is not installed"
[ -f "$ENTRY" ] || die "$ENTRY is missing"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/packs" "$work/node_modules"

# fetch NAME VERSION INTEGRITY: npm pack NAME@VERSION, check the tarball's integrity and
# its package.json version, and unpack it into $work/node_modules/NAME.
fetch() {
    local name="$1" version="$2" integrity="$3" tarball actual packed
    # Pack in the temporary directory so no project .npmrc or node_modules takes part.
    tarball="$(cd "$work/packs" && npm pack "$name@$version" --silent --no-fund --no-audit | tail -n1)"
    [ -f "$work/packs/$tarball" ] || die "npm pack $name@$version did not produce a tarball (got '$tarball')"
    # Subresource-integrity form: "sha512-" + base64 of the raw digest.
    actual="sha512-$(node -e '
      const data = require("fs").readFileSync(process.argv[1]);
      process.stdout.write(require("crypto").createHash("sha512").update(data).digest("base64"));
    ' "$work/packs/$tarball")"
    [ "$actual" = "$integrity" ] || die "integrity mismatch for $name@$version
  expected $integrity
  actual   $actual"
    mkdir -p "$work/node_modules/$name"
    tar -xzf "$work/packs/$tarball" -C "$work/node_modules/$name" --strip-components=1
    packed="$(node -p 'require(process.argv[1]).version' "$work/node_modules/$name/package.json")"
    [ "$packed" = "$version" ] || die "$name's package.json says $packed, expected $version"
}

fetch govuk-frontend "$VERSION" "$INTEGRITY"
fetch sass "$SASS_VERSION" "$SASS_INTEGRITY"
fetch immutable "$IMMUTABLE_VERSION" "$IMMUTABLE_INTEGRITY"

pkg="$work/node_modules/govuk-frontend"
dist="$pkg/dist/govuk"
for f in index.scss govuk-frontend.min.js; do
    [ -f "$dist/$f" ] || die "dist/govuk/$f is missing from govuk-frontend@$VERSION (layout changed?)"
done

# Replace the folder wholesale so files dropped upstream do not linger.
rm -rf "$DEST"
mkdir -p "$DEST"

# Compile. `@use "govuk"` in the entry file is dist/govuk/index.scss through the load path.
# Any warning fails the run: on an upgrade, a deprecated or renamed setting shows up here.
node - "$work/node_modules/sass" "$ENTRY" "$pkg/dist" "$DEST/govuk-frontend.min.css" <<'JS'
const [sassDir, entry, loadPath, out] = process.argv.slice(2);
const sass = require(sassDir);
const warnings = [];
let result;
try {
  result = sass.compile(entry, {
    style: 'compressed',
    loadPaths: [loadPath],
    logger: {
      warn(message, { span, stack }) {
        warnings.push(`${message}\n  at ${span ? `${span.url}:${span.start.line + 1}` : (stack || '?')}`);
      },
      debug() {},
    },
  });
} catch (e) {
  console.error(`vendor-govuk-frontend: sass failed:\n${e.message}`);
  process.exit(1);
}
if (warnings.length) {
  console.error(`vendor-govuk-frontend: sass warned:\n${warnings.join('\n')}`);
  process.exit(1);
}
require('fs').writeFileSync(out, result.css);
JS

# Nothing of GOV.UK's own identity may be left in the stylesheet.
css="$DEST/govuk-frontend.min.css"
! grep -q 'GDS Transport' "$css" || die "the stylesheet still names GDS Transport (check $ENTRY)"
! grep -q '@font-face' "$css" || die "the stylesheet still has @font-face rules (check $ENTRY)"
! grep -q 'govuk-crest' "$css" || die "the stylesheet still refers to the Royal Arms (check $ENTRY)"

# ES module: load with <script type="module">, then import { initAll } from it.
cp "$dist/govuk-frontend.min.js" "$DEST/"
printf '%s\n' "$VERSION" > "$DEST/VERSION"

# The 6.x tarball ships no licence file (package.json says MIT); fall back to the text of
# LICENSE.txt in github.com/alphagov/govuk-frontend.
licence="$(find "$pkg" -maxdepth 1 -type f -iname 'licen[cs]e*' | head -n1)"
if [ -n "$licence" ]; then
    cp "$licence" "$DEST/LICENSE"
else
    cat > "$DEST/LICENSE" <<'LICENCE'
The MIT License (MIT)

Copyright (C) 2017 Crown Copyright (Government Digital Service)

Permission is hereby granted, free of charge, to any person obtaining a copy of
this software and associated documentation files (the "Software"), to deal in
the Software without restriction, including without limitation the rights to
use, copy, modify, merge, publish, distribute, sublicense, and/or sell copies
of the Software, and to permit persons to whom the Software is furnished to do
so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
LICENCE
fi

# Copy what the stylesheet's url(...)s name, from the package's dist/govuk/assets/.
urls="$(grep -o 'url([^)]*)' "$css" | sed -e 's/^url(//' -e 's/)$//' -e 's/^["'\'']//' -e 's/["'\'']$//' | sort -u || true)"
while read -r url; do
    [ -n "$url" ] || continue
    case "$url" in
        /assets/*) ;;
        *) die "the stylesheet refers to $url, outside /assets/" ;;
    esac
    rel="${url#/assets/}"
    [ -f "$dist/assets/$rel" ] || die "the stylesheet refers to $url, which is not in dist/govuk/assets/"
    mkdir -p "$DEST/assets/$(dirname "$rel")"
    cp "$dist/assets/$rel" "$DEST/assets/$rel"
done <<< "$urls"

# Some files are packed executable; nothing here should be.
find "$DEST" -type d -exec chmod 755 {} +
find "$DEST" -type f -exec chmod 644 {} +

# Every url(...) in the stylesheet must resolve on the server that serves it.
missing=0
echo "govuk-frontend $VERSION compiled with sass $SASS_VERSION from $ENTRY into $DEST"
echo "url(...) references in govuk-frontend.min.css:"
[ -n "$urls" ] || echo "  (none)"
while read -r url; do
    [ -n "$url" ] || continue
    file="$DEST/${url#/}"
    if [ -f "$file" ]; then
        echo "  $url"
    else
        echo "  $url  (MISSING: no $file)"
        missing=1
    fi
done <<< "$urls"
[ "$missing" = 0 ] || die "the stylesheet refers to files that were not vendored"
echo "files:"
(cd "$DEST" && find . -type f | sed 's|^\./|  |' | sort)
echo "size: $(du -sh "$DEST" | cut -f1) (govuk-frontend.min.css $(wc -c < "$css") bytes)"
