//! Snapshot tests of users' own models: `nnc snapshot` and [`assert_stage!`](crate::assert_stage).
//!
//! A snapshot is the text of one stage of one model — the `nnc summary`
//! table or an `nnc ir --stage NAME` listing, rendered by the same code —
//! stored in `snapshots/MODEL@STAGE.snap` beside the model file, in
//! [insta](https://insta.rs)'s `.snap` format (a YAML header between `---`
//! lines, then the text). The command compares every requested stage with
//! its snapshot: a changed stage fails with a line diff and its new text in
//! `MODEL@STAGE.snap.new`, which `cargo insta review` (or `--accept`)
//! accepts. [`assert_stage!`](crate::assert_stage) does the same from a Rust test through insta
//! itself, on the same files: a snapshot written by one is checked by the
//! other.
//!
//! Text is compared as insta compares it: trailing whitespace at the end of
//! the text and `\r\n` line ends do not count; the header does not count.

use std::collections::HashSet;
use std::fmt;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use nnc_compiler::{compile_with, diag, pipeline, Compiled, Stage};
use nnc_runtime::io::tensor_file::write_atomically;
use nnc_runtime::FileLoader;
use similar::{ChangeTag, TextDiff};

use crate::cli::{ColorChoice, SnapshotArgs};
use crate::commands::{report, Status};
use crate::source::read_source;
use crate::summary::render_summary;

/// insta, for [`assert_stage!`](crate::assert_stage): the macro expands to insta's own
/// assertion in the caller's crate, which need not depend on insta.
#[cfg(feature = "snapshot")]
#[doc(hidden)]
pub use insta;

/// The directory beside a model that holds its snapshots.
pub const SNAPSHOT_DIR: &str = "snapshots";

/// The stages `nnc snapshot` checks when `--stage` is not given.
pub const DEFAULT_STAGES: [SnapshotStage; 4] = [
    SnapshotStage::Summary,
    SnapshotStage::Ir(Stage::Forward),
    SnapshotStage::Ir(Stage::Opt),
    SnapshotStage::Ir(Stage::Fused),
];

/// Lines of diff shown per stage; the whole new text is in the `.snap.new`
/// file.
const MAX_DIFF_LINES: usize = 200;

/// A stage that can be snapshot: the `nnc summary` table or a stage of `nnc
/// ir` (with its defaults: the training graph, the `train` section's batch,
/// one thread).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SnapshotStage {
    /// The table of `nnc summary`.
    Summary,
    /// The text of `nnc ir --stage NAME`.
    Ir(Stage),
}

impl SnapshotStage {
    /// Every stage: the summary, then the compiler's stages in pipeline
    /// order.
    pub fn all() -> Vec<SnapshotStage> {
        std::iter::once(SnapshotStage::Summary).chain(Stage::ALL.map(SnapshotStage::Ir)).collect()
    }

    /// The stage's name (`summary`, or the name of `nnc ir --stage`), as in
    /// snapshot file names.
    pub fn name(self) -> &'static str {
        match self {
            SnapshotStage::Summary => "summary",
            SnapshotStage::Ir(stage) => stage.name(),
        }
    }

    /// One line saying what the stage shows (the snapshot's description).
    pub fn about(self) -> &'static str {
        match self {
            SnapshotStage::Summary => "The layers, output shapes, parameters and FLOPs of the model",
            SnapshotStage::Ir(stage) => stage.about(),
        }
    }

    /// The stage called `name`.
    pub fn from_name(name: &str) -> Option<SnapshotStage> {
        SnapshotStage::all().into_iter().find(|s| s.name() == name)
    }

    /// The command that prints the stage of the model file `file`.
    pub fn command(self, file: &str) -> String {
        match self {
            SnapshotStage::Summary => format!("nnc summary {file}"),
            SnapshotStage::Ir(stage) => format!("nnc ir {file} --stage {}", stage.name()),
        }
    }

    /// The stage's text for the compiled model: exactly what `nnc summary`
    /// or `nnc ir --stage NAME` (without options) prints.
    pub fn render(self, compiled: &Compiled) -> Result<String, pipeline::Error> {
        match self {
            SnapshotStage::Summary => Ok(render_summary(&compiled.module)),
            SnapshotStage::Ir(stage) => compiled.dump(stage, &pipeline::Options::default()),
        }
    }
}

