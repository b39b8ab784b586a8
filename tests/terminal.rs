//! The `nnc` binary on a terminal: commands run under a pseudo-terminal, as
//! a user runs them, finish, draw what a terminal should show, and print the
//! same results as with their output redirected.
//!
//! The terminal's screen is reconstructed with a terminal emulator (`vt100`)
//! so the tests see what a user sees: the progress bar's drawing and
//! clearing applied, no line garbled by the bar.

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portable_pty::{native_pty_system, CommandBuilder, PtySize};

/// Rows of the pseudo-terminal: enough that a 200-epoch run never scrolls,
/// so the emulated screen holds every line printed.
const ROWS: u16 = 400;
const COLS: u16 = 160;

/// A command's exit code and everything it wrote to the terminal.
struct TtyRun {
    code: u32,
    /// The bytes as written (stdout and stderr share the terminal).
    raw: Vec<u8>,
}

impl TtyRun {
    fn raw_text(&self) -> String {
        String::from_utf8_lossy(&self.raw).into_owned()
    }

    /// The screen after the run, one string per non-empty row.
    fn screen(&self) -> Vec<String> {
        let size = |n: u16| std::num::NonZeroU16::new(n).expect("a terminal size is not zero");
        let mut parser = vt100::Parser::new(size(ROWS), size(COLS), 0);
        parser.process(&self.raw);
        parser
            .screen()
            .contents()
            .lines()
            .map(|l| l.trim_end().to_string())
            .filter(|l| !l.is_empty())
            .collect()
    }
}

/// Runs the `nnc` binary with `args` in `dir` on a fresh pseudo-terminal,
/// failing (not hanging) when it has not finished within `limit`.
fn nnc_tty(dir: &Path, args: &[&str], limit: Duration) -> TtyRun {
    let pair = native_pty_system()
        .openpty(PtySize { rows: ROWS, cols: COLS, pixel_width: 0, pixel_height: 0 })
        .expect("open a pseudo-terminal");
    let mut cmd = CommandBuilder::new(env!("CARGO_BIN_EXE_nnc"));
    cmd.args(args);
    cmd.cwd(dir);
    cmd.env("TERM", "xterm-256color");
    cmd.env_remove("NO_COLOR");
    let mut child = pair.slave.spawn_command(cmd).expect("spawn nnc on the pseudo-terminal");
    drop(pair.slave);

    // The reader must drain the terminal while the command runs, or the
    // command blocks once the terminal's buffer is full.
    let raw = Arc::new(Mutex::new(Vec::new()));
    let mut reader = pair.master.try_clone_reader().expect("terminal reader");
    let sink = Arc::clone(&raw);
    let drain = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        // Reading ends with 0 or an error (EIO) once the command has exited.
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock().expect("terminal buffer").extend_from_slice(&buf[..n]);
        }
    });

    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for nnc") {
            break status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            let seen = String::from_utf8_lossy(&raw.lock().expect("terminal buffer")).into_owned();
            panic!(
                "`nnc {}` on a terminal did not finish within {limit:?}; it printed:\n{seen}",
                args.join(" ")
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    // The slave side is closed with the child; what is left is drained.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !drain.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(pair.master);
    let raw = raw.lock().expect("terminal buffer").clone();
    TtyRun { code: status.exit_code(), raw }
}

/// Runs the `nnc` binary with stdout and stderr redirected (no terminal).
fn nnc_piped(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_nnc"))
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run nnc: {e}"));
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}

