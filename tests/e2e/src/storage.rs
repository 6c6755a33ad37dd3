//! The Durable Objects' SQLite databases under a server's persistence directory, read (and, for
//! tests that inject drift, written) from outside the runtime: test-only, no route of the workers
//! is involved. Miniflare keeps each object's database as one `.sqlite` file under `state/do/`,
//! named by a hash of its id (beside each class's `metadata.sqlite`, Miniflare's own, left out), so an
//! object is found by what its tables hold.

use rusqlite::{Connection, OpenFlags, OptionalExtension};
use std::path::{Path, PathBuf};

/// Every object database under `persist_dir`.
pub fn object_databases(persist_dir: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "sqlite") && !p.ends_with("metadata.sqlite") {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(&persist_dir.join("do"), &mut out);
    out.sort();
    out
}

fn open(path: &Path, write: bool) -> rusqlite::Result<Connection> {
    let flags = if write { OpenFlags::SQLITE_OPEN_READ_WRITE } else { OpenFlags::SQLITE_OPEN_READ_ONLY };
    let c = Connection::open_with_flags(path, flags | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
    c.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(c)
}

/// The databases whose `query` (one integer column, no parameters but `?1`) answers a non-zero
/// number for `arg`; a database without the query's tables is skipped.
pub fn databases_where(persist_dir: &Path, query: &str, arg: &str) -> Vec<PathBuf> {
    object_databases(persist_dir)
        .into_iter()
        .filter(|p| {
            open(p, false)
                .and_then(|c| c.query_row(query, [arg], |r| r.get::<_, i64>(0)).optional())
                .is_ok_and(|n| n.unwrap_or(0) != 0)
        })
        .collect()
}

/// One integer read from the database at `path` (`None`: no row, or the read failed).
pub fn read_int(path: &Path, query: &str) -> Option<i64> {
    open(path, false).ok()?.query_row(query, [], |r| r.get::<_, Option<i64>>(0)).ok().flatten()
}

/// Runs `statement` with `arg` on the database at `path` (the runtime must be stopped); answers the
/// rows changed.
pub fn write(path: &Path, statement: &str, arg: &str) -> rusqlite::Result<usize> {
    open(path, true)?.execute(statement, [arg])
}

/// The object databases that hold at least one table (an object that was only read holds none).
pub fn databases_with_tables(persist_dir: &Path) -> Vec<PathBuf> {
    object_databases(persist_dir)
        .into_iter()
        .filter(|p| read_int(p, "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'").unwrap_or(0) > 0)
        .collect()
}
