//! The JSON-RPC transport: LSP requests and notifications to [`crate::engine`]
//! calls. Every request runs under `catch_unwind`: a panic is logged, answered
//! with an internal error, and the server keeps serving.

use crate::engine::Workspace;
use crate::positions::{LineMap, Utf16Position};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tower_lsp_server::jsonrpc::{Error, Result};
use tower_lsp_server::ls_types::*;
use tower_lsp_server::{Client, LanguageServer, LspService, Server};

pub struct Backend {
    client: Client,
    /// Shared with the debounced publishes, which run as tasks of their own.
    workspace: Arc<Mutex<Workspace>>,
    /// Bumped by every edit; a delayed publish runs only if no edit came after it.
    generation: Arc<AtomicU64>,
    /// Documents the client has open (their text is the client's, not the disk's).
    open: Mutex<std::collections::BTreeSet<String>>,
    /// Whether the client asked for a shutdown before `exit` (LSP: exit code 0
    /// then, 1 otherwise).
    shut_down: Arc<AtomicBool>,
    /// Whether hovers may be Markdown (the client's `contentFormat`).
    markdown: AtomicBool,
    /// Whether the client takes a file watcher registered by the server.
    watches_files: AtomicBool,
}

/// The one spelling of a document's URI: clients and the server may write the
/// same file differently (`%c3%a9` and `%C3%A9`, `+` and `%2B`), so file URIs
/// go through the path they name and back.
pub fn key(uri: &Uri) -> String {
    match uri.to_file_path() {
        Some(path) => Uri::from_file_path(&path)
            .map(|u| u.as_str().to_string())
            .unwrap_or_else(|| uri.as_str().to_string()),
        None => uri.as_str().to_string(),
    }
}

/// How long diagnostics wait for typing to pause.
const DEBOUNCE: Duration = Duration::from_millis(150);