impl fmt::Display for SnapshotStage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An unknown stage name, listing the known ones.
impl std::str::FromStr for SnapshotStage {
    type Err = String;

    fn from_str(name: &str) -> Result<SnapshotStage, String> {
        SnapshotStage::from_name(name).ok_or_else(|| {
            let names: Vec<&str> = SnapshotStage::all().into_iter().map(SnapshotStage::name).collect();
            format!("unknown stage `{name}`; the stages are {}", names.join(", "))
        })
    }
}

/// The snapshot file of `stage` of the model file `model`:
/// `DIR/snapshots/NAME@STAGE.snap` for `DIR/NAME.nn`.
pub fn snapshot_path(model: &Path, stage: SnapshotStage) -> PathBuf {
    let dir = model.parent().unwrap_or(Path::new(""));
    dir.join(SNAPSHOT_DIR).join(format!("{}.snap", snapshot_name(model, stage)))
}

/// The snapshot's name, `NAME@STAGE` for the model file `NAME.nn`.
pub fn snapshot_name(model: &Path, stage: SnapshotStage) -> String {
    let stem = model.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    format!("{stem}@{}", stage.name())
}

/// The model's file name (`storm_unet.nn`), which snapshot headers record:
/// the same whatever the directory `nnc` runs in.
fn file_name(model: &Path) -> String {
    model.file_name().map_or_else(|| model.display().to_string(), |n| n.to_string_lossy().into_owned())
}

/// The `.snap.new` file beside the snapshot file `snap`.
fn new_path(snap: &Path) -> PathBuf {
    snap.with_extension("snap.new")
}

/// Text as insta compares it: without trailing whitespace, `\r\n` as `\n`.
fn normalize(text: &str) -> String {
    text.trim_end().replace("\r\n", "\n")
}

// ---------------------------------------------------------------------------
// The `.snap` file format.

/// The header of a snapshot file: the metadata insta records for a file
/// snapshot, in the order insta writes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// What made the snapshot (insta: the test's source file; `nnc
    /// snapshot`: the model file).
    pub source: String,
    /// What the snapshot shows.
    pub description: String,
    /// The expression (here: the command) that prints the snapshot's text.
    pub expression: String,
    /// The model file.
    pub input_file: String,
}

impl Header {
    /// The header `nnc snapshot` writes for `stage` of the model file `model`.
    pub fn for_stage(model: &Path, stage: SnapshotStage) -> Header {
        let name = file_name(model);
        Header {
            source: name.clone(),
            description: stage.about().to_string(),
            expression: stage.command(&name),
            input_file: name,
        }
    }
}

/// The contents of a `.snap` file with `header` and `text`, byte for byte as
/// insta writes them: the header as YAML between `---` lines, the text
/// without trailing whitespace, one newline.
pub fn format_snapshot(header: &Header, text: &str) -> String {
    let mut out = String::from("---\n");
    for (key, value) in [
        ("source", &header.source),
        ("description", &header.description),
        ("expression", &header.expression),
        ("input_file", &header.input_file),
    ] {
        out.push_str(&format!("{key}: {}\n", yaml_string(value)));
    }
    out.push_str("---\n");
    out.push_str(&normalize(text));
    out.push('\n');
    out
}

