//! The language server's engine: plain functions over the workspace's documents,
//! testable without any transport. Positions are LSP's (UTF-16); conversion to the
//! library's byte offsets happens here and nowhere else.

use crate::index::{Index, Symbol};
use crate::positions::{LineMap, Utf16Position};
use nudge::diagnostic::Severity;
use nudge::syntax::ast::DeclKind;
use nudge::{FileId, Sources};
use std::collections::{BTreeMap, HashMap};
use tower_lsp_server::ls_types as lsp;

/// The policy set of a workspace: every `.nudge` document by URI, open ones with
/// the editor's text.
#[derive(Default, Debug, Clone)]
pub struct Workspace {
    pub documents: BTreeMap<String, String>,
    /// Each document's last text without syntax errors: while a document is
    /// broken, the declarations it had keep answering hover and go to definition.
    pub last_good: BTreeMap<String, String>,
}

/// One analysis of the workspace.
pub struct Snapshot {
    pub sources: Sources,
    pub uris: Vec<String>,
    pub analysis: nudge::Analysis,
    pub index: Index,
    /// Each file's line starts, built once: converting every diagnostic's
    /// span would otherwise rescan the file each time (quadratic in its size).
    lines: Vec<LineMap>,
}

impl Workspace {
    /// Records the documents that currently parse cleanly as their last good text.
    pub fn remember_good(&mut self) {
        for (uri, text) in &self.documents {
            if nudge::syntax::parse(FileId(0), text).diagnostics.is_empty() {
                self.last_good.insert(uri.clone(), text.clone());
            }
        }
    }

    pub fn analyze(&self) -> Snapshot {
        let mut sources = Sources::new();
        let mut uris = Vec::new();
        for (uri, text) in &self.documents {
            sources.add(uri.clone(), text.clone());
            uris.push(uri.clone());
        }
        let analysis = nudge::analyze(&sources);
        let mut index = Index::build(&analysis);
        // Broken documents: their last good declarations, for names that the
        // current text no longer declares. They are extra files of the snapshot
        // (after the current ones), mapped to the same URI; diagnostics and
        // references come only from the current text.
        let broken: Vec<(String, String)> = self
            .documents
            .iter()
            .filter(|(uri, _)| {
                analysis.diagnostics.iter().any(|d| {
                    d.code.stage() == nudge::diagnostic::Stage::Syntax
                        && uris.get(d.primary.file.0 as usize) == Some(*uri)
                })
            })
            .filter_map(|(uri, _)| {
                self.last_good
                    .get(uri)
                    .map(|good| (uri.clone(), good.clone()))
            })
            .collect();
        for (uri, good) in broken {
            let file = sources.add(uri.clone(), good.clone());
            uris.push(uri);
            let parsed = nudge::syntax::parse(file, &good);
            let old = Index::declarations(&[(file, parsed.module)]);
            for o in old.occurrences.into_iter().filter(|o| o.is_decl) {
                if index.definition(&o.symbol).is_none() {
                    if let Some(doc) = old.docs.iter().find(|(s, _)| *s == o.symbol) {
                        index.docs.push(doc.clone());
                    }
                    index.occurrences.push(o);
                }
            }
        }
        let lines = sources.iter().map(|(_, f)| LineMap::new(&f.text)).collect();
        Snapshot {
            sources,
            uris,
            analysis,
            index,
            lines,
        }
    }
}

fn position(text: &str, offset: usize) -> lsp::Position {
    let p = LineMap::new(text).position(text, offset);
    lsp::Position::new(p.line, p.character)
}

fn offset(text: &str, pos: lsp::Position) -> usize {
    LineMap::new(text).offset(
        text,
        Utf16Position {
            line: pos.line,
            character: pos.character,
        },
    )
}

impl Snapshot {
    /// The current text's file (last good texts come after the current ones).
    fn file(&self, uri: &str) -> Option<FileId> {
        self.uris
            .iter()
            .position(|u| u == uri)
            .map(|i| FileId(i as u32))
    }

    fn text(&self, file: FileId) -> &str {
        &self.sources.get(file).text
    }

    fn range(&self, file: FileId, span: nudge::Span) -> lsp::Range {
        let text = self.text(file);
        let at = |offset: usize| match self.lines.get(file.0 as usize) {
            Some(lines) => {
                let p = lines.position(text, offset);
                lsp::Position::new(p.line, p.character)
            }
            None => position(text, offset),
        };
        lsp::Range::new(at(span.start as usize), at(span.end as usize))
    }

    fn uri(&self, file: FileId) -> Option<lsp::Uri> {
        self.uris.get(file.0 as usize).and_then(|u| u.parse().ok())
    }

