//! OpenClaw's SQLite transcript store (`agents/<id>/agent/openclaw-agent.sqlite`, table
//! `transcript_events`, column `event_json`, one JSON event per row).
//!
//! A gateway may be writing to the database while we scrub it. Rows are read and scrubbed
//! outside any write lock; the changed ones are then written in one short transaction that
//! first checks each row still holds what was scrubbed (a row changed meanwhile is scrubbed
//! again from its new value). Every wait for a lock goes through SQLite's busy timeout, so
//! the gateway's own transactions are never broken into.

use std::path::Path;
use std::time::Duration;

use rusqlite::{params, Connection, OpenFlags, OptionalExtension, TransactionBehavior};

use crate::bulk::Outcome;
use crate::error::Error;
use crate::stats::Stats;
use crate::{Finding, Scrubber};

/// The table and column OpenClaw keeps transcript events in.
pub const TABLE: &str = "transcript_events";
/// The column holding each event's JSON.
pub const COLUMN: &str = "event_json";

/// How long to wait for a lock the gateway holds before giving up on the database.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

fn db_err(path: &Path, e: rusqlite::Error) -> Error {
    Error::Database {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

fn open(path: &Path, flags: OpenFlags) -> Result<Connection, Error> {
    let conn = Connection::open_with_flags(path, flags | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(|e| db_err(path, e))?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| db_err(path, e))?;
    Ok(conn)
}

/// True when the database has the transcript table; a database without it is left alone.
fn has_table(conn: &Connection, path: &Path) -> Result<bool, Error> {
    conn.query_row(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1",
        [TABLE],
        |_| Ok(()),
    )
    .optional()
    .map(|found| found.is_some())
    .map_err(|e| db_err(path, e))
}

/// Reads every event as (rowid, bytes), calling `each` on each; text and blob values alike.
fn for_each_event(
    conn: &Connection,
    path: &Path,
    mut each: impl FnMut(i64, &[u8]),
) -> Result<(), Error> {
    let sql = format!("SELECT rowid, {COLUMN} FROM {TABLE} ORDER BY rowid");
    let mut stmt = conn.prepare(&sql).map_err(|e| db_err(path, e))?;
    let mut rows = stmt.query([]).map_err(|e| db_err(path, e))?;
    while let Some(row) = rows.next().map_err(|e| db_err(path, e))? {
        let rowid: i64 = row.get(0).map_err(|e| db_err(path, e))?;
        let value = row.get_ref(1).map_err(|e| db_err(path, e))?;
        if let Ok(bytes) = value.as_bytes() {
            each(rowid, bytes);
        }
    }
    Ok(())
}

/// Scrubs every event in place; only changed rows are written, in one transaction.
pub fn scrub_database(scrubber: &Scrubber, path: &Path) -> Result<Outcome, Error> {
    let mut conn = open(path, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
    let mut outcome = Outcome::default();
    if !has_table(&conn, path)? {
        return Ok(outcome);
    }
    let mut changed: Vec<(i64, Vec<u8>, Vec<u8>)> = Vec::new();
    let mut stats = Stats::default();
    for_each_event(&conn, path, |rowid, event| {
        let (scrubbed, row_stats) = scrub_event(scrubber, event);
        stats.merge(&row_stats);
        if scrubbed != event {
            changed.push((rowid, event.to_vec(), scrubbed));
        }
    })?;
    if !changed.is_empty() {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| db_err(path, e))?;
        {
            let read = format!("SELECT {COLUMN} FROM {TABLE} WHERE rowid = ?1");
            let write = format!("UPDATE {TABLE} SET {COLUMN} = ?1 WHERE rowid = ?2");
            let mut read = tx.prepare(&read).map_err(|e| db_err(path, e))?;
            let mut write = tx.prepare(&write).map_err(|e| db_err(path, e))?;
            for (rowid, before, mut after) in changed {
                let now: Option<Vec<u8>> = read
                    .query_row([rowid], |row| {
                        Ok(row.get_ref(0)?.as_bytes().ok().map(<[u8]>::to_vec))
                    })
                    .optional()
                    .map_err(|e| db_err(path, e))?
                    .flatten();
                match now {
                    None => continue, // Deleted meanwhile.
                    Some(now) if now != before => {
                        // Rewritten meanwhile: scrub what is there now.
                        let (again, row_stats) = scrub_event(scrubber, &now);
                        stats.merge(&row_stats);
                        if again == now {
                            continue;
                        }
                        after = again;
                    }
                    Some(_) => {}
                }
                // Text stays text: masks are ASCII, so valid UTF-8 in is valid UTF-8 out.
                match String::from_utf8(after) {
                    Ok(text) => write.execute(params![text, rowid]),
                    Err(e) => write.execute(params![e.into_bytes(), rowid]),
                }
                .map_err(|e| db_err(path, e))?;
            }
        }
        tx.commit().map_err(|e| db_err(path, e))?;
        outcome.rewritten = true;
    }
    outcome.stats = stats;
    Ok(outcome)
}

fn scrub_event(scrubber: &Scrubber, event: &[u8]) -> (Vec<u8>, Stats) {
    let mut out = Vec::with_capacity(event.len());
    // Reading a slice and writing a Vec cannot fail.
    let stats = scrubber.scrub(event, &mut out).unwrap_or_default();
    (out, stats)
}

/// Reports every secret in the events, with each one's rowid; changes nothing.
pub fn find_in_database(
    scrubber: &Scrubber,
    path: &Path,
    mut each: impl FnMut(i64, Finding),
) -> Result<Stats, Error> {
    let conn = open(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let mut stats = Stats::default();
    if !has_table(&conn, path)? {
        return Ok(stats);
    }
    for_each_event(&conn, path, |rowid, event| {
        if let Ok(row_stats) = scrubber.find_in(event, |f| each(rowid, f)) {
            stats.merge(&row_stats);
        }
    })?;
    Ok(stats)
}

/// Writes a consistent copy of the database at `path` to `dest` (`VACUUM INTO`, which
/// includes what is still in the write-ahead log), replacing any file there.
pub fn copy_database(path: &Path, dest: &Path) -> Result<(), Error> {
    let conn = open(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    match std::fs::remove_file(dest) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(format!("{}: replacing", dest.display()), e)),
    }
    let dest_text = dest.to_str().ok_or_else(|| Error::Database {
        path: dest.to_path_buf(),
        message: "the path is not valid UTF-8".into(),
    })?;
    conn.execute("VACUUM INTO ?1", [dest_text])
        .map_err(|e| db_err(path, e))?;
    Ok(())
}