/// The text of a `.snap` file (what follows its header), normalised for
/// comparison; an error for a file that is not in the format.
pub fn parse_snapshot(contents: &str) -> Result<String, String> {
    let mut lines = contents.split_inclusive('\n');
    if lines.next().map(str::trim_end) != Some("---") {
        return Err("not a snapshot file: it does not begin with a `---` line".to_string());
    }
    let mut offset = 4;
    for line in lines.by_ref() {
        offset += line.len();
        if line.trim_end() == "---" {
            return Ok(normalize(&contents[offset.min(contents.len())..]));
        }
    }
    Err("not a snapshot file: its header has no closing `---` line".to_string())
}

/// The number of lines before the text of a `.snap` file (its header,
/// delimiters included); 0 when there is none.
fn header_lines(contents: &str) -> usize {
    let mut lines = contents.lines();
    if lines.next().map(str::trim_end) != Some("---") {
        return 0;
    }
    lines.position(|l| l.trim_end() == "---").map_or(0, |i| i + 2)
}

/// `value` as insta's YAML writer writes a string: plain when that reads
/// back as the same string, else double-quoted with escapes.
fn yaml_string(value: &str) -> String {
    if !yaml_needs_quotes(value) {
        return value.to_string();
    }
    let mut out = String::from("\"");
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\x08' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\x0c' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            c if c < ' ' || c == '\x7f' => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Whether insta's YAML writer quotes `value`: empty, surrounded by spaces,
/// starting with an indicator, holding a character with a meaning in YAML,
/// or reading as a boolean, null or number.
fn yaml_needs_quotes(value: &str) -> bool {
    const WORDS: [&str; 22] = [
        "yes", "Yes", "YES", "no", "No", "NO", "True", "TRUE", "true", "False", "FALSE", "false", "on", "On",
        "ON", "off", "Off", "OFF", "null", "Null", "NULL", "~",
    ];
    value.is_empty()
        || value.starts_with(' ')
        || value.ends_with(' ')
        || value.starts_with(['&', '*', '?', '|', '-', '<', '>', '=', '!', '%', '@', '.'])
        || value.contains(|c: char| {
            matches!(c, ':' | '{' | '}' | '[' | ']' | ',' | '#' | '`' | '"' | '\'' | '\\')
                || matches!(c, '\0'..='\x06' | '\t' | '\n' | '\r' | '\x0e'..='\x1a' | '\x1c'..='\x1f')
        })
        || WORDS.contains(&value)
        || value.starts_with("0x")
        || value.parse::<i64>().is_ok()
        || value.parse::<f64>().is_ok()
}

// ---------------------------------------------------------------------------
// Diffs.

/// A unified line diff of the stored text of `old_path` against the new text
/// of `new_path`, with 3 lines of context; hunk headers number the lines of
/// the two files (their headers included). The first [`MAX_DIFF_LINES`]
/// lines are shown, then the number of lines left out.
fn render_diff(
    old: &str,
    new: &str,
    (old_path, old_offset): (&Path, usize),
    (new_path, new_offset): (&Path, usize),
    color: bool,
) -> String {
    let paint = |code: &str, text: &str| {
        if color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    };
    let range = |r: std::ops::Range<usize>, offset: usize| {
        let start = offset + if r.is_empty() { r.start } else { r.start + 1 };
        if r.len() == 1 {
            start.to_string()
        } else {
            format!("{start},{}", r.len())
        }
    };
    let mut out = String::new();
    out.push_str(&paint("1", &format!("--- {}", old_path.display())));
    out.push('\n');
    out.push_str(&paint("1", &format!("+++ {}", new_path.display())));
    out.push('\n');
    let diff = TextDiff::from_lines(old, new);
    let mut shown = 0usize;
    let mut hidden = 0usize;
    for group in diff.grouped_ops(3) {
        let (Some(first), Some(last)) = (group.first(), group.last()) else { continue };
        let old_range = first.old_range().start..last.old_range().end;
        let new_range = first.new_range().start..last.new_range().end;
        let mut hunk = vec![paint(
            "36",
            &format!("@@ -{} +{} @@", range(old_range, old_offset), range(new_range, new_offset)),
        )];
        for op in &group {
            for change in diff.iter_changes(op) {
                let line = change.value().trim_end_matches(['\n', '\r']);
                hunk.push(match change.tag() {
                    ChangeTag::Delete => paint("31", &format!("-{line}")),
                    ChangeTag::Insert => paint("32", &format!("+{line}")),
                    ChangeTag::Equal => format!(" {line}"),
                });
            }
        }
        for line in hunk {
            if shown < MAX_DIFF_LINES {
                out.push_str(&line);
                out.push('\n');
                shown += 1;
            } else {
                hidden += 1;
            }
        }
    }
    if hidden > 0 {
        out.push_str(&format!(
            "… {hidden} more diff lines; the whole new text is in {}\n",
            new_path.display()
        ));
    }
    out
}

// ---------------------------------------------------------------------------
// `nnc snapshot`.

/// What became of one stage's snapshot (in the order of [`Outcome::ALL`],
/// which the run's counts are indexed by).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    /// The text equals the snapshot.
    Unchanged,
    /// There was no snapshot; it was written.
    Created,
    /// The text differed (or there was none) and `--accept` wrote it.
    Updated,
    /// The text differs; it was written to `.snap.new`.
    Changed,
    /// There was no snapshot and `CI` is set: nothing was accepted.
    Missing,
    /// The snapshot could not be read or written.
    Failed,
}

