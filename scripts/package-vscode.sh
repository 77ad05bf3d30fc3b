#!/usr/bin/env bash
# Builds the VS Code extension as a .vsix, without a prompt:
#   ./scripts/package-vscode.sh            → editors/vscode/nudge.vsix
# then `code --install-extension editors/vscode/nudge.vsix`. Needs Node.js and
# npm; the versions are pinned by editors/vscode/package-lock.json.
set -euo pipefail
cd "$(dirname "$0")/../editors/vscode"
npm ci --no-audit --no-fund
npm run package
echo "built $(pwd)/nudge.vsix"