    /// Diagnostics for every document (an empty list clears a document's).
    pub fn diagnostics(&self) -> BTreeMap<String, Vec<lsp::Diagnostic>> {
        let mut out: BTreeMap<String, Vec<lsp::Diagnostic>> =
            self.uris.iter().map(|u| (u.clone(), Vec::new())).collect();
        for d in &self.analysis.diagnostics {
            let file = d.primary.file;
            let related: Vec<lsp::DiagnosticRelatedInformation> = d
                .secondary
                .iter()
                .filter_map(|l| {
                    Some(lsp::DiagnosticRelatedInformation {
                        location: lsp::Location::new(self.uri(l.file)?, self.range(l.file, l.span)),
                        message: l.message.clone(),
                    })
                })
                .collect();
            let mut message = d.message.clone();
            if let Some(help) = &d.help {
                message.push_str("\nhelp: ");
                message.push_str(help);
            }
            let diagnostic = lsp::Diagnostic {
                range: self.range(file, d.primary.span),
                severity: Some(match d.severity {
                    Severity::Error => lsp::DiagnosticSeverity::ERROR,
                    Severity::Warning => lsp::DiagnosticSeverity::WARNING,
                }),
                code: Some(lsp::NumberOrString::String(d.code.as_str().to_string())),
                source: Some("nudge".into()),
                message,
                related_information: (!related.is_empty()).then_some(related),
                ..Default::default()
            };
            if let Some(list) = self.uris.get(file.0 as usize).and_then(|u| out.get_mut(u)) {
                list.push(diagnostic);
            }
        }
        out
    }

    fn symbol_at(
        &self,
        uri: &str,
        pos: lsp::Position,
    ) -> Option<(FileId, &crate::index::Occurrence)> {
        let file = self.file(uri)?;
        let at = offset(self.text(file), pos);
        self.index.at(file, at).map(|o| (file, o))
    }

    pub fn hover(&self, uri: &str, pos: lsp::Position) -> Option<lsp::Hover> {
        let file = self.file(uri)?;
        let at = offset(self.text(file), pos);
        let (markdown, range) = match self.index.at(file, at) {
            Some(o) => {
                let doc = match self.index.doc(&o.symbol) {
                    Some(d) => d.to_string(),
                    None => match &o.symbol {
                        Symbol::Arm(journey, arm) => {
                            format!("Split arm `{arm}` of the journey `{journey}`.")
                        }
                        // (1.1) The built-in event `sent`.
                        Symbol::Decl("event", name) if keyword_doc(name).is_some() => {
                            keyword_doc(name).unwrap_or_default().to_string()
                        }
                        other => format!("`{other:?}` is not declared"),
                    },
                };
                let doc = match &o.symbol {
                    Symbol::Decl("channel", name) => {
                        format!("{doc}\n\n{}", self.channel_bound(name))
                    }
                    _ => doc,
                };
                (doc, Some(self.range(file, o.span)))
            }
            None => {
                let (word, span) = word_at(self.text(file), at)?;
                let doc = keyword_doc(word)?.to_string();
                // (1.1) §9a: on `limits`, the proven bounds of the whole set.
                let doc = if word == "limits" {
                    format!("{doc}\n\n{}", self.bounds_table())
                } else {
                    doc
                };
                (doc, Some(self.range(file, span)))
            }
        };
        Some(lsp::Hover {
            contents: lsp::HoverContents::Markup(lsp::MarkupContent {
                kind: lsp::MarkupKind::Markdown,
                value: markdown,
            }),
            range,
        })
    }

