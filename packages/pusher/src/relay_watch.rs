//! Conversations whose watch by the relay is unsure: a `Watch` call to the conversation failed, so
//! it may not send its events to the Pusher channels (or may keep sending them after the channels
//! emptied). Kept in the object's SQLite, because the object's memory of what it watches is rebuilt
//! after hibernation by assuming every occupied conversation channel is watched: an unsure one must
//! not be assumed so. Each is tried again from the alarm with backoff ([`RELAY_WATCH_BACKOFF`]) until
//! a call succeeds; at most [`MAX_UNSURE_WATCHES`] are kept (past that a failure is only logged).

use crate::limits::{MAX_UNSURE_WATCHES, RELAY_WATCH_BACKOFF};
use std::collections::BTreeMap;
use switchboard_core::backoff::Backoff;
use switchboard_core::store::{Store, StoreError, StoreExt};

/// The table (created on first load; nothing else uses it).
pub const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS relay_watch_unsure (
  conversation_id TEXT PRIMARY KEY, failures INTEGER NOT NULL, due_ms INTEGER NOT NULL);";

#[derive(Debug, Clone, Copy, PartialEq)]
struct Unsure {
    failures: u32,
    due_ms: i64,
}

/// The unsure watches, as stored.
#[derive(Debug, Default)]
pub struct UnsureWatches {
    rows: BTreeMap<String, Unsure>,
}

impl UnsureWatches {
    /// What the store holds (the table created when missing).
    pub fn load(store: &dyn Store) -> Result<Self, StoreError> {
        store.run(SCHEMA, &[])?;
        #[derive(serde::Deserialize)]
        struct Row {
            conversation_id: String,
            failures: i64,
            due_ms: i64,
        }
        let rows: Vec<Row> = store.rows(
            "SELECT conversation_id, failures, due_ms FROM relay_watch_unsure ORDER BY due_ms LIMIT ?",
            &[(MAX_UNSURE_WATCHES as i64).into()],
        )?;
        let rows = rows
            .into_iter()
            .map(|r| {
                let unsure = Unsure { failures: u32::try_from(r.failures).unwrap_or(u32::MAX), due_ms: r.due_ms };
                (r.conversation_id, unsure)
            })
            .collect();
        Ok(UnsureWatches { rows })
    }

    /// Whether the watch of conversation `id` is unsure (a call must be made, whatever memory says).
    pub fn contains(&self, id: &str) -> bool {
        self.rows.contains_key(id)
    }

    /// A watch call for `id` failed at `now_ms`: unsure until a call succeeds, tried again at the
    /// answered time. `None` when too many are unsure already (not recorded).
    pub fn failed(&mut self, store: &dyn Store, id: &str, now_ms: i64) -> Result<Option<i64>, StoreError> {
        if !self.rows.contains_key(id) && self.rows.len() >= MAX_UNSURE_WATCHES {
            return Ok(None);
        }
        let failures = self.rows.get(id).map_or(0, |u| u.failures).saturating_add(1);
        let wait = Backoff::new(RELAY_WATCH_BACKOFF).ceiling_ms(failures - 1) as i64;
        let due_ms = now_ms.saturating_add(wait);
        store.run(
            "INSERT OR REPLACE INTO relay_watch_unsure (conversation_id, failures, due_ms) VALUES (?, ?, ?)",
            &[id.into(), i64::from(failures).into(), due_ms.into()],
        )?;
        self.rows.insert(id.to_string(), Unsure { failures, due_ms });
        Ok(Some(due_ms))
    }

    /// A watch call for `id` succeeded: sure again.
    pub fn settled(&mut self, store: &dyn Store, id: &str) -> Result<(), StoreError> {
        if self.rows.remove(id).is_some() {
            store.run("DELETE FROM relay_watch_unsure WHERE conversation_id = ?", &[id.into()])?;
        }
        Ok(())
    }

    /// The conversations to try again at `now_ms`.
    pub fn due(&self, now_ms: i64) -> Vec<String> {
        self.rows.iter().filter(|(_, u)| u.due_ms <= now_ms).map(|(id, _)| id.clone()).collect()
    }

    /// When the next try is due (for the alarm).
    pub fn next_due(&self) -> Option<i64> {
        self.rows.values().map(|u| u.due_ms).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_sqlite_store::SqliteStore;

    #[test]
    fn a_failed_watch_stays_unsure_with_backoff_until_a_call_succeeds_and_outlives_memory() {
        let store = SqliteStore::new();
        let mut u = UnsureWatches::load(&store).unwrap();
        assert!(!u.contains("c1") && u.next_due().is_none());
        assert_eq!(u.failed(&store, "c1", 10_000).unwrap(), Some(11_000));
        assert_eq!(u.failed(&store, "c1", 11_000).unwrap(), Some(13_000), "twice as long");
        assert_eq!(u.failed(&store, "c2", 11_500).unwrap(), Some(12_500));
        assert_eq!((u.due(12_499), u.due(12_500)), (vec![], vec!["c2".to_string()]));
        assert_eq!(u.next_due(), Some(12_500));
        // A new instance (hibernation, eviction) reads the same from storage.
        let again = UnsureWatches::load(&store).unwrap();
        assert!(again.contains("c1") && again.contains("c2"));
        assert_eq!(again.due(13_000), vec!["c1".to_string(), "c2".to_string()]);
        u.settled(&store, "c1").unwrap();
        u.settled(&store, "nope").unwrap();
        let again = UnsureWatches::load(&store).unwrap();
        assert!(!again.contains("c1") && again.contains("c2"));
        // The wait is capped at a minute.
        for i in 0..20 {
            u.failed(&store, "c3", i).unwrap();
        }
        assert_eq!(u.failed(&store, "c3", 0).unwrap(), Some(60_000));
    }

    #[test]
    fn at_most_max_unsure_watches_are_kept() {
        let store = SqliteStore::new();
        let mut u = UnsureWatches::load(&store).unwrap();
        for i in 0..MAX_UNSURE_WATCHES {
            assert!(u.failed(&store, &format!("c{i}"), 0).unwrap().is_some());
        }
        assert_eq!(u.failed(&store, "one-more", 0).unwrap(), None);
        assert!(!u.contains("one-more"));
        assert!(u.failed(&store, "c0", 0).unwrap().is_some(), "one already kept still counts its failures");
    }
}