impl Outcome {
    const ALL: [Outcome; 6] = [
        Outcome::Unchanged,
        Outcome::Created,
        Outcome::Updated,
        Outcome::Changed,
        Outcome::Missing,
        Outcome::Failed,
    ];

    fn word(self) -> &'static str {
        match self {
            Outcome::Unchanged => "unchanged",
            Outcome::Created => "created",
            Outcome::Updated => "updated",
            Outcome::Changed => "changed",
            Outcome::Missing => "missing",
            Outcome::Failed => "failed",
        }
    }

    fn status(self) -> Status {
        match self {
            Outcome::Unchanged | Outcome::Created | Outcome::Updated => Status::Ok,
            Outcome::Changed | Outcome::Missing => Status::CompileErrors,
            Outcome::Failed => Status::Usage,
        }
    }
}

/// Whether this is a continuous-integration run, as insta tells: the
/// environment variable `CI` is set to anything but `""`, `0` or `false`
/// (or, without `CI`, `TF_BUILD` is set).
pub fn is_ci() -> bool {
    match std::env::var("CI").ok().as_deref() {
        Some("" | "0" | "false") => false,
        Some(_) => true,
        None => std::env::var_os("TF_BUILD").is_some(),
    }
}

/// The `.nn` files directly in `dir`, sorted.
fn nn_files_in(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot list {}: {}", dir.display(), io_text(&e)))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "nn"))
        .collect();
    files.sort();
    Ok(files)
}

/// An I/O error without the `(os error N)` that `std` appends.
fn io_text(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error ") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

/// The model files of the command line: files as given, directories as the
/// `.nn` files directly in them, the current directory when none is given;
/// each file once. A directory without `.nn` files is an error.
fn model_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let given = if paths.is_empty() { vec![PathBuf::from(".")] } else { paths.to_vec() };
    let mut files = vec![];
    for path in given {
        if path.is_dir() {
            let found = nn_files_in(&path)?;
            if found.is_empty() {
                let shown = if path == Path::new(".") {
                    "the current directory".to_string()
                } else {
                    path.display().to_string()
                };
                return Err(format!(
                    "no .nn files in {shown}; give the model files or their directories (`nnc snapshot models/`)"
                ));
            }
            // `./sine.nn` is shown as `sine.nn`.
            files.extend(found.into_iter().map(|f| f.strip_prefix(".").map(Path::to_path_buf).unwrap_or(f)));
        } else {
            files.push(path);
        }
    }
    let mut seen = HashSet::new();
    files.retain(|f| seen.insert(std::fs::canonicalize(f).unwrap_or_else(|_| f.clone())));
    Ok(files)
}