    /// (1.1) The proven bounds (LANGUAGE.md §9a), or why there are none.
    fn bounds(&self) -> Result<nudge::check::bounds::Bounds, &'static str> {
        if self.analysis.has_errors() {
            return Err("Bounds are proven once the policy set has no errors.");
        }
        Ok(nudge::check::bounds::bounds(
            &self.sources,
            &self.analysis.modules,
        ))
    }

    fn channel_bound(&self, name: &str) -> String {
        match self.bounds() {
            Ok(b) => match b.channel(name) {
                Some(bound) => format!(
                    "Marketing messages per profile on `{name}` in any 7 days: {}.",
                    bound.describe()
                ),
                None => String::new(),
            },
            Err(why) => why.to_string(),
        }
    }

    fn bounds_table(&self) -> String {
        let b = match self.bounds() {
            Ok(b) => b,
            Err(why) => return why.to_string(),
        };
        let mut out = String::from(
            "The most marketing messages one profile can receive in any 7 days (`nudge check --bounds`):\n\n| channels | bound |\n|---|---|\n",
        );
        out.push_str(&format!("| all | {} |\n", b.all.describe()));
        for (name, bound) in &b.per_channel {
            out.push_str(&format!("| `{name}` | {} |\n", bound.describe()));
        }
        for u in &b.unbounded {
            out.push_str(&format!(
                "\n`{}` sends of `{}` are not limited by any cap.",
                u.channel, u.journey
            ));
        }
        out
    }

    pub fn definition(&self, uri: &str, pos: lsp::Position) -> Option<lsp::Location> {
        let (_, o) = self.symbol_at(uri, pos)?;
        let def = self.index.definition(&o.symbol)?;
        Some(lsp::Location::new(
            self.uri(def.file)?,
            self.range(def.file, def.span),
        ))
    }

    pub fn references(
        &self,
        uri: &str,
        pos: lsp::Position,
        include_declaration: bool,
    ) -> Vec<lsp::Location> {
        let Some((_, o)) = self.symbol_at(uri, pos) else {
            return Vec::new();
        };
        self.index
            .references(&o.symbol)
            .filter(|r| include_declaration || !r.is_decl)
            .filter_map(|r| {
                Some(lsp::Location::new(
                    self.uri(r.file)?,
                    self.range(r.file, r.span),
                ))
            })
            .collect()
    }

    /// `textDocument/prepareRename`: the range of the name at `pos`, if it is
    /// one that can be renamed.
    pub fn prepare_rename(&self, uri: &str, pos: lsp::Position) -> Option<lsp::Range> {
        let (file, o) = self.symbol_at(uri, pos)?;
        Some(self.range(file, o.span))
    }

    /// Why `new_name` cannot replace the name at `pos`: not a name, a reserved
    /// word where one cannot stand, or the name of another symbol of its kind.
    fn rename_refusal(&self, uri: &str, pos: lsp::Position, new_name: &str) -> Option<String> {
        let (_, o) = self.symbol_at(uri, pos)?;
        let is_identifier = new_name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && new_name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !is_identifier {
            return Some(format!(
                "`{new_name}` is not a name: names are letters, digits and `_`, not starting with a digit"
            ));
        }
        // Attributes and properties may be keywords (1.1); declarations and arms not.
        let keyword_allowed = matches!(o.symbol, Symbol::Attr(_) | Symbol::Prop(..));
        if !keyword_allowed && nudge::syntax::keywords::is_reserved(new_name) {
            return Some(format!(
                "`{new_name}` is a reserved word and cannot name this"
            ));
        }
        let taken = match &o.symbol {
            Symbol::Decl(kind, _) => Symbol::Decl(kind, new_name.to_string()),
            Symbol::Attr(_) => Symbol::Attr(new_name.to_string()),
            Symbol::Prop(event, _) => Symbol::Prop(event.clone(), new_name.to_string()),
            Symbol::Arm(journey, _) => Symbol::Arm(journey.clone(), new_name.to_string()),
        };
        if taken != o.symbol && self.index.definition(&taken).is_some() {
            return Some(format!(
                "`{new_name}` is already declared: renaming would merge two names"
            ));
        }
        None
    }

    /// The edits that rename the name at `pos` everywhere (`None` when nothing
    /// renameable is there), or why `new_name` is refused.
    pub fn rename(
        &self,
        uri: &str,
        pos: lsp::Position,
        new_name: &str,
    ) -> Result<Option<lsp::WorkspaceEdit>, String> {
        if let Some(why) = self.rename_refusal(uri, pos, new_name) {
            return Err(why);
        }
        let Some((_, o)) = self.symbol_at(uri, pos) else {
            return Ok(None);
        };
        let mut changes: HashMap<lsp::Uri, Vec<lsp::TextEdit>> = HashMap::new();
        for r in self.index.references(&o.symbol) {
            let Some(file_uri) = self.uri(r.file) else {
                return Ok(None);
            };
            changes
                .entry(file_uri)
                .or_default()
                .push(lsp::TextEdit::new(
                    self.range(r.file, r.span),
                    new_name.to_string(),
                ));
        }
        Ok(Some(lsp::WorkspaceEdit {
            changes: Some(changes),
            ..Default::default()
        }))
    }

    #[allow(
        deprecated,
        reason = "DocumentSymbol's `deprecated` field must still be set"
    )]
    pub fn document_symbols(&self, uri: &str) -> Vec<lsp::DocumentSymbol> {
        let Some(file) = self.file(uri) else {
            return Vec::new();
        };
        let Some((_, module)) = self.analysis.modules.iter().find(|(f, _)| *f == file) else {
            return Vec::new();
        };
        module
            .decls
            .iter()
            .map(|d| {
                let name = d
                    .kind
                    .name()
                    .map_or(d.kind.keyword().to_string(), |n| n.name.clone());
                let selection = d.kind.name().map_or(d.span, |n| n.span);
                let children = self.member_symbols(file, &d.kind);
                lsp::DocumentSymbol {
                    name,
                    detail: Some(d.kind.keyword().to_string()),
                    kind: symbol_kind(d.kind.keyword()),
                    tags: None,
                    deprecated: None,
                    range: self.range(file, d.span),
                    selection_range: self.range(file, selection),
                    children: (!children.is_empty()).then_some(children),
                }
            })
            .collect()
    }

    /// The members a reader jumps to: attributes, properties, a template's
    /// channel blocks.
    #[allow(
        deprecated,
        reason = "DocumentSymbol's `deprecated` field must still be set"
    )]
    fn member_symbols(&self, file: FileId, kind: &DeclKind) -> Vec<lsp::DocumentSymbol> {
        let child = |name: &str, detail: String, kind, span: nudge::Span, at: nudge::Span| {
            lsp::DocumentSymbol {
                name: name.to_string(),
                detail: Some(detail),
                kind,
                tags: None,
                deprecated: None,
                range: self.range(file, span),
                selection_range: self.range(file, at),
                children: None,
            }
        };
        match kind {
            DeclKind::Profile(p) => p
                .attrs
                .iter()
                .map(|a| {
                    let ty = a.ty.to_string();
                    child(
                        &a.name.name,
                        ty,
                        lsp::SymbolKind::FIELD,
                        a.span,
                        a.name.span,
                    )
                })
                .collect(),
            DeclKind::Event(e) => e
                .props
                .iter()
                .map(|p| {
                    let ty = p.ty.to_string();
                    child(
                        &p.name.name,
                        ty,
                        lsp::SymbolKind::PROPERTY,
                        p.span,
                        p.name.span,
                    )
                })
                .collect(),
            DeclKind::Template(t) => t
                .blocks
                .iter()
                .map(|b| {
                    let detail = "channel block".into();
                    child(
                        &b.channel.name,
                        detail,
                        lsp::SymbolKind::FIELD,
                        b.span,
                        b.channel.span,
                    )
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Completion by context: after `profile.`, `event.` or `trigger.` the
    /// attributes or properties; after `via`, channels; after `send`, templates;
    /// after `when` and `exit on`, events; after `consent`, topics; otherwise
    /// keywords and declared names.
    pub fn completion(&self, uri: &str, pos: lsp::Position) -> Vec<lsp::CompletionItem> {
        let Some(file) = self.file(uri) else {
            return Vec::new();
        };
        let text = self.text(file);
        let before = &text[..offset(text, pos)];
        let line = before.rsplit('\n').next().unwrap_or("");
        let word_start = line.trim_end_matches(|c: char| c.is_ascii_alphanumeric() || c == '_');
        let mut items = if let Some(headers) = test_headers(before) {
            // (1.1) Inside a `test`: the names its steps and expectations take.
            let names_of = |symbol: SymbolName<'_>| -> Vec<String> {
                self.index
                    .occurrences
                    .iter()
                    .filter(|o| o.is_decl)
                    .filter_map(|o| symbol(&o.symbol))
                    .collect()
            };
            let names = |kind: &str| self.declared(kind);
            let (kind, detail, list) = test_completion(&headers, word_start, &names, &names_of);
            list.into_iter().map(|n| item(n, kind, detail)).collect()
        } else if word_start.ends_with("profile.") {
            self.index
                .occurrences
                .iter()
                .filter_map(|o| match (&o.symbol, o.is_decl) {
                    (Symbol::Attr(a), true) => Some(item(
                        a.clone(),
                        lsp::CompletionItemKind::FIELD,
                        "profile attribute",
                    )),
                    _ => None,
                })
                .collect()
        } else if word_start.ends_with("event.") && !in_where(before) {
            // T204: `event.` is read only in a `where` condition; nothing to offer.
            Vec::new()
        } else if word_start.ends_with("event.") || word_start.ends_with("trigger.") {
            self.property_items(before, line, word_start.ends_with("trigger."))
        } else {
            match self.word_items(word_start) {
                Some(items) => items,
                // Unsorted: the keywords in the order they fit, then segments.
                None => return self.keyword_items(before),
            }
        };
        items.sort_by(|a, b| a.label.cmp(&b.label));
        items.dedup_by(|a, b| a.label == b.label);
        items
    }

    /// The names declared as `kind` (`channel`, `template`, …).
    fn declared(&self, kind: &str) -> Vec<String> {
        self.index
            .occurrences
            .iter()
            .filter_map(|o| match &o.symbol {
                Symbol::Decl(k, n) if *k == kind && o.is_decl => Some(n.clone()),
                _ => None,
            })
            .collect()
    }

    /// After `event.` or `trigger.`: the properties of the event meant — the
    /// nearest `when`/`exit on`/aggregate before the cursor, or the journey's
    /// trigger for `trigger.` — or of every event when none is found.
    fn property_items(&self, before: &str, line: &str, trigger: bool) -> Vec<lsp::CompletionItem> {
        let event = if trigger {
            last_after(before, "when ")
        } else {
            last_after(line, "when ")
                .or_else(|| last_after(line, "on "))
                .or_else(|| last_after(before, "when "))
        };
        self.index
            .occurrences
            .iter()
            .filter_map(|o| match (&o.symbol, o.is_decl) {
                (Symbol::Prop(e, p), true) if event.as_deref().is_none_or(|ev| ev == e) => {
                    Some(item(
                        p.clone(),
                        lsp::CompletionItemKind::FIELD,
                        &format!("property of `{e}`"),
                    ))
                }
                _ => None,
            })
            .collect()
    }

    /// The names the word before the cursor asks for (`via` channels, `send`
    /// templates, `when` events, …); `None` where it asks for none of them.
    fn word_items(&self, word_start: &str) -> Option<Vec<lsp::CompletionItem>> {
        let previous = word_start
            .trim_end()
            .rsplit(|c: char| c.is_whitespace() || c == ',')
            .next()
            .unwrap_or("");
        let after_comma = word_start.trim_end().ends_with(',');
        let via = word_start.contains(" via ");
        // (1.1) After `when no`, `wait up to … for`, `goal`, `engagement`:
        // events, also after a comma in those lists.
        let event_list = ["when no ", "engagement "]
            .iter()
            .any(|w| word_start.contains(w))
            && after_comma;
        let (kind, detail, list) = if previous == "via" || previous == "of" || (via && after_comma)
        {
            (
                lsp::CompletionItemKind::INTERFACE,
                "channel",
                self.declared("channel"),
            )
        } else if previous == "send" {
            (
                lsp::CompletionItemKind::FILE,
                "template",
                self.declared("template"),
            )
        } else if matches!(
            previous,
            "when" | "on" | "no" | "for" | "goal" | "engagement"
        ) || event_list
        {
            (
                lsp::CompletionItemKind::EVENT,
                "event",
                self.declared("event"),
            )
        } else if previous == "category" {
            (
                lsp::CompletionItemKind::ENUM_MEMBER,
                "category",
                self.declared("category"),
            )
        } else if previous == "every" || (word_start.contains(" every ") && after_comma) {
            let days = ["day", "mon", "tue", "wed", "thu", "fri", "sat", "sun"];
            (
                lsp::CompletionItemKind::CONSTANT,
                "day",
                days.iter().map(|d| (*d).to_string()).collect(),
            )
        } else if previous == "consent" {
            (
                lsp::CompletionItemKind::CONSTANT,
                "consent topic",
                self.declared("consent"),
            )
        } else {
            return None;
        };
        Some(list.into_iter().map(|n| item(n, kind, detail)).collect())
    }

    /// The keywords that fit where the cursor is, then the segments.
    fn keyword_items(&self, before: &str) -> Vec<lsp::CompletionItem> {
        let keywords = keywords_at(before)
            .into_iter()
            .map(|k| item(k.to_string(), lsp::CompletionItemKind::KEYWORD, "keyword"));
        let segments = self
            .declared("segment")
            .into_iter()
            .map(|s| item(s, lsp::CompletionItemKind::VARIABLE, "segment"));
        keywords.chain(segments).collect()
    }

    /// Quick fixes for the "did you mean" diagnostics of a document that touch
    /// `range`: replace the misspelt name with the suggestion.
    pub fn code_actions(&self, uri: &str, range: lsp::Range) -> Vec<lsp::CodeActionOrCommand> {
        let Some(file) = self.file(uri) else {
            return Vec::new();
        };
        let Some(target) = self.uri(file) else {
            return Vec::new();
        };
        let diagnostics = self.diagnostics();
        let Some(list) = diagnostics.get(uri) else {
            return Vec::new();
        };
        let text = self.text(file);
        let mut actions = Vec::new();
        for (d, lib) in list.iter().zip(
            self.analysis
                .diagnostics
                .iter()
                .filter(|d| d.primary.file == file),
        ) {
            let overlaps = d.range.start <= range.end && range.start <= d.range.end;
            let Some(suggestion) = lib
                .help
                .as_deref()
                .and_then(|h| h.strip_prefix("did you mean `"))
                .and_then(|h| h.strip_suffix("`?"))
            else {
                continue;
            };
            if !overlaps {
                continue;
            }
            // A misspelt string (a time zone) keeps its quotes.
            let quoted = text
                .get(lib.primary.span.range())
                .is_some_and(|t| t.starts_with('"'));
            let replacement = if quoted {
                format!("\"{suggestion}\"")
            } else {
                suggestion.to_string()
            };
            let mut changes = HashMap::new();
            changes.insert(
                target.clone(),
                vec![lsp::TextEdit::new(d.range, replacement)],
            );
            actions.push(lsp::CodeActionOrCommand::CodeAction(lsp::CodeAction {
                title: format!("Replace with `{suggestion}`"),
                kind: Some(lsp::CodeActionKind::QUICKFIX),
                diagnostics: Some(vec![d.clone()]),
                edit: Some(lsp::WorkspaceEdit {
                    changes: Some(changes),
                    ..Default::default()
                }),
                is_preferred: Some(true),
                ..Default::default()
            }));
        }
        actions
    }

    /// The whole document formatted, as one edit; none when it has syntax errors.
    pub fn formatting(&self, uri: &str) -> Option<Vec<lsp::TextEdit>> {
        let file = self.file(uri)?;
        let text = self.text(file);
        let formatted = nudge::format(text).ok()?;
        if formatted == text {
            return Some(Vec::new());
        }
        let end = position(text, text.len());
        Some(vec![lsp::TextEdit::new(
            lsp::Range::new(lsp::Position::new(0, 0), end),
            formatted,
        )])
    }
}

/// (1.1) When `before` ends inside a `test` declaration: the headers of the
/// braces open there, outermost (`test NAME`) first — `at … identify "u1"`,
/// `at … cart_abandoned "u1"`, `consent`, `expect send`, `content:`,
/// `reasons:`.
fn test_headers(before: &str) -> Option<Vec<String>> {
    let bytes = before.as_bytes();
    let mut stack: Vec<String> = Vec::new();
    let mut in_test = false;
    let mut in_string = false;
    // Where the text before the next `{` starts: a line, a comma or a brace.
    let mut segment = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if in_string => i += 1,
            b'"' => in_string = !in_string,
            b'/' if !in_string && bytes.get(i + 1) == Some(&b'/') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'\n' | b',' if !in_string => segment = i + 1,
            b'{' if !in_string => {
                let header = before[segment..i].trim().to_string();
                if stack.is_empty() {
                    in_test = header.starts_with("test ") || header == "test";
                }
                stack.push(header);
                segment = i + 1;
            }
            b'}' if !in_string => {
                stack.pop();
                segment = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    (in_test && !stack.is_empty()).then_some(stack)
}

/// Picks a name out of the symbols it is interested in.
type SymbolName<'a> = &'a dyn Fn(&Symbol) -> Option<String>;

/// What completes at the end of `word_start` in a test whose open braces
/// have `headers`.
fn test_completion(
    headers: &[String],
    word_start: &str,
    names: &dyn Fn(&str) -> Vec<String>,
    names_of: &dyn Fn(SymbolName<'_>) -> Vec<String>,
) -> (lsp::CompletionItemKind, &'static str, Vec<String>) {
    use lsp::CompletionItemKind as K;
    let strings = |list: &[&str]| list.iter().map(|s| (*s).to_string()).collect::<Vec<_>>();
    // The text of this item so far: after the last brace or comma.
    let item = word_start
        .rsplit(['{', ','])
        .next()
        .unwrap_or("")
        .trim_start();
    let words: Vec<&str> = item.split_whitespace().collect();
    let header = headers.last().map(String::as_str).unwrap_or("");
    if headers.len() == 1 {
        // A step: `at TIME [identify | EVENT "P"]` or `expect [no] KIND`.
        return match words.as_slice() {
            [] => (K::KEYWORD, "step", strings(&["at", "expect"])),
            ["expect"] => {
                let mut kinds = strings(nudge::check::KINDS);
                kinds.push("no".into());
                (K::ENUM_MEMBER, "decision", kinds)
            }
            ["expect", "no"] => (K::ENUM_MEMBER, "decision", strings(nudge::check::KINDS)),
            ["at", _] => {
                let mut events = names("event");
                events.push("identify".into());
                (K::EVENT, "input", events)
            }
            _ => (K::TEXT, "", Vec::new()),
        };
    }
    // A value after `field:`.
    if let Some(field) = words.last().and_then(|w| w.strip_suffix(':'))
        && words.len() == 1
    {
        let in_reasons = header == "reasons:";
        return match field {
            _ if in_reasons => (K::CONSTANT, "reason", strings(nudge::check::REASONS)),
            "journey" => (K::CLASS, "journey", names("journey")),
            "template" => (K::FILE, "template", names("template")),
            "channel" => (K::INTERFACE, "channel", names("channel")),
            "event" => (K::EVENT, "event", names("event")),
            "reason" => (K::CONSTANT, "reason", strings(nudge::check::NOT_ENTERED)),
            "consent" => (K::KEYWORD, "", Vec::new()),
            _ if header == "consent" => (K::VALUE, "granted", strings(&["true", "false"])),
            _ => (K::TEXT, "", Vec::new()),
        };
    }
    if !words.is_empty() {
        return (K::TEXT, "", Vec::new());
    }
    // A field name, by the brace it is in.
    let head: Vec<&str> = header.split_whitespace().collect();
    match head.as_slice() {
        ["at", _, "identify", ..] => {
            let mut attrs = names_of(&|s| match s {
                Symbol::Attr(a) => Some(a.clone()),
                _ => None,
            });
            attrs.push("consent".into());
            (K::FIELD, "trait", attrs)
        }
        ["at", _, event, ..] => {
            let event = (*event).to_string();
            let props = names_of(&|s| match s {
                Symbol::Prop(e, p) if *e == event => Some(p.clone()),
                _ => None,
            });
            (K::FIELD, "property", props)
        }
        ["consent"] => (K::CONSTANT, "consent topic", names("consent")),
        ["reasons:"] => (K::INTERFACE, "channel", names("channel")),
        ["expect", .., kind] => {
            let mut fields = strings(nudge::check::COMMON_FIELDS);
            fields.extend(strings(nudge::check::fields_of(kind)));
            (K::FIELD, "decision field", fields)
        }
        _ => (K::TEXT, "", Vec::new()),
    }
}

/// The keywords that can be typed where `before` ends: declarations at the top
/// level; clauses and steps at the start of a line in a journey; the words of a
/// block's own clauses in channels and limits; otherwise expression words.
/// Whether the cursor is in a `where` condition: a `where` since the last
/// brace (a block, or an interpolation, opens a new place).
fn in_where(before: &str) -> bool {
    let tail = before.rsplit(['{', '}']).next().unwrap_or(before);
    tail.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .any(|w| w == "where")
}

fn keywords_at(before: &str) -> Vec<&'static str> {
    // Brace depth and the declaration the cursor is in, skipping strings and
    // comments.
    let mut depth = 0usize;
    let mut declaration = "";
    let mut in_string = false;
    let bytes = before.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if in_string => i += 1,
            b'"' => in_string = !in_string,
            b'/' if !in_string && bytes.get(i + 1) == Some(&b'/') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'{' if !in_string => depth += 1,
            b'}' if !in_string => depth = depth.saturating_sub(1),
            c if !in_string
                && depth == 0
                && c.is_ascii_alphabetic()
                && (i == 0 || !bytes[i - 1].is_ascii_alphanumeric()) =>
            {
                let word: String = before[i..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if nudge::syntax::keywords::DECLARATIONS.contains(&word.as_str()) {
                    declaration = nudge::syntax::keywords::DECLARATIONS
                        .iter()
                        .copied()
                        .find(|d| *d == word)
                        .unwrap_or("");
                }
                i += word.len().max(1);
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    let line = before.rsplit('\n').next().unwrap_or("");
    let line_start = line
        .trim_start()
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_');
    const EXPRESSION: &[&str] = &[
        "and", "or", "not", "in", "none", "true", "false", "now", "profile", "event", "trigger",
    ];
    match (depth, declaration) {
        (0, _) if line_start => nudge::syntax::keywords::DECLARATIONS.to_vec(),
        // Header clauses only in the journey's own block; inside `if`, `else`,
        // a split arm or `wait up to`, only steps.
        (1, "journey") if line_start => {
            let mut k = nudge::syntax::keywords::CLAUSES.to_vec();
            k.extend_from_slice(nudge::syntax::keywords::STEPS);
            k.push("else");
            k
        }
        (_, "journey") if line_start => {
            let mut k = nudge::syntax::keywords::STEPS.to_vec();
            k.push("else");
            k
        }
        (_, "channel") => vec!["address", "consent", "quiet", "to", "engagement", "private"],
        (_, "limits") => vec!["cap", "per", "on", "quiet", "to", "day", "week"],
        // (1.1) After an attribute's type: `sensitive`.
        (_, "profile") if line.contains(':') => {
            let mut k = nudge::syntax::keywords::TYPES.to_vec();
            k.push("sensitive");
            k
        }
        (_, "profile" | "event") => nudge::syntax::keywords::TYPES.to_vec(),
        _ => {
            let mut k = EXPRESSION.to_vec();
            k.extend_from_slice(nudge::syntax::keywords::FUNCTIONS);
            k
        }
    }
}

/// The identifier after the last `needle` in `text`.
fn last_after(text: &str, needle: &str) -> Option<String> {
    let i = text.rfind(needle)?;
    let rest = &text[i + needle.len()..];
    let word: String = rest
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    (!word.is_empty()).then_some(word)
}

fn word_at(text: &str, at: usize) -> Option<(&str, nudge::Span)> {
    let is_word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let bytes = text.as_bytes();
    let mut start = at.min(bytes.len());
    while start > 0 && is_word(bytes[start - 1]) {
        start -= 1;
    }
    let mut end = at.min(bytes.len());
    while end < bytes.len() && is_word(bytes[end]) {
        end += 1;
    }
    (end > start).then(|| (&text[start..end], nudge::Span::new(start, end)))
}

/// Hover text for keywords and built-in functions.
const KEYWORDS: &[(&str, &str)] = &[
    (
        "consent",
        "`consent NAME opt_in|opt_out`: a consent topic; in a channel, the topic that must be granted.",
    ),
    (
        "profile",
        "`profile { … }`: the profile's attributes; `profile.NAME` reads one.",
    ),
    (
        "event",
        "`event NAME [from \"External\"] { … }`: an event type; `event.PROP` is the event under test in a `where`.",
    ),
    (
        "channel",
        "`channel NAME { address … consent … quiet … }`: a delivery channel.",
    ),
    (
        "limits",
        "`limits { cap N per WINDOW [on CHANNEL] … quiet A to B }`: global caps and quiet hours.",
    ),
    (
        "segment",
        "`segment NAME = CONDITION`: a named condition over the profile, aggregates and `now`.",
    ),
    (
        "template",
        "`template NAME { CHANNEL { field: \"…\" } }`: message content per channel.",
    ),
    (
        "journey",
        "`journey NAME { … }`: a journey: header clauses, then steps.",
    ),
    (
        "owner",
        "`owner \"team\"`: the team responsible for the journey (required).",
    ),
    (
        "priority",
        "`priority N`: 0–100, default 50; higher wins arbitration and consumes caps first.",
    ),
    (
        "when",
        "`when EVENT [where COND]`: the trigger; exactly one per journey.",
    ),
    (
        "exit",
        "`exit on EVENT [where COND]`: ends an active instance when a matching event arrives.",
    ),
    (
        "reenter",
        "`reenter after DURATION` or `reenter never`: when a profile may enter again.",
    ),
    (
        "require",
        "`require consent TOPIC`: every send of the journey also needs this topic.",
    ),
    (
        "transactional",
        "`transactional`: may use channels without consent; caps and quiet hours do not apply.",
    ),
    (
        "wait",
        "`wait DURATION` or `wait until HH:MM` (next occurrence in the profile's time zone).",
    ),
    (
        "send",
        "`send TEMPLATE via C1, C2`: the first available channel gets the message.",
    ),
    ("if", "`if COND { … } else { … }`: branch."),
    (
        "split",
        "`split { P% NAME { … } … }`: deterministic experiment arms; an arm without a block is a holdout.",
    ),
    ("stop", "`stop`: ends the instance."),
    (
        "goal",
        "`goal EVENT [where COND] within DURATION`: the first matching event within the window after an entry records one `converted` decision for that instance (holdouts included).",
    ),
    (
        "category",
        "`category NAME`: a message category; a journey's `category` is counted by caps `on category NAME` and carried by its `sent` events.",
    ),
    (
        "cap",
        "`cap N per WINDOW [on C1, C2 | on category K]`: at most N sends per window; in a journey, its own sends only.",
    ),
    (
        "every",
        "`when every day at HH:MM` or `when every mon, thu at HH:MM`: runs for every profile seen, at that local time in its own zone.",
    ),
    (
        "sensitive",
        "`NAME: TYPE sensitive`: the attribute holds data only its owner should see. Only the content of `private` channels may show it (P315); dead letters show `***` in its place, and `why` and `--explain` name it without its value.",
    ),
    (
        "private",
        "`private` in a channel: its content is seen only by the recipient, after opening it (an email, an in-app inbox), so it may show `sensitive` attributes.",
    ),
    (
        "engagement",
        "`engagement EVENT, …`: the events that show a profile engaging with the channel, for `via best of`.",
    ),
    (
        "best",
        "`send T via best of C1, C2`: among the available channels, the one with the highest (engagements + 1) / (sends + 2) over 90 days; ties to the earlier.",
    ),
    (
        "previous",
        "`count(previous EVENT …)`, `sum(previous …)`, `since(previous …)`: the same aggregate over the profile's events before the one being processed.",
    ),
    (
        "best_time",
        "`best_time(EVENT [where COND] within DURATION)`: `time_of_day?`, the start of the local hour in which most matching events happened (ties: the earliest); `none` when there were none.",
    ),
    (
        "sent",
        "`sent`: the built-in event of every send decision, with `journey`, `template`, `channel` and `category?`; only aggregates read it: `count(sent where event.channel == \"email\" within 2d)`.",
    ),
    (
        "count",
        "`count(EVENT [where COND] within DURATION)`: number of matching events in the window.",
    ),
    (
        "sum",
        "`sum(EVENT.PROP [where COND] within DURATION)`: sum of a number property in the window.",
    ),
    (
        "since",
        "`since(EVENT [where COND])`: `duration?`, time since the latest matching event.",
    ),
    ("lower", "`lower(s)`: the string in lower case."),
    ("len", "`len(s)`: the number of characters."),
    ("starts_with", "`starts_with(s, prefix)`: bool."),
    ("contains", "`contains(s, part)`: bool."),
    (
        "local_hour",
        "`local_hour(now)`: the hour in the profile's time zone.",
    ),
    (
        "local_time",
        "`local_time(now)`: `time_of_day`, the wall-clock time in the profile's time zone.",
    ),
    (
        "weekday",
        "`weekday(now)`: `\"mon\"` … `\"sun\"` in the profile's time zone.",
    ),
    ("now", "`now`: the current event time."),
    (
        "trigger",
        "`trigger.PROP`: the event that started the journey instance (steps and templates).",
    ),
    (
        "none",
        "`none`: the absent value; `x == none` tests an optional.",
    ),
];

fn keyword_doc(word: &str) -> Option<&'static str> {
    KEYWORDS.iter().find(|(k, _)| *k == word).map(|(_, d)| *d)
}

/// A completion item with its kind and a one-word detail.
fn item(label: String, kind: lsp::CompletionItemKind, detail: &str) -> lsp::CompletionItem {
    lsp::CompletionItem {
        label,
        kind: Some(kind),
        detail: Some(detail.to_string()),
        ..Default::default()
    }
}

/// A declaration's symbol kind. A journey is a declaration of clauses and
/// steps, not a function one calls; a test is one, run by `nudge test`.
fn symbol_kind(keyword: &str) -> lsp::SymbolKind {
    match keyword {
        "journey" => lsp::SymbolKind::CLASS,
        "test" => lsp::SymbolKind::METHOD,
        "event" => lsp::SymbolKind::EVENT,
        "template" => lsp::SymbolKind::STRING,
        "segment" => lsp::SymbolKind::BOOLEAN,
        "channel" => lsp::SymbolKind::INTERFACE,
        "consent" => lsp::SymbolKind::KEY,
        "category" => lsp::SymbolKind::ENUM_MEMBER,
        _ => lsp::SymbolKind::STRUCT,
    }
}
