// Starts `nudge lsp` for .nudge files (the server lives in the nudge binary's
// companion, nudge-lsp; see the project README).
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
