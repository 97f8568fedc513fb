//! `clawscrub scrub` and `clawscrub check`: bulk work over files on disk, with a progress bar
//! on a terminal and a summary at the end.

use std::io::{self, IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use clawscrub::bulk::{self, BulkOptions, Dest, Progress};
use clawscrub::report::{self, Located};
use clawscrub::walk::{self, Found, Target};
use clawscrub::{Error, Scrubber, Stats};

use crate::{report as fail, CheckArgs, Exit, ReportFormat, ScrubArgs, StatsFormat, TreeArgs};

pub fn scrub(scrubber: &Scrubber, args: &ScrubArgs) -> Result<(), Exit> {
    let targets = find(&args.tree)?;
    if let Some(out) = &args.out {
        let mut rels: Vec<_> = targets.iter().map(|t| &t.rel).collect();
        rels.sort();
        if let Some(w) = rels.windows(2).find(|w| w[0] == w[1]) {
            eprintln!(
                "clawscrub: two inputs would both be written to {}; scrub them one PATH at a time",
                out.join(w[0]).display()
            );
            return Err(Exit(2));
        }
    }
    let options = BulkOptions {
        dest: match &args.out {
            Some(dir) => Dest::Mirror(dir.clone()),
            None => Dest::InPlace,
        },
        keep_mtime: args.keep_mtime,
        backup_suffix: args.backup_suffix.clone(),
        ..BulkOptions::default()
    };
    let progress = Progress::default();
    let started = Instant::now();
    let results = in_pool(args.tree.threads, || {
        with_progress(&targets, &progress, || {
            bulk::scrub_all(scrubber, &targets, &options, &progress)
        })
    })?;
    let seconds = started.elapsed().as_secs_f64();
    let (mut total, mut rewritten, mut failed, mut late) = (Stats::default(), 0, 0, 0);
    for (target, result) in targets.iter().zip(&results) {
        match result {
            Ok(outcome) => {
                total.merge(&outcome.stats);
                rewritten += u64::from(outcome.rewritten);
                late += outcome.late_bytes;
            }
            Err(e @ Error::AfterReplace { .. }) => {
                failed += 1;
                eprintln!("clawscrub: {e}");
            }
            Err(e) => {
                failed += 1;
                eprintln!("clawscrub: {e} (left unchanged: {})", target.path.display());
            }
        }
    }
    match args.stats.unwrap_or(StatsFormat::Text) {
        StatsFormat::Json => {
            let mut summary = serde_json::to_value(&total).unwrap_or_else(|_| json!({}));
            summary["files"] = json!(targets.len());
            summary["rewritten"] = json!(rewritten);
            summary["failed"] = json!(failed);
            summary["late_bytes"] = json!(late);
            summary["seconds"] = json!(seconds);
            eprintln!("{summary}");
        }
        StatsFormat::Text => {
            eprintln!(
                "clawscrub: {} files ({rewritten} rewritten, {failed} failed), {:.1} MB, \
                 {} redactions in {seconds:.2} s ({:.0} MB/s)",
                targets.len(),
                total.bytes_in as f64 / 1e6,
                total.redactions,
                total.bytes_in as f64 / 1e6 / seconds.max(1e-9),
            );
            for (rule, n) in &total.by_rule {
                eprintln!("  {n:>10}  {rule}");
            }
        }
    }
    if failed > 0 {
        Err(Exit(1))
    } else {
        Ok(())
    }
}

pub fn check(scrubber: &Scrubber, args: &CheckArgs) -> Result<(), Exit> {
    if args.summary && args.format == ReportFormat::Sarif {
        eprintln!("clawscrub: --summary is text or json, not sarif");
        return Err(Exit(2));
    }
    let targets = find(&args.tree)?;
    let progress = Progress::default();
    let results = in_pool(args.tree.threads, || {
        with_progress(&targets, &progress, || {
            bulk::check_all(scrubber, &targets, &progress)
        })
    })?;
    let mut errors = 0;
    let mut found: Vec<Located> = Vec::new();
    let mut summaries = Vec::new();
    for result in results {
        match result {
            Ok(here) => {
                if args.summary && !here.is_empty() {
                    summaries.push(report::summarize(&here[0].path, &here));
                }
                found.extend(here);
            }
            Err(e) => {
                errors += 1;
                let _ = fail(&e);
            }
        }
    }
    let mut out = io::stdout().lock();
    let written = match (args.summary, args.format) {
        (true, ReportFormat::Json) => summaries.iter().try_for_each(|s| {
            serde_json::to_writer(&mut out, s)?;
            out.write_all(b"\n")
        }),
        (true, _) => summaries
            .iter()
            .try_for_each(|s| writeln!(out, "{}", report::summary_line(s))),
        (false, ReportFormat::Text) => report::write_text(&mut out, &found),
        (false, ReportFormat::Json) => report::write_json(&mut out, &found),
        (false, ReportFormat::Sarif) => {
            let log = report::sarif(&found, &scrubber.rules());
            serde_json::to_writer_pretty(&mut out, &log)
                .map_err(io::Error::from)
                .and_then(|()| out.write_all(b"\n"))
        }
    };
    match written.and_then(|()| out.flush()) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
            eprintln!("clawscrub: writing the report: {e}");
            return Err(Exit(2));
        }
        _ => {}
    }
    if !io::stdout().is_terminal() || args.format != ReportFormat::Text || args.summary {
        eprintln!(
            "clawscrub: {} findings in {} of {} files",
            found.len(),
            found
                .iter()
                .map(|f| &f.path)
                .collect::<std::collections::BTreeSet<_>>()
                .len(),
            targets.len()
        );
    }
    match (errors, found.is_empty()) {
        (0, true) => Ok(()),
        (0, false) => Err(Exit(1)),
        _ => Err(Exit(2)),
    }
}

