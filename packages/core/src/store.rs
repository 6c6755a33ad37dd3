//! The storage port of the sans-IO objects: a synchronous SQL database, as a Durable Object's
//! SQLite is.
//!
//! The Durable Objects implement it over `ctx.storage.sql` and `transactionSync`
//! (`switchboard-worker-kit`'s `sql`); the native tests implement it over `rusqlite` with the
//! bundled SQLite (`switchboard-sqlite-store`). Both run
//! the same schema and the same statements. Rows come back as one JSON array of objects keyed by
//! column name, which is what the Durable Object's glue produces at one boundary crossing per
//! statement; the core deserializes them into typed rows.

use crate::ApiError;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// One binding of a statement. Only what the tables hold: integers, text and `NULL`.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    Null,
    Int(i64),
    Text(String),
}

impl From<i64> for Arg {
    fn from(v: i64) -> Self {
        Arg::Int(v)
    }
}
impl From<bool> for Arg {
    fn from(v: bool) -> Self {
        Arg::Int(v as i64)
    }
}
impl From<&str> for Arg {
    fn from(v: &str) -> Self {
        Arg::Text(v.to_string())
    }
}
impl From<&String> for Arg {
    fn from(v: &String) -> Self {
        Arg::Text(v.clone())
    }
}
impl From<String> for Arg {
    fn from(v: String) -> Self {
        Arg::Text(v)
    }
}
impl<T: Into<Arg>> From<Option<T>> for Arg {
    fn from(v: Option<T>) -> Self {
        v.map(Into::into).unwrap_or(Arg::Null)
    }
}

/// A failure of the database itself (not of the caller's input).
#[derive(Debug, Clone, PartialEq)]
pub struct StoreError(pub String);

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// An integer binding or column the stores carry exactly: within ±(2^53 - 1)
/// (`limits::MAX_SAFE_INTEGER`), which a JavaScript number holds; beyond it, an error (never a
/// rounded value written, nor a row that can no longer be read).
pub fn check_int(n: i64) -> Result<i64, StoreError> {
    if n.unsigned_abs() > crate::limits::MAX_SAFE_INTEGER as u64 {
        return Err(StoreError(format!("integer {n} is beyond ±(2^53 - 1) and would not round-trip exactly")));
    }
    Ok(n)
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::internal(format!("storage: {e}"))
    }
}

/// A synchronous SQL database.
pub trait Store {
    /// Runs one statement (or, with no bindings, several); answers the rows it wrote.
    fn run(&self, sql: &str, args: &[Arg]) -> Result<usize, StoreError>;
    /// Runs a query; answers its rows as one JSON array of objects keyed by column name.
    fn rows_json(&self, sql: &str, args: &[Arg]) -> Result<String, StoreError>;
    /// Runs `body` in one transaction: its writes commit together when it answers `true` and are
    /// all rolled back when it answers `false` or a statement fails.
    fn atomic(&self, body: &mut dyn FnMut() -> bool) -> Result<(), StoreError>;
}

/// What a state machine's command answers: the HTTP status and JSON body the client should see (`None`: 204).
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub body: Option<Value>,
}

impl Reply {
    pub fn json(status: u16, body: Value) -> Reply {
        Reply { status, body: Some(body) }
    }
    pub fn no_content() -> Reply {
        Reply { status: 204, body: None }
    }
}

/// Typed reads over any [`Store`].
pub trait StoreExt: Store {
    fn rows<T: DeserializeOwned>(&self, sql: &str, args: &[Arg]) -> Result<Vec<T>, StoreError> {
        let text = self.rows_json(sql, args)?;
        serde_json::from_str(&text).map_err(|e| StoreError(format!("rows of `{}`: {e}", first_words(sql))))
    }

    fn first<T: DeserializeOwned>(&self, sql: &str, args: &[Arg]) -> Result<Option<T>, StoreError> {
        Ok(self.rows(sql, args)?.into_iter().next())
    }

    /// The first row's integer column `v` (`None` when there is no row or it is NULL).
    fn scalar(&self, sql: &str, args: &[Arg]) -> Result<Option<i64>, StoreError> {
        #[derive(serde::Deserialize)]
        struct One {
            v: Option<i64>,
        }
        Ok(self.first::<One>(sql, args)?.and_then(|r| r.v))
    }

    /// Whether table `name` exists (a read of `sqlite_master`: it creates nothing).
    fn has_table(&self, name: &str) -> Result<bool, StoreError> {
        let n =
            self.scalar("SELECT COUNT(*) AS v FROM sqlite_master WHERE type = 'table' AND name = ?", &[name.into()])?;
        Ok(n.unwrap_or(0) > 0)
    }
}

impl<S: Store + ?Sized> StoreExt for S {}

/// Runs `body` atomically: its writes commit when it answers `Ok`, and none of them remain when it
/// answers `Err` or the database fails.
pub fn atomically<S: Store + ?Sized, T>(store: &S, body: impl FnOnce() -> Result<T, ApiError>) -> Result<T, ApiError> {
    let mut body = Some(body);
    let mut out: Option<Result<T, ApiError>> = None;
    let tx = store.atomic(&mut || match body.take() {
        Some(f) => {
            let r = f();
            let commit = r.is_ok();
            out = Some(r);
            commit
        }
        None => false,
    });
    match (tx, out) {
        (Ok(()), Some(r)) => r,
        (Err(e), Some(Err(inner))) => {
            // The body failed first; its error is the one that explains what happened.
            let _ = e;
            Err(inner)
        }
        (Err(e), _) => Err(e.into()),
        (Ok(()), None) => Err(ApiError::internal("transaction body did not run")),
    }
}

fn first_words(sql: &str) -> String {
    sql.split_whitespace().take(4).collect::<Vec<_>>().join(" ")
}
