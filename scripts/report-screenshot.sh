#!/usr/bin/env bash
# Opens a `nudge simulate` report in Debian's headless Chromium and takes a
# screenshot: ./scripts/report-screenshot.sh report.html docs/report.png
# Fails when Chromium cannot render the page or the page logs anything to the
# console (the report has no script, so any console message is a fault).
set -euo pipefail
report=$(realpath "$1")
out=$2
browser=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$browser" ]; then
  echo "report-screenshot: no chromium on PATH (Debian: apt-get install chromium)" >&2
  exit 3
fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT
rm -f "$out"
# Exit 3: the browser itself could not run here (not the report's fault).
if ! timeout 120 "$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars \
  --enable-logging=stderr --v=0 --window-size=1200,4400 \
  --screenshot="$out" "file://$report" 2>"$log" >/dev/null || [ ! -s "$out" ]; then
  tail -5 "$log" >&2
  echo "report-screenshot: chromium did not produce a screenshot" >&2
  exit 3
fi
if grep -E "CONSOLE|Failed to load resource|Uncaught" "$log" >&2; then
  echo "report-screenshot: the page logged to the console" >&2
  exit 1
fi