/// The files named by PATHs (or OpenClaw's layout), with what was skipped reported.
fn find(tree: &TreeArgs) -> Result<Vec<Target>, Exit> {
    let found: Found = if tree.paths.is_empty() {
        let Some(state) = walk::state_dir() else {
            eprintln!("clawscrub: no PATH given, and neither OPENCLAW_STATE_DIR nor HOME is set");
            return Err(Exit(2));
        };
        if !state.is_dir() {
            eprintln!(
                "clawscrub: no PATH given, and OpenClaw's state dir {} does not exist",
                state.display()
            );
            return Err(Exit(2));
        }
        walk::openclaw_layout(&state).map_err(|e| fail(&e))?
    } else {
        let globs = walk::globs(&tree.glob).map_err(|e| fail(&e))?;
        walk::walk(&tree.paths, &globs).map_err(|e| fail(&e))?
    };
    for s in &found.skipped {
        eprintln!("clawscrub: skipping {}: {}", s.path.display(), s.reason);
    }
    Ok(found.targets)
}

/// Runs `work` on a rayon pool of `threads` threads (default: one per core).
fn in_pool<T: Send>(threads: Option<usize>, work: impl FnOnce() -> T + Send) -> Result<T, Exit> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.unwrap_or(0))
        .build()
        .map_err(|e| {
            eprintln!("clawscrub: cannot start worker threads: {e}");
            Exit(2)
        })?;
    Ok(pool.install(work))
}

/// Runs `work` with a progress bar on stderr when it is a terminal: files, bytes, rate, ETA
/// and redactions so far.
fn with_progress<T>(targets: &[Target], progress: &Progress, work: impl FnOnce() -> T) -> T {
    if !io::stderr().is_terminal() {
        return work();
    }
    let total: u64 = targets.iter().map(|t| t.len).sum();
    let bar = ProgressBar::new(total);
    if let Ok(style) = ProgressStyle::with_template(
        "{bar:30} {bytes}/{total_bytes} {bytes_per_sec} ETA {eta} {msg}",
    ) {
        bar.set_style(style);
    }
    let done = AtomicBool::new(false);
    let result = std::thread::scope(|s| {
        s.spawn(|| {
            while !done.load(Ordering::Relaxed) {
                bar.set_position(progress.bytes.load(Ordering::Relaxed));
                bar.set_message(format!(
                    "{}/{} files, {} redactions",
                    progress.files.load(Ordering::Relaxed),
                    targets.len(),
                    progress.redactions.load(Ordering::Relaxed)
                ));
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        let result = work();
        done.store(true, Ordering::Relaxed);
        result
    });
    bar.finish_and_clear();
    result
}