/// Runs `nnc snapshot`.
pub fn run_snapshot(
    args: &SnapshotArgs,
    color_choice: ColorChoice,
    color: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Status {
    let diff_color = match color_choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
    };
    let files = match model_files(&args.files) {
        Ok(files) => files,
        Err(message) => {
            let _ = writeln!(err, "error: {message}");
            return Status::Usage;
        }
    };
    let mut stages: Vec<SnapshotStage> = vec![];
    for &stage in &args.stages {
        if !stages.contains(&stage) {
            stages.push(stage);
        }
    }
    let run = Run { accept: args.accept, ci: is_ci(), color, diff_color };
    let mut worst = Status::Ok;
    let mut counts = [0usize; Outcome::ALL.len()];
    let mut broken = 0usize;
    for file in &files {
        match run.model(file, &stages, out, err) {
            Ok((outcomes, stage_errors)) => {
                for outcome in outcomes {
                    counts[outcome as usize] += 1;
                    worst = worst.max(outcome.status());
                }
                if stage_errors != Status::Ok {
                    broken += 1;
                    worst = worst.max(stage_errors);
                }
            }
            Err(status) => {
                broken += 1;
                worst = worst.max(status);
            }
        }
    }
    if counts[Outcome::Changed as usize] + counts[Outcome::Missing as usize] > 0 {
        let _ = writeln!(
            out,
            "the new text is in the .snap.new files: accept it with `nnc snapshot --accept` on the same \
             files, or review it with `cargo insta review`"
        );
    }
    let _ = writeln!(out, "{}", summary_line(files.len(), &counts, broken));
    worst
}

/// `3 models, 12 stages: 11 unchanged, 1 changed`, and the models that
/// did not compile.
fn summary_line(models: usize, counts: &[usize], broken: usize) -> String {
    let plural = |n: usize, noun: &str| if n == 1 { format!("{n} {noun}") } else { format!("{n} {noun}s") };
    let total: usize = counts.iter().sum();
    let parts: Vec<String> = Outcome::ALL
        .iter()
        .zip(counts)
        .filter(|(_, &n)| n > 0)
        .map(|(o, n)| format!("{n} {}", o.word()))
        .collect();
    let mut line = format!("{}, {}", plural(models, "model"), plural(total, "stage"));
    if !parts.is_empty() {
        line.push_str(&format!(": {}", parts.join(", ")));
    }
    if broken > 0 {
        let verb = if broken == 1 { "has" } else { "have" };
        line.push_str(&format!("; {} {verb} errors", plural(broken, "model")));
    }
    line
}

/// The settings of one `nnc snapshot` run.
struct Run {
    accept: bool,
    ci: bool,
    /// Colour diagnostics (stderr).
    color: bool,
    /// Colour diffs (stdout).
    diff_color: bool,
}

impl Run {
    /// Checks (or accepts) every stage of the model file `file`: the outcome
    /// of each stage that compiles and [`Status::CompileErrors`] if one does
    /// not (its diagnostics are printed), or the status of a model that
    /// cannot be read or analysed.
    fn model(
        &self,
        file: &Path,
        stages: &[SnapshotStage],
        out: &mut dyn Write,
        err: &mut dyn Write,
    ) -> Result<(Vec<Outcome>, Status), Status> {
        let name = file.display().to_string();
        let source = read_source(file).map_err(|message| {
            let _ = writeln!(err, "error: {message}");
            Status::Usage
        })?;
        let compiled = compile_with(&source, &FileLoader::for_model(file)).map_err(|diags| {
            let _ = write!(err, "{}", diag::render(&name, &source, &diags, self.color));
            Status::CompileErrors
        })?;
        if !compiled.warnings.is_empty() {
            let _ = write!(err, "{}", diag::render(&name, &source, &compiled.warnings, self.color));
        }
        let mut outcomes = vec![];
        let mut stage_errors = Status::Ok;
        for &stage in stages {
            match stage.render(&compiled) {
                Ok(text) => outcomes.push(self.stage(file, stage, &text, out, err)),
                Err(e) => stage_errors = report(err, &name, &source, &e, self.color),
            }
        }
        Ok((outcomes, stage_errors))
    }

