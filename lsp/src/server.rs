//! The JSON-RPC transport: LSP requests and notifications to [`crate::engine`]
//! calls. Every request runs under `catch_unwind`: a panic is logged, answered
//! with an internal error, and the server keeps serving.

use crate::engine::Workspace;
use crate::positions::{LineMap, Utf16Position};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tower_lsp_server::jsonrpc::{Error, Result};
use tower_lsp_server::ls_types::*;
use tower_lsp_server::{Client, LanguageServer, LspService, Server};

pub struct Backend {
    client: Client,
    workspace: Mutex<Workspace>,
    /// Bumped by every edit; a delayed publish runs only if no edit came after it.
    generation: AtomicU64,
}

/// How long diagnostics wait for typing to pause.
const DEBOUNCE: Duration = Duration::from_millis(150);

impl Backend {
    fn with<T>(&self, f: impl FnOnce(&mut Workspace) -> T) -> Result<T> {
        let mut ws = self
            .workspace
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        catch_unwind(AssertUnwindSafe(|| f(&mut ws))).map_err(|panic| {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            // stderr is the server's log in every LSP client.
            eprintln!("nudge-lsp: a request failed and was answered with an error: {what}");
            let mut e = Error::internal_error();
            e.message = "nudge-lsp failed on this request; the server is still running".into();
            e
        })
    }

    async fn publish(&self) {
        let all = self
            .with(|ws| ws.analyze().diagnostics())
            .unwrap_or_default();
        for (uri, diagnostics) in all {
            if let Ok(uri) = uri.parse::<Uri>() {
                self.client
                    .publish_diagnostics(uri, diagnostics, None)
                    .await;
            }
        }
    }
}

fn load_folder(dir: &Path, ws: &mut Workspace) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        let hidden = path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'));
        if path.is_dir() && !hidden && !path.ends_with("target") {
            load_folder(&path, ws);
        } else if path.extension().is_some_and(|e| e == "nudge")
            && let (Some(uri), Ok(text)) =
                (Uri::from_file_path(&path), std::fs::read_to_string(&path))
        {
            ws.documents.entry(uri.as_str().to_string()).or_insert(text);
        }
    }
}

fn apply_change(text: &mut String, change: TextDocumentContentChangeEvent) {
    match change.range {
        None => *text = change.text,
        Some(range) => {
            let map = LineMap::new(text);
            let at = |p: Position| {
                map.offset(
                    text,
                    Utf16Position {
                        line: p.line,
                        character: p.character,
                    },
                )
            };
            let (start, end) = (at(range.start), at(range.end));
            if start <= end && end <= text.len() {
                text.replace_range(start..end, &change.text);
            }
        }
    }
}

impl LanguageServer for Backend {
    async fn initialize(&self, params: InitializeParams) -> Result<InitializeResult> {
        let folders: Vec<PathBuf> = params
            .workspace_folders
            .unwrap_or_default()
            .iter()
            .filter_map(|f| f.uri.to_file_path().map(|p| p.into_owned()))
            .collect();
        self.with(|ws| {
            for folder in &folders {
                load_folder(folder, ws);
            }
            ws.remember_good();
        })?;
        Ok(InitializeResult {
            capabilities: ServerCapabilities {
                text_document_sync: Some(TextDocumentSyncCapability::Kind(
                    TextDocumentSyncKind::INCREMENTAL,
                )),
                hover_provider: Some(HoverProviderCapability::Simple(true)),
                completion_provider: Some(CompletionOptions {
                    trigger_characters: Some(vec![".".into(), " ".into()]),
                    ..Default::default()
                }),
                definition_provider: Some(OneOf::Left(true)),
                references_provider: Some(OneOf::Left(true)),
                rename_provider: Some(OneOf::Left(true)),
                document_symbol_provider: Some(OneOf::Left(true)),
                document_formatting_provider: Some(OneOf::Left(true)),
                code_action_provider: Some(CodeActionProviderCapability::Simple(true)),
                ..Default::default()
            },
            server_info: Some(ServerInfo {
                name: "nudge-lsp".into(),
                version: Some(env!("CARGO_PKG_VERSION").into()),
            }),
            ..Default::default()
        })
    }