/// Runs `f` on the workspace under `catch_unwind`: a panic is logged and
/// becomes an internal error; the server keeps serving.
fn with_workspace<T>(
    workspace: &Mutex<Workspace>,
    f: impl FnOnce(&mut Workspace) -> T,
) -> Result<T> {
    let mut ws = workspace
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

/// Analyses the workspace and publishes every document's diagnostics.
async fn publish_all(client: &Client, workspace: &Mutex<Workspace>) {
    let all = with_workspace(workspace, |ws| ws.analyze().diagnostics()).unwrap_or_default();
    for (uri, diagnostics) in all {
        if let Ok(uri) = uri.parse::<Uri>() {
            client.publish_diagnostics(uri, diagnostics, None).await;
        }
    }
}

impl Backend {
    fn with<T>(&self, f: impl FnOnce(&mut Workspace) -> T) -> Result<T> {
        with_workspace(&self.workspace, f)
    }

    async fn publish(&self) {
        publish_all(&self.client, &self.workspace).await;
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
        let mut folders: Vec<PathBuf> = params
            .workspace_folders
            .clone()
            .unwrap_or_default()
            .iter()
            .filter_map(|f| f.uri.to_file_path().map(|p| p.into_owned()))
            .collect();
        // Clients without workspace folders (Neovim's `start_client`, a set-up
        // outside a repository) send only the root.
        #[allow(deprecated, reason = "rootUri and rootPath are what such clients send")]
        if folders.is_empty() {
            let root = params
                .root_uri
                .as_ref()
                .and_then(|u| u.to_file_path().map(|p| p.into_owned()))
                .or_else(|| params.root_path.as_ref().map(PathBuf::from));
            folders.extend(root);
        }
        let markdown = params
            .capabilities
            .text_document
            .as_ref()
            .and_then(|t| t.hover.as_ref())
            .and_then(|h| h.content_format.as_ref())
            .is_none_or(|formats| formats.is_empty() || formats.contains(&MarkupKind::Markdown));
        self.markdown.store(markdown, Ordering::SeqCst);
        let watches = params
            .capabilities
            .workspace
            .as_ref()
            .and_then(|w| w.did_change_watched_files.as_ref())
            .and_then(|d| d.dynamic_registration)
            .unwrap_or(false);
        self.watches_files.store(watches, Ordering::SeqCst);
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
                rename_provider: Some(OneOf::Right(RenameOptions {
                    prepare_provider: Some(true),
                    work_done_progress_options: WorkDoneProgressOptions::default(),
                })),
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
        // Files created, changed or deleted outside the editor: asked for where
        // the client supports it. In a task of its own: the answer must not hold
        // up the first diagnostics.
        if !self.watches_files.load(Ordering::SeqCst) {
            self.publish().await;
            return;
        }
        let watch = Registration {
            id: "nudge-files".into(),
            method: "workspace/didChangeWatchedFiles".into(),
            register_options: serde_json::to_value(DidChangeWatchedFilesRegistrationOptions {
                watchers: vec![FileSystemWatcher {
                    glob_pattern: GlobPattern::String("**/*.nudge".into()),
                    kind: None,
                }],
            })
            .ok(),
        };
        let client = self.client.clone();
        tokio::spawn(async move {
            let _ = client.register_capability(vec![watch]).await;
        });
        self.publish().await;
    }

    async fn shutdown(&self) -> Result<()> {
        self.shut_down.store(true, Ordering::SeqCst);
        Ok(())
    }

    async fn did_open(&self, params: DidOpenTextDocumentParams) {
        let doc = params.text_document;
        let uri = key(&doc.uri);
        if let Ok(mut open) = self.open.lock() {
            open.insert(uri.clone());
        }
        let _ = self.with(|ws| {
            ws.documents.insert(uri, doc.text);
            ws.remember_good();
        });
        self.publish().await;
    }

    async fn did_close(&self, params: DidCloseTextDocumentParams) {
        let uri = key(&params.text_document.uri);
        if let Ok(mut open) = self.open.lock() {
            open.remove(&uri);
        }
        // The buffer's unsaved text is gone: the file on disk is the truth again,
        // or, if there is none, the document leaves the set (and its diagnostics
        // are cleared).
        let on_disk = params
            .text_document
            .uri
            .to_file_path()
            .and_then(|p| std::fs::read_to_string(&p).ok());
        let removed = self
            .with(|ws| {
                let removed = match on_disk {
                    Some(text) => {
                        ws.documents.insert(uri.clone(), text);
                        false
                    }
                    None => ws.documents.remove(&uri).is_some(),
                };
                ws.remember_good();
                removed
            })
            .unwrap_or(false);
        if removed {
            self.client
                .publish_diagnostics(params.text_document.uri, Vec::new(), None)
                .await;
        }
        self.publish().await;
    }

    async fn did_change_watched_files(&self, params: DidChangeWatchedFilesParams) {
        let open = self.open.lock().map(|o| o.clone()).unwrap_or_default();
        let mut cleared = Vec::new();
        let _ = self.with(|ws| {
            for change in &params.changes {
                let uri = key(&change.uri);
                if open.contains(&uri) {
                    continue;
                }
                let text = change
                    .uri
                    .to_file_path()
                    .and_then(|p| std::fs::read_to_string(&p).ok());
                match (change.typ, text) {
                    (FileChangeType::DELETED, _) | (_, None) => {
                        if ws.documents.remove(&uri).is_some() {
                            cleared.push(change.uri.clone());
                        }
                    }
                    (_, Some(text)) => {
                        ws.documents.insert(uri, text);
                    }
                }
            }
            ws.remember_good();
        });
        for uri in cleared {
            self.client.publish_diagnostics(uri, Vec::new(), None).await;
        }
        self.publish().await;
    }

    async fn did_change(&self, params: DidChangeTextDocumentParams) {
        let uri = key(&params.text_document.uri);
        let _ = self.with(|ws| {
            let text = ws.documents.entry(uri).or_default();
            for change in params.content_changes {
                apply_change(text, change);
            }
            ws.remember_good();
        });
        // Debounced: while the user types, only the last edit's analysis is sent.
        // The wait is a task of its own, so that the notification's handler
        // returns at once and holds none of the server's request slots (it did:
        // quick edits delayed formatting and completion by their debounces).
        let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        let (client, workspace, latest) = (
            self.client.clone(),
            Arc::clone(&self.workspace),
            Arc::clone(&self.generation),
        );
        tokio::spawn(async move {
            tokio::time::sleep(DEBOUNCE).await;
            if latest.load(Ordering::SeqCst) == generation {
                publish_all(&client, &workspace).await;
            }
        });
    }

    async fn code_action(&self, p: CodeActionParams) -> Result<Option<CodeActionResponse>> {
        self.with(|ws| {
            Some(
                ws.analyze()
                    .code_actions(&key(&p.text_document.uri), p.range),
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
        let markdown = self.markdown.load(Ordering::SeqCst);
        self.with(|ws| {
            ws.analyze().hover(&key(&uri), pos).map(|mut h| {
                if !markdown && let HoverContents::Markup(m) = &mut h.contents {
                    m.kind = MarkupKind::PlainText;
                    m.value = m.value.replace("```nudge\n", "").replace("```", "");
                }
                h
            })
        })
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
                .definition(&key(&uri), pos)
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
                    .references(&key(&uri), pos, p.context.include_declaration),
            )
        })
    }

    async fn rename(&self, p: RenameParams) -> Result<Option<WorkspaceEdit>> {
        let (uri, pos) = (
            p.text_document_position.text_document.uri,
            p.text_document_position.position,
        );
        self.with(|ws| ws.analyze().rename(&key(&uri), pos, &p.new_name))?
            .map_err(Error::invalid_params)
    }

    async fn prepare_rename(
        &self,
        p: TextDocumentPositionParams,
    ) -> Result<Option<PrepareRenameResponse>> {
        self.with(|ws| {
            ws.analyze()
                .prepare_rename(&key(&p.text_document.uri), p.position)
                .map(PrepareRenameResponse::Range)
        })
    }

    async fn document_symbol(
        &self,
        p: DocumentSymbolParams,
    ) -> Result<Option<DocumentSymbolResponse>> {
        self.with(|ws| {
            Some(DocumentSymbolResponse::Nested(
                ws.analyze().document_symbols(&key(&p.text_document.uri)),
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
                ws.analyze().completion(&key(&uri), pos),
            ))
        })
    }

    async fn formatting(&self, p: DocumentFormattingParams) -> Result<Option<Vec<TextEdit>>> {
        self.with(|ws| ws.analyze().formatting(&key(&p.text_document.uri)))
    }
}

/// Serves LSP on stdin and stdout until the client exits. True when the
/// client asked for a shutdown first (the exit code is then 0, else 1).
pub async fn serve_stdio() -> bool {
    let shut_down = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&shut_down);
    let (service, socket) = LspService::new(move |client| Backend {
        client,
        workspace: Arc::new(Mutex::new(Workspace::default())),
        generation: Arc::new(AtomicU64::new(0)),
        open: Mutex::new(std::collections::BTreeSet::new()),
        shut_down: flag,
        markdown: AtomicBool::new(true),
        watches_files: AtomicBool::new(false),
    });
    // The client's frames are checked before tower-lsp-server sees them, and its
    // answers are written whole (crate::framing): a malformed message is
    // answered with a parse error instead of ending the session.
    let (server_in, to_server) = tokio::io::duplex(1 << 16);
    let (from_server, server_out) = tokio::io::duplex(1 << 16);
    let (errors, error_rx) = tokio::sync::mpsc::unbounded_channel();
    let input = tokio::spawn(crate::framing::pump_input(
        tokio::io::BufReader::new(tokio::io::stdin()),
        to_server,
        errors,
    ));
    let output = tokio::spawn(crate::framing::pump_output(
        tokio::io::BufReader::new(from_server),
        tokio::io::stdout(),
        error_rx,
    ));
    Server::new(server_in, server_out, socket)
        .serve(service)
        .await;
    // The server's output is closed: the last answers reach the client. The
    // client's input may stay open after `exit`; it is not waited for.
    let _ = output.await;
    input.abort();
    shut_down.load(Ordering::SeqCst)
}