    /// Compares (or accepts) the text of one stage, printing what became of
    /// it.
    fn stage(
        &self,
        file: &Path,
        stage: SnapshotStage,
        text: &str,
        out: &mut dyn Write,
        err: &mut dyn Write,
    ) -> Outcome {
        let snap = snapshot_path(file, stage);
        let pending = new_path(&snap);
        let what = format!("{}, stage {stage}", file.display());
        let contents = format_snapshot(&Header::for_stage(file, stage), text);
        let stored = match std::fs::read(&snap) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(stored) => Some(stored),
                Err(_) => return self.unreadable(&what, &snap, "not UTF-8 text", &contents, out, err),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                return self.unreadable(
                    &what,
                    &snap,
                    &format!("cannot read: {}", io_text(&e)),
                    &contents,
                    out,
                    err,
                )
            }
        };
        let stored_text = match stored.as_deref().map(parse_snapshot) {
            Some(Ok(text)) => Some(text),
            Some(Err(cause)) => return self.unreadable(&what, &snap, &cause, &contents, out, err),
            None => None,
        };
        if stored_text.as_deref() == Some(normalize(text).as_str()) {
            // A `.snap.new` left by an earlier run is stale now, as insta
            // treats it.
            if let Err(message) = remove_if_present(&pending) {
                let _ = writeln!(err, "error: {message}");
                return Outcome::Failed;
            }
            let _ = writeln!(out, "unchanged: {what}");
            return Outcome::Unchanged;
        }
        if self.accept || (stored_text.is_none() && !self.ci) {
            if let Err(message) = write_snapshot(&snap, &contents).and_then(|()| remove_if_present(&pending))
            {
                let _ = writeln!(err, "error: {message}");
                return Outcome::Failed;
            }
            let (outcome, verb) = if stored_text.is_none() {
                (Outcome::Created, "created")
            } else {
                (Outcome::Updated, "updated")
            };
            let _ = writeln!(out, "{verb}: {what}: wrote {}", snap.display());
            return outcome;
        }
        if let Err(message) = write_snapshot(&pending, &contents) {
            let _ = writeln!(err, "error: {message}");
            return Outcome::Failed;
        }
        match (stored, stored_text) {
            (Some(stored), Some(old)) => {
                let _ = writeln!(
                    out,
                    "changed: {what}: differs from {} (new text in {})",
                    snap.display(),
                    pending.display()
                );
                let diff = render_diff(
                    &old,
                    &normalize(text),
                    (&snap, header_lines(&stored)),
                    (&pending, header_lines(&contents)),
                    self.diff_color,
                );
                let _ = write!(out, "{diff}");
                Outcome::Changed
            }
            _ => {
                let _ = writeln!(
                    out,
                    "missing: {what}: no {} and CI is set, so none is created (new text in {})",
                    snap.display(),
                    pending.display()
                );
                Outcome::Missing
            }
        }
    }

    /// A stored snapshot that cannot be read: replaced under `--accept`,
    /// else an error.
    fn unreadable(
        &self,
        what: &str,
        snap: &Path,
        cause: &str,
        contents: &str,
        out: &mut dyn Write,
        err: &mut dyn Write,
    ) -> Outcome {
        if self.accept {
            if let Err(message) =
                write_snapshot(snap, contents).and_then(|()| remove_if_present(&new_path(snap)))
            {
                let _ = writeln!(err, "error: {message}");
                return Outcome::Failed;
            }
            let _ = writeln!(out, "updated: {what}: wrote {} (it was {cause})", snap.display());
            return Outcome::Updated;
        }
        let _ = writeln!(err, "error: {what}: {}: {cause} (`--accept` replaces it)", snap.display());
        Outcome::Failed
    }
}

