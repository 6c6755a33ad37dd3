//! What the core takes as arguments, got from the runtime: the clock, randomness, and sleeping.

use std::time::Duration;

pub fn now_ms() -> i64 {
    js_sys::Date::now() as i64
}

pub fn now_secs() -> u64 {
    (now_ms() / 1000).max(0) as u64
}

/// 64 random bits from the platform's CSPRNG (jitter).
pub fn random_u64() -> u64 {
    let mut buf = [0u8; 8];
    if getrandom::getrandom(&mut buf).is_err() {
        return (js_sys::Math::random() * u64::MAX as f64) as u64;
    }
    u64::from_le_bytes(buf)
}

pub async fn sleep_ms(ms: u64) {
    worker::Delay::from(Duration::from_millis(ms)).await;
}
