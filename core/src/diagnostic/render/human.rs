//! miette reports for people.

use crate::diagnostic::{Diagnostic, Severity};
use crate::source::{FileId, Sources};
use miette::{
    GraphicalReportHandler, GraphicalTheme, LabeledSpan, MietteError, MietteSpanContents,
    NamedSource, SourceCode, SourceSpan, SpanContents,
};
use std::fmt;
use std::sync::Arc;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HumanStyle {
    /// Colours and Unicode art, for terminals.
    Color,
    /// Unicode art without colours: pipes, files, snapshots.
    Plain,
}

/// Renders every diagnostic, each followed by a blank line.
pub fn human(sources: &Sources, diagnostics: &[Diagnostic], style: HumanStyle) -> String {
    let theme = match style {
        HumanStyle::Color => GraphicalTheme::unicode(),
        HumanStyle::Plain => GraphicalTheme::unicode_nocolor(),
    };
    let handler = GraphicalReportHandler::new_themed(theme)
        .with_width(100)
        .with_links(false);
    let named: Vec<Source> = sources
        .iter()
        .map(|(_, f)| {
            let text = Arc::<str>::from(f.text.as_str());
            Source {
                inner: NamedSource::new(f.name.clone(), Arc::clone(&text)),
                name: f.name.clone(),
                text,
            }
        })
        .collect();
    let mut out = String::new();
    for d in diagnostics {
        if on_a_very_long_line(sources, d) {
            // miette cannot draw columns past 65,535 (it pads with format
            // widths); such a line is no use on a screen either.
            out.push_str(&without_snippet(sources, d));
            out.push('\n');
            continue;
        }
        let report = Report::new(d, &named);
        if handler.render_report(&mut out, &report).is_err() {
            // Rendering into a String cannot fail; keep the message if it ever does.
            out.push_str(&d.message);
            out.push('\n');
        }
        out.push('\n');
    }
    out
}

/// A file for miette, whose `file:line:column` header counts columns in
/// Unicode scalar values, as every other renderer does (miette counts bytes,
/// so a clickable link on a line with `é` would land a few columns off).
#[derive(Clone)]
struct Source {
    inner: NamedSource<Arc<str>>,
    name: String,
    text: Arc<str>,
}

impl SourceCode for Source {
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        context_lines_before: usize,
        context_lines_after: usize,
    ) -> Result<Box<dyn SpanContents<'a> + 'a>, MietteError> {
        let contents = self
            .inner
            .read_span(span, context_lines_before, context_lines_after)?;
        let at = span.offset().min(self.text.len());
        let before = self.text.get(..at).unwrap_or("");
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before.get(line_start..).map_or(0, |s| s.chars().count());
        Ok(Box::new(MietteSpanContents::new_named(
            self.name.clone(),
            contents.data(),
            *contents.span(),
            contents.line(),
            column,
            contents.line_count(),
        )))
    }
}

/// Lines longer than this are not drawn: the report gives the place in words.
const LONGEST_DRAWN_LINE: usize = 2_000;

/// Whether a label of `d` sits on a line too long to draw.
fn on_a_very_long_line(sources: &Sources, d: &Diagnostic) -> bool {
    std::iter::once(&d.primary)
        .chain(&d.secondary)
        .filter(|l| (l.file.0 as usize) < sources.len())
        .any(|l| {
            let file = sources.get(l.file);
            let line = file.lines.line_of(l.span.start as usize);
            let start = file.lines.line_start(line);
            let end = file.text[start..]
                .find('\n')
                .map_or(file.text.len(), |i| start + i);
            end - start > LONGEST_DRAWN_LINE || l.span.len() > LONGEST_DRAWN_LINE
        })
}

/// The report without a source snippet: code, message, place, labels, help.
fn without_snippet(sources: &Sources, d: &Diagnostic) -> String {
    let place = |l: &crate::diagnostic::Label| {
        if (l.file.0 as usize) >= sources.len() {
            return String::from("<unknown>");
        }
        let file = sources.get(l.file);
        let at = file.lines.line_col(&file.text, l.span.start as usize);
        format!("{}:{}:{}", file.name, at.line, at.column)
    };
    let mut out = format!(
        "{}\n\n  × {}\n   at {} ({})\n",
        d.code.as_str(),
        d.message,
        place(&d.primary),
        d.primary.message
    );
    for l in &d.secondary {
        out.push_str(&format!("   see {} ({})\n", place(l), l.message));
    }
    if let Some(help) = &d.help {
        out.push_str(&format!("  help: {help}\n"));
    }
    out
}

/// One diagnostic as miette sees it. Labels in other files than the primary one
/// become related reports, each with its own source.
struct Report<'a> {
    code: String,
    message: &'a str,
    severity: miette::Severity,
    help: Option<&'a str>,
    source: Source,
    labels: Vec<LabeledSpan>,
    related: Vec<Report<'a>>,
}

impl<'a> Report<'a> {
    fn new(d: &'a Diagnostic, named: &[Source]) -> Report<'a> {
        let file = d.primary.file;
        let mut labels = vec![LabeledSpan::new_primary_with_span(
            Some(d.primary.message.clone()),
            span(d.primary.span),
        )];
        let mut related = Vec::new();
        for l in &d.secondary {
            if l.file == file {
                labels.push(LabeledSpan::new_with_span(
                    Some(l.message.clone()),
                    span(l.span),
                ));
            } else {
                related.push(Report {
                    code: String::new(),
                    message: &l.message,
                    severity: miette::Severity::Advice,
                    help: None,
                    source: source_of(named, l.file),
                    labels: vec![LabeledSpan::new_primary_with_span(None, span(l.span))],
                    related: Vec::new(),
                });
            }
        }
        Report {
            code: d.code.as_str().to_string(),
            message: &d.message,
            severity: match d.severity {
                Severity::Error => miette::Severity::Error,
                Severity::Warning => miette::Severity::Warning,
            },
            help: d.help.as_deref(),
            source: source_of(named, file),
            labels,
            related,
        }
    }
}

fn source_of(named: &[Source], file: FileId) -> Source {
    named.get(file.0 as usize).cloned().unwrap_or_else(|| {
        let text = Arc::<str>::from("");
        Source {
            inner: NamedSource::new("<unknown>", Arc::clone(&text)),
            name: "<unknown>".into(),
            text,
        }
    })
}

fn span(s: crate::source::Span) -> SourceSpan {
    SourceSpan::new((s.start as usize).into(), s.len())
}

impl fmt::Debug for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message)
    }
}

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message)
    }
}

impl std::error::Error for Report<'_> {}

impl miette::Diagnostic for Report<'_> {
    fn code<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        if self.code.is_empty() {
            None
        } else {
            Some(Box::new(&self.code))
        }
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(self.severity)
    }

    fn help<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        self.help.map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        Some(&self.source)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        Some(Box::new(self.labels.iter().cloned()))
    }

    fn related<'b>(&'b self) -> Option<Box<dyn Iterator<Item = &'b dyn miette::Diagnostic> + 'b>> {
        if self.related.is_empty() {
            None
        } else {
            Some(Box::new(
                self.related.iter().map(|r| r as &dyn miette::Diagnostic),
            ))
        }
    }
}