/// Writes a snapshot file atomically, creating its directory.
fn write_snapshot(path: &Path, contents: &str) -> Result<(), String> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {}", dir.display(), io_text(&e)))?;
    }
    write_atomically(path, contents.as_bytes()).map_err(|e| e.to_string())
}

/// Removes `path` if it exists.
fn remove_if_present(path: &Path) -> Result<(), String> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("cannot remove {}: {}", path.display(), io_text(&e))),
    }
}

// ---------------------------------------------------------------------------
// The library API: snapshot tests in Rust.

/// The text of one stage of one model file, with where its snapshot lives:
/// what [`assert_stage!`](crate::assert_stage) asserts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StageSnapshot {
    /// The model file.
    pub model: PathBuf,
    pub stage: SnapshotStage,
    /// The stage's text, as `nnc summary` or `nnc ir` print it.
    pub text: String,
}

impl StageSnapshot {
    /// Reads and compiles the model file `model` and renders `stage`. The
    /// error is the message to show: the rendered diagnostics of a model
    /// with errors, an unreadable file, an unknown stage.
    pub fn new(model: impl AsRef<Path>, stage: &str) -> Result<StageSnapshot, String> {
        let model = model.as_ref();
        let stage: SnapshotStage = stage.parse()?;
        let name = model.display().to_string();
        let source = read_source(model)?;
        let compiled = compile_with(&source, &FileLoader::for_model(model))
            .map_err(|diags| diag::render_plain(&name, &source, &diags))?;
        let text = stage.render(&compiled).map_err(|e| diag::render_plain(&name, &source, &e.diagnostics))?;
        Ok(StageSnapshot { model: model.to_path_buf(), stage, text })
    }

    /// [`StageSnapshot::new`] for a test: `model` relative to the crate
    /// directory `crate_dir` unless absolute; panics with the message on an
    /// error. Used by [`assert_stage!`](crate::assert_stage).
    #[track_caller]
    pub fn for_test(crate_dir: &str, model: impl AsRef<Path>, stage: &str) -> StageSnapshot {
        let path = Path::new(crate_dir).join(model.as_ref());
        StageSnapshot::new(&path, stage).unwrap_or_else(|message| {
            panic!("cannot snapshot stage `{stage}` of {}:\n{message}", model.as_ref().display())
        })
    }

    /// The snapshot's name, `NAME@STAGE`.
    pub fn name(&self) -> String {
        snapshot_name(&self.model, self.stage)
    }

    /// The snapshot file, `DIR/snapshots/NAME@STAGE.snap`.
    pub fn path(&self) -> PathBuf {
        snapshot_path(&self.model, self.stage)
    }

    /// The command that prints the text, as recorded in the snapshot's
    /// header.
    pub fn expression(&self) -> String {
        self.stage.command(&file_name(&self.model))
    }

    /// insta's settings for the snapshot: stored in `snapshots/` beside the
    /// model under its own name (no module prefix), with the model as the
    /// input file and the stage's description.
    #[cfg(feature = "snapshot")]
    pub fn insta_settings(&self) -> insta::Settings {
        let mut settings = insta::Settings::clone_current();
        let dir = self.path().parent().map(Path::to_path_buf).unwrap_or_default();
        settings.set_snapshot_path(std::path::absolute(&dir).unwrap_or(dir));
        settings.set_prepend_module_to_snapshot(false);
        settings.set_input_file(&self.model);
        settings.set_description(self.stage.about());
        settings
    }
}