/// A fresh temporary directory for one test.
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("nnc-terminal-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// `line` with every measured quantity (a number followed by `ms`, `s`,
/// `samples/s` or `%`, the unit perhaps followed by `,` or `)`) replaced by
/// `#`: what differs between two identical runs.
fn without_timings(line: &str) -> String {
    let tokens: Vec<&str> = line.split(' ').collect();
    let mut kept = Vec::with_capacity(tokens.len());
    for (i, t) in tokens.iter().enumerate() {
        let unit = tokens.get(i + 1).copied().unwrap_or("").trim_end_matches([',', ')']);
        let number = !t.is_empty() && t.replace(',', "").parse::<f64>().is_ok();
        kept.push(if number && matches!(unit, "ms" | "s" | "samples/s" | "%") { "#" } else { t });
    }
    kept.join(" ")
}

/// The terminal lines that the redirected run printed too (its stdout),
/// timings removed.
fn comparable(lines: &[String]) -> Vec<String> {
    lines.iter().map(|l| without_timings(l)).collect()
}

/// Asserts that the progress bar was drawn: escape sequences reached the
/// terminal and a bar line with the run's ETA and a rate in samples/s.
fn assert_bar_drawn(run: &TtyRun) {
    let raw = run.raw_text();
    assert!(raw.contains('\u{1b}'), "no escape sequence reached the terminal:\n{raw}");
    let bar_lines: Vec<&str> = raw
        .split(['\r', '\n'])
        .filter(|l| l.contains("ETA") && l.contains('[') && l.contains("epoch"))
        .collect();
    assert!(!bar_lines.is_empty(), "no progress bar was drawn:\n{raw}");
    for line in &bar_lines {
        assert!(line.contains(" samples/s"), "the bar's rate is not in samples/s: {line:?}");
        let rate = line.split("samples/s").next().unwrap_or("");
        let number = rate.trim_end().rsplit(' ').next().unwrap_or("");
        assert!(
            number == "-" || number.chars().all(|c| c.is_ascii_digit() || c == ','),
            "the bar's rate is not a whole number with thousands separators: {line:?}"
        );
    }
}

/// Trains `models/sine.nn` on a terminal and with redirected output, and
/// checks that both finish with the same epoch lines and checkpoint.
fn sine_on_a_terminal_and_off_it(threads: &str, epochs: Option<&str>) {
    let dir = temp_dir(&format!("sine-{threads}-{}", epochs.unwrap_or("all")));
    let root = common::root();
    let model = root.join("models/sine.nn");
    let args = |name: &str| -> Vec<String> {
        let mut a = vec![
            "train".to_string(),
            path_str(&model).to_string(),
            "--threads".into(),
            threads.into(),
            "--checkpoint".into(),
            path_str(&dir.join(format!("{name}.safetensors"))).into(),
            "--run-dir".into(),
            path_str(&dir.join(format!("{name}.run"))).into(),
        ];
        if let Some(e) = epochs {
            a.extend(["--epochs".to_string(), e.to_string()]);
        }
        a
    };
    let tty_args = args("tty");
    let tty =
        nnc_tty(&root, &tty_args.iter().map(String::as_str).collect::<Vec<_>>(), Duration::from_secs(240));
    assert_eq!(tty.code, 0, "nnc train on a terminal failed:\n{}", tty.raw_text());
    assert_bar_drawn(&tty);

    let piped_args = args("piped");
    let (code, stdout, stderr) = nnc_piped(&root, &piped_args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(code, 0, "nnc train without a terminal failed:\n{stderr}");
    assert!(stderr.is_empty(), "without a terminal nothing goes to stderr:\n{stderr}");

    // The screen shows exactly the lines of the redirected run (paths aside),
    // whole and in order: the bar was cleared and left nothing behind.
    let screen = comparable(&tty.screen()).join("\n").replace("tty.", "NAME.");
    let piped = comparable(&stdout.lines().map(str::to_string).collect::<Vec<_>>())
        .join("\n")
        .replace("piped.", "NAME.");
    assert_eq!(screen, piped, "the terminal shows other lines than the redirected run");
    let epochs_run = stdout.lines().filter(|l| l.starts_with("epoch ")).count();
    assert!(epochs_run >= 1, "no epoch lines:\n{stdout}");

    let a = std::fs::read(dir.join("tty.safetensors")).expect("the terminal run wrote its checkpoint");
    let b = std::fs::read(dir.join("piped.safetensors")).expect("the redirected run wrote its checkpoint");
    assert!(a == b, "the checkpoints of the two runs differ");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn train_sine_as_in_the_readme_finishes_on_a_terminal() {
    sine_on_a_terminal_and_off_it("2", None);
}

#[test]
fn train_on_one_thread_finishes_on_a_terminal() {
    sine_on_a_terminal_and_off_it("1", Some("30"));
}

#[test]
fn train_digits_finishes_on_a_terminal() {
    let dir = temp_dir("digits");
    let root = common::root();
    let model = root.join("models/digits.nn");
    let ckpt = dir.join("digits.safetensors");
    let run_dir = dir.join("digits.run");
    let args = [
        "train",
        path_str(&model),
        "--epochs",
        "3",
        "--checkpoint",
        path_str(&ckpt),
        "--run-dir",
        path_str(&run_dir),
    ];
    let tty = nnc_tty(&root, &args, Duration::from_secs(240));
    assert_eq!(tty.code, 0, "nnc train on a terminal failed:\n{}", tty.raw_text());
    assert_bar_drawn(&tty);
    let screen = tty.screen();
    for epoch in 1..=3 {
        let prefix = format!("epoch {epoch}/3  train_loss ");
        assert!(
            screen.iter().any(|l| l.starts_with(&prefix)),
            "no line for epoch {epoch}:\n{}",
            screen.join("\n")
        );
    }
    assert!(ckpt.exists(), "no checkpoint written");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn resume_eval_predict_and_check_on_a_terminal() {
    let dir = temp_dir("resume");
    let root = common::root();
    let model = root.join("models/sine.nn");
    let first = dir.join("first.safetensors");
    let resumed = dir.join("resumed.safetensors");
    let model_s = path_str(&model);
    let (code, _, stderr) = nnc_piped(
        &root,
        &[
            "train",
            model_s,
            "--epochs",
            "5",
            "--quiet",
            "--checkpoint",
            path_str(&first),
            "--run-dir",
            path_str(&dir.join("a.run")),
        ],
    );
    assert_eq!(code, 0, "{stderr}");

    let tty = nnc_tty(
        &root,
        &[
            "train",
            model_s,
            "--epochs",
            "12",
            "--resume",
            path_str(&first),
            "--checkpoint",
            path_str(&resumed),
            "--run-dir",
            path_str(&dir.join("b.run")),
        ],
        Duration::from_secs(120),
    );
    assert_eq!(tty.code, 0, "nnc train --resume on a terminal failed:\n{}", tty.raw_text());
    assert_bar_drawn(&tty);
    let screen = tty.screen();
    assert!(screen.iter().any(|l| l.contains("resuming after epoch 5")), "{}", screen.join("\n"));
    let epochs: Vec<&String> = screen.iter().filter(|l| l.contains("train_loss")).collect();
    assert_eq!(epochs.len(), 7, "epochs 6 to 12 each get a line:\n{}", screen.join("\n"));
    assert!(
        epochs[0].starts_with("epoch  6/12") && epochs[6].starts_with("epoch 12/12"),
        "{}",
        screen.join("\n")
    );
    assert!(resumed.exists(), "no checkpoint written");

    let ckpt = path_str(&resumed);
    let tty = nnc_tty(&root, &["eval", model_s, "--checkpoint", ckpt], Duration::from_secs(60));
    assert_eq!(tty.code, 0, "nnc eval on a terminal failed:\n{}", tty.raw_text());
    assert!(tty.screen().iter().any(|l| l.starts_with("loss")), "{}", tty.raw_text());

    let x = dir.join("x.npy");
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    let header = "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 1), }";
    let pad = 64 - (10 + header.len() + 1) % 64;
    let header = format!("{header}{}\n", " ".repeat(pad % 64));
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    for v in [0.0f32, 1.0, 2.0] {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    std::fs::write(&x, bytes).expect("write x.npy");
    let y = dir.join("y.npy");
    let tty = nnc_tty(
        &root,
        &["predict", model_s, "--checkpoint", ckpt, "--input", path_str(&x), "-o", path_str(&y)],
        Duration::from_secs(60),
    );
    assert_eq!(tty.code, 0, "nnc predict on a terminal failed:\n{}", tty.raw_text());
    assert!(y.exists(), "no predictions written");

    let tty =
        nnc_tty(&root, &["check", "models/sine.nn", "tests/ui/undefined_name.nn"], Duration::from_secs(60));
    assert_eq!(tty.code, 1, "{}", tty.raw_text());
    let raw = tty.raw_text();
    assert!(raw.contains("\u{1b}["), "diagnostics on a terminal are coloured:\n{raw}");
    let screen = tty.screen().join("\n");
    assert!(screen.contains("ok: models/sine.nn") && screen.contains("cannot find `hiden`"), "{screen}");
    std::fs::remove_dir_all(&dir).ok();
}
