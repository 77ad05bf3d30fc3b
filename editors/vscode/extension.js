// Starts `nudge lsp` for .nudge files: the language server is a subcommand of
// the one `nudge` binary (`nudge.path` in the settings names another). Bundled
// with its dependencies into dist/extension.js by `npm run package`.
const vscode = require("vscode");
const { LanguageClient } = require("vscode-languageclient/node");

let client;

function activate(context) {
  const command = vscode.workspace.getConfiguration("nudge").get("path") || "nudge";
  const server = { command, args: ["lsp"] };
  client = new LanguageClient(
    "nudge",
    "Nudge",
    { run: server, debug: server },
    { documentSelector: [{ scheme: "file", language: "nudge" }] }
  );
  context.subscriptions.push({ dispose: () => client && client.stop() });
  return client.start();
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
