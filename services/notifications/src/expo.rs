//! The Expo client: sends messages in requests of at most 100 (gzipped above 1 KiB), retries 429,
//! 5xx and network errors with bounded, jittered exponential backoff (never a 400), and reads one
//! ticket per message. Also fetches receipts. Decisions come from `switchboard_notify_core::expo`.

use crate::platform;
use flate2::write::GzEncoder;
use flate2::Compression;
use futures::future::{select, Either};
use std::collections::BTreeMap;
use std::io::Write;
use switchboard_notify_core::config::Settings;
use switchboard_notify_core::expo::{self as core, Attempt, Backoff, Next, PushMessage, Receipt, Ticket};
use worker::{Fetch, Headers, Method, Request, RequestInit};

/// One attempt waits at most this long for Expo's answer.
const ATTEMPT_TIMEOUT_MS: u64 = 10_000;

/// An HTTP answer: status, body, `Retry-After` in ms.
struct Answer {
    status: u16,
    body: String,
    retry_after_ms: Option<u64>,
}

fn gzip(data: &[u8]) -> Result<Vec<u8>, String> {
    let mut enc = GzEncoder::new(Vec::with_capacity(data.len() / 4 + 64), Compression::default());
    enc.write_all(data).map_err(|e| e.to_string())?;
    enc.finish().map_err(|e| e.to_string())
}

async fn post_once(url: &str, body: &[u8], gzipped: bool, access_token: Option<&str>) -> Result<Answer, String> {
    let headers = Headers::new();
    let set = |k: &str, v: &str| headers.set(k, v).map_err(|e| e.to_string());
    set("accept", "application/json")?;
    set("accept-encoding", "gzip, deflate")?;
    set("content-type", "application/json")?;
    if gzipped {
        set("content-encoding", "gzip")?;
    }
    if let Some(t) = access_token {
        set("authorization", &format!("Bearer {t}"))?;
    }
    let mut init = RequestInit::new();
    let bytes = js_sys::Uint8Array::from(body);
    init.with_method(Method::Post).with_headers(headers).with_body(Some(bytes.into()));
    let req = Request::new_with_init(url, &init).map_err(|e| format!("build request: {e}"))?;
    let call = async move {
        let mut resp = Fetch::Request(req).send().await.map_err(|e| format!("fetch: {e}"))?;
        let status = resp.status_code();
        let retry_after_ms = resp.headers().get("retry-after").ok().flatten().and_then(|v| core::parse_retry_after(&v));
        let body = resp.text().await.map_err(|e| format!("read answer: {e}"))?;
        Ok::<Answer, String>(Answer { status, body, retry_after_ms })
    };
    let timeout = platform::sleep_ms(ATTEMPT_TIMEOUT_MS);
    futures::pin_mut!(call);
    futures::pin_mut!(timeout);
    match select(call, timeout).await {
        Either::Left((result, _)) => result,
        Either::Right(((), _)) => Err(format!("no answer within {ATTEMPT_TIMEOUT_MS} ms")),
    }
}

/// POSTs with retries. `Ok` carries a 2xx answer's body; `Err` says why it gave up.
async fn post(what: &str, url: &str, json: &str, access_token: Option<&str>) -> Result<String, String> {
    let (body, gzipped) = if core::should_gzip(json.len()) {
        match gzip(json.as_bytes()) {
            Ok(z) => (z, true),
            Err(e) => {
                worker::console_warn!("expo: gzip failed ({e}); sending uncompressed");
                (json.as_bytes().to_vec(), false)
            }
        }
    } else {
        (json.as_bytes().to_vec(), false)
    };
    let backoff = Backoff::default();
    let mut attempt = 1u32;
    loop {
        let result = post_once(url, &body, gzipped, access_token).await;
        let (a, retry_after, detail) = match &result {
            Ok(ans) => (
                Attempt::Status(ans.status),
                ans.retry_after_ms,
                format!("HTTP {} {}", ans.status, ans.body.chars().take(200).collect::<String>()),
            ),
            Err(e) => (Attempt::NetworkError, None, e.clone()),
        };
        match backoff.next(attempt, a, platform::random_u64(), retry_after) {
            Next::Accept => return result.map(|ans| ans.body),
            Next::Retry { delay_ms } => {
                worker::console_warn!("expo {what}: attempt {attempt} failed ({detail}); retrying in {delay_ms} ms");
                platform::sleep_ms(delay_ms).await;
                attempt += 1;
            }
            Next::GiveUp => return Err(format!("expo {what}: gave up after attempt {attempt}: {detail}")),
        }
    }
}

/// Sends every message; answers one ticket per message, in order.
pub async fn send_all(settings: &Settings, messages: &[PushMessage]) -> Vec<Ticket> {
    let mut tickets = Vec::with_capacity(messages.len());
    for chunk in core::chunks(messages) {
        let json = core::encode_request(chunk);
        let got = match post("send", &settings.expo_push_url, &json, settings.expo_access_token.as_deref()).await {
            Ok(body) => core::parse_tickets(&body, chunk.len()),
            Err(e) => Err(e),
        };
        match got {
            Ok(t) => tickets.extend(t),
            Err(e) => {
                worker::console_error!("{e}");
                tickets.extend(chunk.iter().map(|_| Ticket::Error { error: None, message: e.clone() }));
            }
        }
    }
    tickets
}

/// Asks Expo for the receipts of `ids` (at most 1000 per request).
pub async fn fetch_receipts(settings: &Settings, ids: &[String]) -> Result<BTreeMap<String, Receipt>, String> {
    let mut all = BTreeMap::new();
    for chunk in ids.chunks(core::MAX_RECEIPT_IDS_PER_REQUEST) {
        let json = core::encode_receipts_request(chunk);
        let body =
            post("getReceipts", &settings.expo_receipts_url, &json, settings.expo_access_token.as_deref()).await?;
        all.extend(core::parse_receipts(&body)?);
    }
    Ok(all)
}
