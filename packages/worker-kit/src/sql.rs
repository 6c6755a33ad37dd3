//! The Durable Objects' SQLite calls, one crossing of the Wasm/JS boundary each.
//!
//! `worker::SqlStorage::exec` crosses into JavaScript once per binding (build the value, push it
//! onto an array) and once more per row and per field to read an answer (`toArray`, then a generic
//! conversion of each row object). On a message's path that glue cost about as much as SQLite
//! itself. Here the bindings go over as one JSON array and the rows come back as one JSON string,
//! parsed in Rust: one call per statement whatever its size.
//!
//! Values keep their meaning on the way: integers travel as JavaScript numbers (as the crate's
//! `SqlStorageValue::Integer` does), strings exactly, `NULL` as `null`. A blob or a non-finite
//! float has no JSON form and is refused with an error (no table here stores either). An integer
//! beyond ±(2^53 - 1) (`limits::MAX_SAFE_INTEGER`) would not come back exactly from a JavaScript
//! number (and its row could then not be read at all): it is refused with an error, never written
//! (`switchboard_core::store::check_int`, which the native store applies too).

use serde::de::DeserializeOwned;
use switchboard_core::store::{Arg, Store, StoreError};
use wasm_bindgen::prelude::*;
use worker::{SqlStorage, SqlStorageValue};

type Result<T> = worker::Result<T>;

#[wasm_bindgen(
    inline_js = "export function sql_run(sql, q, args) { const c = args === '[]' ? sql.exec(q) : sql.exec(q, ...JSON.parse(args)); return c.rowsWritten; }
export function sql_rows(sql, q, args) { const c = args === '[]' ? sql.exec(q) : sql.exec(q, ...JSON.parse(args)); return JSON.stringify(c.toArray()); }
const ROLLBACK = {};
export function sql_atomic(state, body) { try { state.storage.transactionSync(() => { if (!body()) throw ROLLBACK; }); return true; } catch (e) { if (e === ROLLBACK) return false; throw e; } }"
)]
extern "C" {
    /// Runs one statement; answers the rows it wrote.
    #[wasm_bindgen(catch)]
    fn sql_run(sql: &JsValue, q: &str, args: &str) -> std::result::Result<f64, JsValue>;
    /// Runs one statement; answers its rows as one JSON array of objects.
    #[wasm_bindgen(catch)]
    fn sql_rows(sql: &JsValue, q: &str, args: &str) -> std::result::Result<String, JsValue>;
    /// Runs `body` inside `state.storage.transactionSync`: committed when it answers true, rolled
    /// back when it answers false (answers false then) or a statement throws.
    #[wasm_bindgen(catch)]
    fn sql_atomic(state: &JsValue, body: &mut dyn FnMut() -> bool) -> std::result::Result<bool, JsValue>;
}

/// An object's SQLite database.
pub struct Sql {
    raw: JsValue,
    /// The object's JavaScript `DurableObjectState`, for `transactionSync` (see [`Store`]).
    state: JsValue,
}

impl Sql {
    pub fn new(storage: SqlStorage) -> Self {
        Sql { raw: storage.as_ref().clone(), state: JsValue::UNDEFINED }
    }

    /// The database of the object whose JavaScript state is `state`, with transactions.
    pub fn with_transactions(storage: SqlStorage, state: JsValue) -> Self {
        Sql { raw: storage.as_ref().clone(), state }
    }

    /// Runs a statement (or several, without bindings); answers the rows written.
    pub fn exec(&self, query: &str, bindings: Vec<SqlStorageValue>) -> Result<usize> {
        let args = args_json(&bindings)?;
        let written = sql_run(&self.raw, query, &args).map_err(worker::Error::from)?;
        Ok(written.max(0.0) as usize)
    }

    /// Runs a query; answers its rows, each deserialized from the JSON object of its columns.
    pub fn rows<T: DeserializeOwned>(&self, query: &str, bindings: Vec<SqlStorageValue>) -> Result<Vec<T>> {
        let args = args_json(&bindings)?;
        let text = sql_rows(&self.raw, query, &args).map_err(worker::Error::from)?;
        serde_json::from_str(&text).map_err(|e| worker::Error::RustError(format!("sql rows: {e}")))
    }

    /// The first row's integer column `v` (`None` when there is no row or it is NULL).
    pub fn scalar(&self, query: &str, bindings: Vec<SqlStorageValue>) -> Result<Option<i64>> {
        #[derive(serde::Deserialize)]
        struct One {
            v: Option<i64>,
        }
        Ok(self.rows::<One>(query, bindings)?.into_iter().next().and_then(|r| r.v))
    }
}

/// The bindings as one JSON array.
fn args_json(bindings: &[SqlStorageValue]) -> Result<String> {
    use std::fmt::Write as _;
    let unsupported = |what: &str| worker::Error::RustError(format!("sql binding: {what} has no JSON form"));
    let mut out = String::with_capacity(2 + bindings.len() * 16);
    out.push('[');
    for (i, v) in bindings.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match v {
            SqlStorageValue::Null => out.push_str("null"),
            SqlStorageValue::Boolean(b) => out.push_str(if *b { "true" } else { "false" }),
            SqlStorageValue::Integer(n) => {
                switchboard_core::store::check_int(*n).map_err(|e| worker::Error::RustError(e.0))?;
                let _ = write!(out, "{n}");
            }
            SqlStorageValue::Float(f) if f.is_finite() => {
                let _ = write!(out, "{f}");
            }
            SqlStorageValue::Float(_) => return Err(unsupported("a non-finite float")),
            SqlStorageValue::String(s) => {
                let escaped = serde_json::to_string(s).map_err(|e| worker::Error::RustError(e.to_string()))?;
                out.push_str(&escaped);
            }
            SqlStorageValue::Blob(_) => return Err(unsupported("a blob")),
        }
    }
    out.push(']');
    Ok(out)
}

fn store_err(e: JsValue) -> StoreError {
    StoreError(worker::Error::from(e).to_string())
}

/// The bindings of the sans-IO core as one JSON array.
fn core_args_json(args: &[Arg]) -> std::result::Result<String, StoreError> {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(2 + args.len() * 16);
    out.push('[');
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match a {
            Arg::Null => out.push_str("null"),
            Arg::Int(n) => {
                switchboard_core::store::check_int(*n)?;
                let _ = write!(out, "{n}");
            }
            Arg::Text(s) => {
                let escaped = serde_json::to_string(s).map_err(|e| StoreError(e.to_string()))?;
                out.push_str(&escaped);
            }
        }
    }
    out.push(']');
    Ok(out)
}

/// The storage port of the sans-IO objects (`switchboard_conversation::Store`).
impl Store for Sql {
    fn run(&self, sql: &str, args: &[Arg]) -> std::result::Result<usize, StoreError> {
        let written = sql_run(&self.raw, sql, &core_args_json(args)?).map_err(store_err)?;
        Ok(written.max(0.0) as usize)
    }

    fn rows_json(&self, sql: &str, args: &[Arg]) -> std::result::Result<String, StoreError> {
        sql_rows(&self.raw, sql, &core_args_json(args)?).map_err(store_err)
    }

    fn atomic(&self, body: &mut dyn FnMut() -> bool) -> std::result::Result<(), StoreError> {
        if self.state.is_undefined() {
            return Err(StoreError("this database was opened without transactions".into()));
        }
        let mut run = || body();
        sql_atomic(&self.state, &mut run).map(|_| ()).map_err(store_err)
    }
}
