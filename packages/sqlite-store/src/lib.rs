//! The sans-IO objects' storage port natively (test support): SQLite through `rusqlite` with the
//! bundled SQLite, and a double that fails the Nth statement, for the all-or-nothing tests.

use rusqlite::types::{ToSqlOutput, Value as SqlValue, ValueRef};
use rusqlite::Connection;
use std::cell::Cell;
use switchboard_core::store::{Arg, Store, StoreError};

pub struct SqliteStore {
    conn: Connection,
}

impl SqliteStore {
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        SqliteStore { conn: Connection::open_in_memory().expect("in-memory sqlite") }
    }

    /// Every table's rows, as text, for before/after comparisons.
    pub fn dump(&self) -> String {
        let mut out = String::new();
        let tables: Vec<String> = {
            let mut st =
                self.conn.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").unwrap();
            st.query_map([], |r| r.get(0)).unwrap().map(|r| r.unwrap()).collect()
        };
        for t in tables {
            out.push_str(&format!(
                "{t}: {}\n",
                self.rows_json(&format!("SELECT * FROM {t} ORDER BY 1, 2"), &[]).unwrap()
            ));
        }
        out
    }
}

/// A binding as rusqlite takes it; an integer the Workers runtime's store would refuse (beyond
/// ±(2^53 - 1): `switchboard_core::store::check_int`) is refused here too, so native tests see what
/// production does.
fn to_sql(a: &Arg) -> Result<ToSqlOutput<'_>, StoreError> {
    Ok(match a {
        Arg::Null => ToSqlOutput::Owned(SqlValue::Null),
        Arg::Int(n) => ToSqlOutput::Owned(SqlValue::Integer(switchboard_core::store::check_int(*n)?)),
        Arg::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
    })
}

fn err(e: rusqlite::Error) -> StoreError {
    StoreError(e.to_string())
}

impl Store for SqliteStore {
    fn run(&self, sql: &str, args: &[Arg]) -> Result<usize, StoreError> {
        if args.is_empty() && sql.trim_end().trim_end_matches(';').contains(';') {
            let before = self.conn.total_changes();
            self.conn.execute_batch(sql).map_err(err)?;
            return Ok((self.conn.total_changes() - before) as usize);
        }
        let params: Vec<ToSqlOutput> = args.iter().map(to_sql).collect::<Result<_, _>>()?;
        let mut st = self.conn.prepare(sql).map_err(err)?;
        st.execute(rusqlite::params_from_iter(params.iter())).map_err(err)
    }

    fn rows_json(&self, sql: &str, args: &[Arg]) -> Result<String, StoreError> {
        let params: Vec<ToSqlOutput> = args.iter().map(to_sql).collect::<Result<_, _>>()?;
        let mut st = self.conn.prepare(sql).map_err(err)?;
        let names: Vec<String> = st.column_names().iter().map(|s| s.to_string()).collect();
        let mut rows = st.query(rusqlite::params_from_iter(params.iter())).map_err(err)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(err)? {
            let mut obj = serde_json::Map::new();
            for (i, name) in names.iter().enumerate() {
                let v = match row.get_ref(i).map_err(err)? {
                    ValueRef::Null => serde_json::Value::Null,
                    ValueRef::Integer(n) => switchboard_core::store::check_int(n)?.into(),
                    ValueRef::Real(f) => serde_json::json!(f),
                    ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned().into(),
                    ValueRef::Blob(_) => return Err(StoreError("blob column".into())),
                };
                obj.insert(name.clone(), v);
            }
            out.push(serde_json::Value::Object(obj));
        }
        Ok(serde_json::Value::Array(out).to_string())
    }

    fn atomic(&self, body: &mut dyn FnMut() -> bool) -> Result<(), StoreError> {
        self.conn.execute_batch("SAVEPOINT command").map_err(err)?;
        if body() {
            self.conn.execute_batch("RELEASE command").map_err(err)
        } else {
            self.conn.execute_batch("ROLLBACK TO command; RELEASE command").map_err(err)
        }
    }
}

/// A store whose `fail_at`-th statement (counting from 1, reads and writes alike) fails.
pub struct FailingStore {
    pub inner: SqliteStore,
    pub count: Cell<usize>,
    pub fail_at: Cell<Option<usize>>,
}

impl FailingStore {
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        FailingStore { inner: SqliteStore::new(), count: Cell::new(0), fail_at: Cell::new(None) }
    }

    /// Fails the `n`-th statement from now (1 = the next one).
    pub fn fail_in(&self, n: usize) {
        self.count.set(0);
        self.fail_at.set(Some(n));
    }

    pub fn healthy(&self) {
        self.fail_at.set(None);
    }

    fn tick(&self) -> Result<(), StoreError> {
        let n = self.count.get() + 1;
        self.count.set(n);
        if self.fail_at.get() == Some(n) {
            return Err(StoreError(format!("injected failure at statement {n}")));
        }
        Ok(())
    }
}

impl Store for FailingStore {
    fn run(&self, sql: &str, args: &[Arg]) -> Result<usize, StoreError> {
        self.tick()?;
        self.inner.run(sql, args)
    }
    fn rows_json(&self, sql: &str, args: &[Arg]) -> Result<String, StoreError> {
        self.tick()?;
        self.inner.rows_json(sql, args)
    }
    fn atomic(&self, body: &mut dyn FnMut() -> bool) -> Result<(), StoreError> {
        self.inner.atomic(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_beyond_2_pow_53_are_refused_not_rounded() {
        let s = SqliteStore::new();
        s.run("CREATE TABLE t (n INTEGER)", &[]).unwrap();
        let max = switchboard_core::limits::MAX_SAFE_INTEGER;
        for ok in [0, -max, max] {
            s.run("INSERT INTO t (n) VALUES (?)", &[ok.into()]).unwrap();
        }
        for bad in [max + 1, -max - 1, i64::MAX, i64::MIN] {
            let e = s.run("INSERT INTO t (n) VALUES (?)", &[bad.into()]).unwrap_err();
            assert!(e.0.contains("2^53"), "{e}");
        }
        assert_eq!(
            s.rows_json("SELECT n FROM t ORDER BY n", &[]).unwrap(),
            format!(r#"[{{"n":-{max}}},{{"n":0}},{{"n":{max}}}]"#)
        );
        // A column computed beyond the range is an error too, not a value the runtime would round.
        assert!(s.rows_json("SELECT 9007199254740992 AS n", &[]).is_err());
    }
}
