//! End-to-end test harness for Switchboard.
//!
//! [`Server`] serves the built workers on 127.0.0.1 from one Miniflare (workerd) process started
//! by `tests/e2e/serve.mjs` (fresh persistence directory, a free port, a known `JWT_SECRET`),
//! [`Api`] speaks its HTTP API and [`Ws`] its WebSocket protocol. Most tests share one server per
//! test binary ([`shared`]); tests that need special variables or a restart start their own.
//!
//! Process hygiene: serve.mjs exits when its stdin closes, i.e. when its `Server` is stopped or
//! dropped, and when the test binary exits in any way (the kernel closes the pipe), taking its
//! workerd with it. There are no process groups to reap.
//!
//! Each server keeps its state and its log in `target/e2e/run-<pid>-<n>/`; logs stay there after
//! the run (state is removed by the next run, logs after six hours).

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, Once, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;

pub use serde_json;

/// The fake Expo push service of the notifications tests.
pub mod expo;
/// The objects' databases under a server's state directory, from outside the runtime.
pub mod storage;

/// A TCP forwarder whose connections can vanish without a trace (no close frame, FIN or RST).
pub mod blackhole;
/// Node tests of the TypeScript client library (`tests/e2e/js/client.test.mjs`, `frames.test.mjs`).
pub mod node;

/// The `JWT_SECRET` used when the repository has no `.dev.vars` (see [`jwt_secret`]).
pub const FALLBACK_JWT_SECRET: &str = "switchboard-e2e-secret-6f1d0c9a4b7e2f3a8d5c1b0e9f7a6d4c";

/// The `JWT_SECRET` every test server's workers run with, so tests can mint their own tokens: the
/// one in the repository's `.dev.vars` (written by scripts/setup; the same as `scripts/dev` uses),
/// or without `.dev.vars`, [`FALLBACK_JWT_SECRET`].
pub fn jwt_secret() -> &'static str {
    static SECRET: OnceLock<String> = OnceLock::new();
    SECRET.get_or_init(|| {
        let text = fs::read_to_string(repo_root().join(".dev.vars")).unwrap_or_default();
        text.lines()
            .filter_map(|l| l.trim().strip_prefix("JWT_SECRET="))
            .map(|v| v.trim().trim_matches('"').to_string())
            .find(|v| !v.is_empty())
            .unwrap_or_else(|| FALLBACK_JWT_SECRET.to_string())
    })
}
/// The audience the worker expects (`JWT_AUDIENCE` in wrangler.toml).
pub const AUDIENCE: &str = "switchboard";
/// A syntactically valid ULID no test ever creates.
pub const UNKNOWN_ULID: &str = "01ARZ3NDEKTSV4RRFFQ69G5FAV";

const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Default wait for a frame that must arrive.
pub const FRAME_TIMEOUT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------------------------
// Paths and small utilities
// ---------------------------------------------------------------------------------------------

/// The repository root (two levels above this crate).
pub fn repo_root() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    p.canonicalize().unwrap_or(p)
}

/// Where servers keep their state and logs: `<repo>/target/e2e/`.
fn runs_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|p| if p.is_absolute() { p } else { repo_root().join(p) })
        .unwrap_or_else(|| repo_root().join("target"));
    target.join("e2e")
}

/// A process-unique, run-unique id with a prefix: `alice-1a2b3c4d5e-7`.
pub fn uid(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64;
    let mix = nanos ^ ((std::process::id() as u64) << 40) ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    format!("{prefix}-{:010x}-{n}", mix & 0xff_ffff_ffff)
}

pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

pub fn now_secs() -> i64 {
    now_ms() / 1000
}

/// True for a 26-character upper-case Crockford base32 ULID.
pub fn is_ulid(s: &str) -> bool {
    s.len() == 26
        && s.chars().all(|c| c.is_ascii_digit() || (c.is_ascii_uppercase() && !"ILOU".contains(c)))
        && s.as_bytes()[0] <= b'7'
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fff][Z|+00:00]` to milliseconds since the epoch.
pub fn parse_iso8601_ms(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 19
        || b[4] != b'-'
        || b[7] != b'-'
        || (b[10] != b'T' && b[10] != b't')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> { s.get(r)?.parse::<i64>().ok() };
    let (y, mo, d, h, mi, se) = (num(0..4)?, num(5..7)?, num(8..10)?, num(11..13)?, num(14..16)?, num(17..19)?);
    let mut rest = &s[19..];
    let mut millis = 0i64;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits: String = frac.chars().take_while(|c| c.is_ascii_digit()).collect();
        if digits.is_empty() {
            return None;
        }
        let padded = format!("{:0<3}", &digits[..digits.len().min(3)]);
        millis = padded.parse().ok()?;
        rest = &frac[digits.len()..];
    }
    let offset_min = match rest {
        "Z" | "z" => 0,
        r if r.len() == 6 && (r.starts_with('+') || r.starts_with('-')) && &r[3..4] == ":" => {
            let sign = if r.starts_with('-') { -1 } else { 1 };
            sign * (r[1..3].parse::<i64>().ok()? * 60 + r[4..6].parse::<i64>().ok()?)
        }
        _ => return None,
    };
    // days from civil (Howard Hinnant)
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = if y2 >= 0 { y2 } else { y2 - 399 } / 400;
    let yoe = y2 - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    Some(((days * 86400 + h * 3600 + mi * 60 + se) - offset_min * 60) * 1000 + millis)
}

/// A one-block text content array.
pub fn text(s: &str) -> Value {
    json!([{ "type": "text", "text": s }])
}

/// Polls `f` every `every` until it returns `Some`, or panics with `what` after `deadline`.
pub async fn poll_until<T, F, Fut>(what: &str, deadline: Duration, every: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if start.elapsed() > deadline {
            panic!("timed out after {deadline:?} waiting for: {what}");
        }
        tokio::time::sleep(every).await;
    }
}

/// The message of a caught panic (a server that failed to start, kept for every later caller).
pub fn panic_message(e: Box<dyn std::any::Any + Send>) -> String {
    e.downcast_ref::<String>()
        .cloned()
        .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown panic".into())
}

// The harness, one concern per file; everything is re-exported here, so tests keep using
// `switchboard_e2e::{Server, Api, Ws, ...}`.
mod api;
mod jwt;
mod server;
mod ws;
pub use api::*;
pub use jwt::*;
pub use server::*;
pub use ws::*;
