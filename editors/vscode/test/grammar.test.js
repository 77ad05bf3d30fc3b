// Tokenizes lines with vscode-textmate (the engine VS Code uses) and the
// extension's grammar, and checks the scopes a reader relies on. Run by
// tests/editors.rs: `node grammar.test.js`; exit 1 with a message on a failure.
"use strict";
const fs = require("fs");
const path = require("path");
const textmate = require("vscode-textmate");
const oniguruma = require("vscode-oniguruma");

const wasm = fs.readFileSync(require.resolve("vscode-oniguruma/release/onig.wasm")).buffer;
const grammarPath = path.join(__dirname, "..", "syntaxes", "nudge.tmLanguage.json");

async function main() {
  await oniguruma.loadWASM(wasm);
  const registry = new textmate.Registry({
    onigLib: Promise.resolve({
      createOnigScanner: (p) => new oniguruma.OnigScanner(p),
      createOnigString: (s) => new oniguruma.OnigString(s),
    }),
    loadGrammar: async () =>
      textmate.parseRawGrammar(fs.readFileSync(grammarPath, "utf8"), grammarPath),
  });
  const grammar = await registry.loadGrammar("source.nudge");
  // Tokens of a whole text, line by line with the state carried over.
  const tokenize = (text) => {
    let state = textmate.INITIAL;
    const out = [];
    for (const line of text.split("\n")) {
      const r = grammar.tokenizeLine(line, state);
      for (const t of r.tokens) {
        out.push({ text: line.slice(t.startIndex, t.endIndex), scopes: t.scopes });
      }
      state = r.ruleStack;
    }
    return out;
  };
  const failures = [];
  const expect = (text, word, scope) => {
    const tokens = tokenize(text);
    const t = tokens.find((t) => t.text === word);
    if (!t || !t.scopes.some((s) => s.startsWith(scope))) {
      failures.push(`\`${word}\` in ${JSON.stringify(text)}: wanted ${scope}, got ${t ? t.scopes.join(" ") : "no token"}`);
    }
  };
  // An unclosed string ends with its line: what follows is code again.
  expect('template t { email { subject: "Hi }\njourney j { owner "x" }', "journey", "storage.type.declaration");
  // `event.`, `profile.` and `trigger.` are variables, not declarations.
  expect("when cart where event.total > 10", "event", "variable.language");
  expect("if profile.tier == \"gold\" { stop }", "profile", "variable.language");
  expect("profile {", "profile", "storage.type.declaration");
  // Calendar windows and the operators.
  expect("cap 1 per day on sms", "day", "constant.language");
  expect("cap 2 per week", "week", "constant.language");
  expect("profile.first_name ?? \"there\"", "??", "keyword.operator");
  expect("event.total >= 10", ">=", "keyword.operator");
  // 1.1 words.
  expect("ssn: string? sensitive", "sensitive", "keyword");
  expect("channel inbox { private }", "private", "keyword");
  // Interpolations are code inside the string.
  expect('subject: "Hi {{profile.first_name ?? \\"x\\"}}"', "profile", "variable.language");
  if (failures.length > 0) {
    console.error(failures.join("\n"));
    process.exit(1);
  }
  console.log("grammar: every expectation holds");
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
