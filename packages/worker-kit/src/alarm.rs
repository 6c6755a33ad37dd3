//! An object's one alarm, as a slot that remembers what it last set or read, so that asking for
//! the same or a later time costs no storage call. It is only ever moved earlier
//! (`switchboard_core::alarm::should_set`): a busy object cannot push its own cleanup away.

use std::cell::Cell;
use switchboard_core::alarm::should_set;
use worker::{ScheduledTime, Storage};

#[derive(Debug, Default)]
pub struct AlarmSlot {
    /// The alarm time we last set or read; `None` = unknown or none.
    known: Cell<Option<i64>>,
}

fn at(ms: i64) -> ScheduledTime {
    ScheduledTime::new(js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(ms as f64)))
}

impl AlarmSlot {
    pub fn new() -> Self {
        Self::default()
    }

    /// The alarm fired: none is set any more.
    pub fn fired(&self) {
        self.known.set(None);
    }

    /// What we last set or read.
    pub fn known(&self) -> Option<i64> {
        self.known.get()
    }

    /// Makes the alarm fire no later than `wanted` (never later than it is already set for).
    pub async fn ensure(&self, storage: &Storage, wanted: i64) {
        if let Some(current) = self.known.get() {
            if !should_set(Some(current), Some(wanted)) {
                return;
            }
        }
        let read = storage.get_alarm().await.ok().flatten();
        // Another request may have set it while we waited.
        let current = match (self.known.get(), read) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if should_set(current, Some(wanted)) {
            self.known.set(Some(wanted));
            if let Err(e) = storage.set_alarm(at(wanted)).await {
                worker::console_error!("set alarm: {e}");
                self.known.set(None);
            }
        } else {
            self.known.set(current);
        }
    }

    /// Sets the alarm to `at_ms` whatever it was (re-arming at the end of an alarm run).
    pub async fn set(&self, storage: &Storage, at_ms: i64) {
        self.known.set(Some(at_ms));
        if let Err(e) = storage.set_alarm(at(at_ms)).await {
            worker::console_error!("re-arm alarm: {e}");
            self.known.set(None);
        }
    }
}