/// Asserts that a stage of a model file matches its snapshot, with insta.
///
/// `assert_stage!(MODEL, STAGE)` compiles the model file `MODEL` (a path
/// relative to the calling crate's directory, or absolute) and compares the
/// text of `STAGE` — `"summary"` or a stage of `nnc ir`: `"ast"`,
/// `"forward"`, `"grad"`, `"train"`, `"opt"`, `"fused"`, `"plan"`, `"clif"`
/// — with the snapshot `snapshots/NAME@STAGE.snap` beside the model, the
/// file that `nnc snapshot` reads and writes. It is an
/// `insta::assert_snapshot!` and behaves like one: a new or changed
/// snapshot fails the test and is written as `.snap.new` for `cargo insta
/// review`, `INSTA_UPDATE` and `CI` work as usual. A model with errors or
/// an unknown stage fails the test with the rendered diagnostics.
///
/// ```ignore
/// #[test]
/// fn storm_unet_fuses_as_before() {
///     nnc::assert_stage!("models/storm_unet.nn", "fused");
/// }
/// ```
///
/// (`tests/user_snapshot.rs` in nnc's repository is a compiled example.)
///
/// Needs the feature `snapshot` (on by default). The caller's crate does
/// not need to depend on insta.
#[cfg(feature = "snapshot")]
#[macro_export]
macro_rules! assert_stage {
    ($model:expr, $stage:expr $(,)?) => {{
        let snapshot =
            $crate::snapshot::StageSnapshot::for_test(::core::env!("CARGO_MANIFEST_DIR"), $model, $stage);
        snapshot.insta_settings().bind(|| {
            $crate::snapshot::insta::assert_snapshot!(
                snapshot.name(),
                snapshot.text.as_str(),
                snapshot.expression().as_str()
            )
        })
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_quoted_as_insta_quotes_them() {
        assert_eq!(yaml_string("nnc ir sine.nn --stage fused"), "nnc ir sine.nn --stage fused");
        assert_eq!(yaml_string("sine.nn"), "sine.nn");
        assert_eq!(yaml_string("a: b"), "\"a: b\"");
        assert_eq!(yaml_string("true"), "\"true\"");
        assert_eq!(yaml_string("12"), "\"12\"");
        assert_eq!(yaml_string("-x"), "\"-x\"");
        assert_eq!(yaml_string("say \"hi\"\n"), "\"say \\\"hi\\\"\\n\"");
        assert_eq!(yaml_string(""), "\"\"");
    }

    #[test]
    fn a_written_snapshot_reads_back() {
        let header = Header::for_stage(Path::new("models/sine.nn"), SnapshotStage::Ir(Stage::Fused));
        let text = "line 1\nline 2\n\n";
        let file = format_snapshot(&header, text);
        assert_eq!(
            file,
            "---\nsource: sine.nn\ndescription: \"The optimised graph partitioned into kernels, with the fusion \
             report\"\nexpression: nnc ir sine.nn --stage fused\ninput_file: sine.nn\n---\nline 1\nline 2\n"
        );
        assert_eq!(parse_snapshot(&file).as_deref(), Ok("line 1\nline 2"));
        assert_eq!(header_lines(&file), 6);
        assert!(parse_snapshot("line 1\n").is_err());
        assert!(parse_snapshot("---\nsource: x\n").is_err());
    }

    #[test]
    fn hunk_headers_number_file_lines() {
        let old = "a\nb\nc\nd\ne\nf\ng\nh\n";
        let new = "a\nb\nc\nd\nE\nf\ng\nh\n";
        let diff = render_diff(old, new, (Path::new("x.snap"), 6), (Path::new("x.snap.new"), 6), false);
        assert_eq!(diff, "--- x.snap\n+++ x.snap.new\n@@ -8,7 +8,7 @@\n b\n c\n d\n-e\n+E\n f\n g\n h\n");
    }

    #[test]
    fn stage_names() {
        assert_eq!(SnapshotStage::from_name("summary"), Some(SnapshotStage::Summary));
        assert_eq!(SnapshotStage::from_name("fused"), Some(SnapshotStage::Ir(Stage::Fused)));
        let error = "fuse".parse::<SnapshotStage>().unwrap_err();
        assert!(error.starts_with("unknown stage `fuse`; the stages are summary, ast, forward"), "{error}");
    }
}
