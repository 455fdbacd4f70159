#!/usr/bin/env bash
# Copies the screenshots of the last browser-test and benchmark runs (web/test-artifacts/*.png)
# into docs/screenshots/, quantised with pngquant when it is installed so the committed files
# stay small.
set -euo pipefail
WEB="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$WEB/../docs/screenshots"
mkdir -p "$OUT"
shopt -s nullglob
files=("$WEB"/test-artifacts/*.png)
[ ${#files[@]} -gt 0 ] || { echo "no screenshots in web/test-artifacts: run npm run test:e2e first" >&2; exit 1; }
for f in "${files[@]}"; do
  dest="$OUT/$(basename "$f")"
  if command -v pngquant >/dev/null; then
    pngquant --force --quality 70-95 --speed 1 --output "$dest" -- "$f" || cp "$f" "$dest"
  else
    cp "$f" "$dest"
  fi
done
ls -l "$OUT"
