use codespan_reporting::diagnostic as cs;
use codespan_reporting::files::SimpleFile;
use codespan_reporting::term::{self, termcolor};

use super::{Diagnostic, Severity};

fn to_codespan(d: &Diagnostic, len: usize) -> cs::Diagnostic<()> {
    let severity = match d.severity {
        Severity::Error => cs::Severity::Error,
        Severity::Warning => cs::Severity::Warning,
    };
    let labels = d
        .labels
        .iter()
        .map(|l| {
            // Clamp so that a span past the end (e.g. "unexpected end of file")
            // still renders instead of failing.
            let lo = (l.span.lo as usize).min(len);
            let hi = (l.span.hi as usize).clamp(lo, len);
            let style = if l.primary { cs::LabelStyle::Primary } else { cs::LabelStyle::Secondary };
            cs::Label::new(style, (), lo..hi).with_message(l.message.clone())
        })
        .collect();
    cs::Diagnostic::new(severity)
        .with_message(d.message.clone())
        .with_labels(labels)
        .with_notes(d.notes.clone())
}

fn render_with(
    file_name: &str,
    source: &str,
    diagnostics: &[Diagnostic],
    mut writer: impl termcolor::WriteColor,
) -> String {
    let file = SimpleFile::new(file_name, source);
    let config = term::Config::default();
    for d in diagnostics {
        let _ = term::emit_to_write_style(&mut writer, &config, &file, &to_codespan(d, source.len()));
    }
    String::new()
}

/// Renders diagnostics as plain text (no colour), as snapshot tests see them.
pub fn render_plain(file_name: &str, source: &str, diagnostics: &[Diagnostic]) -> String {
    let mut buf = termcolor::NoColor::new(Vec::new());
    render_with(file_name, source, diagnostics, &mut buf);
    String::from_utf8_lossy(&buf.into_inner()).into_owned()
}

/// Renders diagnostics, with ANSI colour when `color` is set.
pub fn render(file_name: &str, source: &str, diagnostics: &[Diagnostic], color: bool) -> String {
    if !color {
        return render_plain(file_name, source, diagnostics);
    }
    let mut buf = termcolor::Ansi::new(Vec::new());
    render_with(file_name, source, diagnostics, &mut buf);
    String::from_utf8_lossy(&buf.into_inner()).into_owned()
}
