//! `clawscrub follow` end to end: the real binary against files a test writer appends to,
//! rotates (rename-and-create, copytruncate) and a `kill -9` in the middle; every line
//! written must come out exactly once, scrubbed.

use std::collections::HashSet;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_clawscrub");
const OPENAI: &str = "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z";

struct Dirs {
    _tmp: tempfile::TempDir,
    input: PathBuf,
    out: PathBuf,
    state: PathBuf,
}

fn dirs() -> Dirs {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    let out = tmp.path().join("out");
    fs::create_dir_all(&input).unwrap();
    Dirs {
        input,
        out,
        state: tmp.path().join("state.json"),
        _tmp: tmp,
    }
}

fn start(d: &Dirs, extra: &[&str]) -> Child {
    Command::new(BIN)
        .args(["follow", "--from-beginning", "--poll-interval", "0.1"])
        .arg("--state")
        .arg(&d.state)
        .arg("--out-dir")
        .arg(&d.out)
        .args(extra)
        .arg(d.input.join("*.log"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn append(path: &Path, line: &str) {
    let mut f = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    writeln!(f, "{line}").unwrap();
}

fn line(seq: usize) -> String {
    format!("{{\"seq\":{seq},\"text\":\"calling api with {OPENAI} from 10.1.2.3\"}}")
}

/// The sequence numbers in `text`, in order.
fn seqs(text: &str) -> Vec<usize> {
    text.lines()
        .filter_map(|l| {
            let at = l.find("\"seq\":")? + 6;
            let digits: String = l[at..].chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
        .collect()
}

fn output(d: &Dirs) -> String {
    fs::read_to_string(d.out.join("app.log")).unwrap_or_default()
}

/// Waits until `done` holds for the output, or panics after a while.
fn wait_for(d: &Dirs, what: &str, done: impl Fn(&str) -> bool) {
    let started = Instant::now();
    while !done(&output(d)) {
        if started.elapsed() > Duration::from_secs(30) {
            let got: HashSet<usize> = seqs(&output(d)).into_iter().collect();
            let missing: Vec<usize> = (0..got.len() + 1).filter(|s| !got.contains(s)).collect();
            panic!(
                "timed out waiting for {what}: {} lines, first missing {:?}",
                got.len(),
                &missing[..missing.len().min(20)]
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn stop(mut child: Child) {
    let pid = child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "SIGTERM ends follow with 0: {status:?}");
}

fn assert_exactly_once(text: &str, n: usize) {
    let mut count = vec![0; n];
    for s in seqs(text) {
        count[s] += 1;
    }
    let wrong: Vec<(usize, i32)> = count
        .iter()
        .enumerate()
        .filter(|(_, &c)| c != 1)
        .map(|(s, &c)| (s, c))
        .collect();
    assert!(
        wrong.is_empty(),
        "lines not written exactly once (seq, times): {wrong:?}"
    );
    assert!(
        !text.contains(OPENAI) && !text.contains("10.1.2.3"),
        "scrubbed"
    );
}

/// Rename-and-create rotation every 700 lines and a `kill -9` at an arbitrary moment: the
/// restarted follower resumes from its checkpoint, cuts what was written after it, and every
/// line comes out exactly once.
#[test]
fn rename_rotation_and_kill_9_lose_and_double_nothing() {
    let d = dirs();
    let log = d.input.join("app.log");
    let total = 3000;
    let writer_log = log.clone();
    let writer = std::thread::spawn(move || {
        for seq in 0..total {
            if seq > 0 && seq % 700 == 0 {
                let rotated = writer_log.with_extension(format!("log.{}", seq / 700));
                fs::rename(&writer_log, rotated).unwrap();
            }
            append(&writer_log, &line(seq));
            if seq % 20 == 0 {
                std::thread::sleep(Duration::from_millis(3));
            }
        }
    });
    let first = start(&d, &[]);
    wait_for(&d, "some output", |out| seqs(out).len() > 900);
    let mut first = first;
    first.kill().unwrap(); // SIGKILL: no flush, no last checkpoint.
    first.wait().unwrap();
    std::thread::sleep(Duration::from_millis(150));
    let second = start(&d, &[]);
    writer.join().unwrap();
    wait_for(&d, "every line", |out| {
        seqs(out).iter().collect::<HashSet<_>>().len() == total
    });
    // Give a doubled line the chance to show up before looking.
    std::thread::sleep(Duration::from_millis(300));
    stop(second);
    assert_exactly_once(&output(&d), total);
}

/// copytruncate: the file is copied away and truncated in place; the follower reads it again
/// from 0 and misses nothing written after.
#[test]
fn copytruncate_is_read_again_from_the_start() {
    let d = dirs();
    let log = d.input.join("app.log");
    let child = start(&d, &[]);
    for seq in 0..500 {
        append(&log, &line(seq));
    }
    wait_for(&d, "the first 500 lines", |out| seqs(out).len() == 500);
    fs::copy(&log, d.input.join("app.log.1")).unwrap();
    fs::OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(0)
        .unwrap();
    // More lines than before, so the file is longer than the old offset at once.
    for seq in 500..1500 {
        append(&log, &line(seq));
    }
    wait_for(&d, "every line", |out| seqs(out).len() >= 1500);
    std::thread::sleep(Duration::from_millis(300));
    stop(child);
    assert_exactly_once(&output(&d), 1500);
}

/// SIGTERM: the follower flushes and checkpoints; the checkpoint's offset is the whole file
/// and its output length the whole output.
#[test]
fn sigterm_leaves_checkpoint_and_output_in_agreement() {
    let d = dirs();
    let log = d.input.join("app.log");
    let child = start(&d, &[]);
    for seq in 0..200 {
        append(&log, &line(seq));
    }
    wait_for(&d, "200 lines", |out| seqs(out).len() == 200);
    stop(child);
    let state: serde_json::Value = serde_json::from_slice(&fs::read(&d.state).unwrap()).unwrap();
    let file = &state["files"][0];
    assert_eq!(file["offset"], fs::metadata(&log).unwrap().len());
    assert_eq!(
        state["outputs"]["app.log"],
        fs::metadata(d.out.join("app.log")).unwrap().len()
    );
    let text = fs::read_to_string(&d.state).unwrap();
    assert!(!text.contains(OPENAI), "the checkpoint holds no secret");

    // A restart with nothing new writes nothing.
    let again = start(&d, &[]);
    std::thread::sleep(Duration::from_millis(500));
    stop(again);
    assert_exactly_once(&output(&d), 200);
}

/// stdout with `--json`, a partial line written after the timeout, files from the end.
#[test]
fn json_lines_on_stdout_and_partial_lines() {
    let d = dirs();
    let log = d.input.join("app.log");
    append(&log, "before start: not shown");
    let child = Command::new(BIN)
        .args([
            "follow",
            "--json",
            "--partial-timeout",
            "0.3",
            "--poll-interval",
            "0.1",
        ])
        .arg(d.input.join("*.log"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(400));
    append(&log, &line(0));
    let mut f = fs::OpenOptions::new().append(true).open(&log).unwrap();
    write!(f, "half a line with {OPENAI}").unwrap();
    drop(f);
    std::thread::sleep(Duration::from_millis(1200));
    let pid = child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let records: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 2, "{text}");
    assert!(records[0]["path"].as_str().unwrap().ends_with("app.log"));
    assert!(records[0]["line"]
        .as_str()
        .unwrap()
        .contains("[REDACTED:openai-api-key]"));
    assert_eq!(
        records[1]["line"],
        "half a line with [REDACTED:openai-api-key]"
    );
}

#[test]
fn a_bad_checkpoint_is_a_clear_error() {
    let d = dirs();
    fs::write(&d.state, "{\"version\":1,\"files\":[{\"path\":3}]}").unwrap();
    let out = start(&d, &[]).wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("state.json") && stderr.contains("checkpoint"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"));
}