    async fn initialized(&self, _: InitializedParams) {
        self.publish().await;
    }

    async fn shutdown(&self) -> Result<()> {
        Ok(())
    }

    async fn did_open(&self, params: DidOpenTextDocumentParams) {
        let doc = params.text_document;
        let _ = self.with(|ws| {
            ws.documents.insert(doc.uri.as_str().to_string(), doc.text);
            ws.remember_good();
        });
        self.publish().await;
    }

    async fn did_change(&self, params: DidChangeTextDocumentParams) {
        let uri = params.text_document.uri.as_str().to_string();
        let _ = self.with(|ws| {
            let text = ws.documents.entry(uri).or_default();
            for change in params.content_changes {
                apply_change(text, change);
            }
            ws.remember_good();
        });
        // Debounced: while the user types, only the last edit's analysis is sent.
        let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        tokio::time::sleep(DEBOUNCE).await;
        if self.generation.load(Ordering::SeqCst) == generation {
            self.publish().await;
        }
    }

    async fn code_action(&self, p: CodeActionParams) -> Result<Option<CodeActionResponse>> {
        self.with(|ws| {
            Some(
                ws.analyze()
                    .code_actions(p.text_document.uri.as_str(), p.range),
            )
        })
    }

    async fn did_save(&self, _: DidSaveTextDocumentParams) {
        self.publish().await;
    }

    async fn hover(&self, p: HoverParams) -> Result<Option<Hover>> {
        let (uri, pos) = (
            p.text_document_position_params.text_document.uri,
            p.text_document_position_params.position,
        );
        self.with(|ws| ws.analyze().hover(uri.as_str(), pos))
    }

    async fn goto_definition(
        &self,
        p: GotoDefinitionParams,
    ) -> Result<Option<GotoDefinitionResponse>> {
        let (uri, pos) = (
            p.text_document_position_params.text_document.uri,
            p.text_document_position_params.position,
        );
        self.with(|ws| {
            ws.analyze()
                .definition(uri.as_str(), pos)
                .map(GotoDefinitionResponse::Scalar)
        })
    }

    async fn references(&self, p: ReferenceParams) -> Result<Option<Vec<Location>>> {
        let (uri, pos) = (
            p.text_document_position.text_document.uri,
            p.text_document_position.position,
        );
        self.with(|ws| {
            Some(
                ws.analyze()
                    .references(uri.as_str(), pos, p.context.include_declaration),
            )
        })
    }

    async fn rename(&self, p: RenameParams) -> Result<Option<WorkspaceEdit>> {
        let (uri, pos) = (
            p.text_document_position.text_document.uri,
            p.text_document_position.position,
        );
        self.with(|ws| ws.analyze().rename(uri.as_str(), pos, &p.new_name))
    }

    async fn document_symbol(
        &self,
        p: DocumentSymbolParams,
    ) -> Result<Option<DocumentSymbolResponse>> {
        self.with(|ws| {
            Some(DocumentSymbolResponse::Nested(
                ws.analyze().document_symbols(p.text_document.uri.as_str()),
            ))
        })
    }

    async fn completion(&self, p: CompletionParams) -> Result<Option<CompletionResponse>> {
        let (uri, pos) = (
            p.text_document_position.text_document.uri,
            p.text_document_position.position,
        );
        self.with(|ws| {
            Some(CompletionResponse::Array(
                ws.analyze().completion(uri.as_str(), pos),
            ))
        })
    }

    async fn formatting(&self, p: DocumentFormattingParams) -> Result<Option<Vec<TextEdit>>> {
        self.with(|ws| ws.analyze().formatting(p.text_document.uri.as_str()))
    }
}

/// Serves LSP on stdin and stdout until the client exits.
pub async fn serve_stdio() {
    let (service, socket) = LspService::new(|client| Backend {
        client,
        workspace: Mutex::new(Workspace::default()),
        generation: AtomicU64::new(0),
    });
    Server::new(tokio::io::stdin(), tokio::io::stdout(), socket)
        .serve(service)
        .await;
}
