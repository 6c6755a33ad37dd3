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
use switchboard_notify_core::projects;
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

/// Why a POST gave up: the message, and the body of the answer that ended it when there was one.
struct GaveUp {
    message: String,
    refusal: Option<String>,
}

/// POSTs with retries. `Ok` carries a 2xx answer's body; `Err` says why it gave up.
async fn post(what: &str, url: &str, json: &str, access_token: Option<&str>) -> Result<String, GaveUp> {
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
            Next::Accept => return result.map(|ans| ans.body).map_err(|message| GaveUp { message, refusal: None }),
            Next::Retry { delay_ms } => {
                worker::console_warn!("expo {what}: attempt {attempt} failed ({detail}); retrying in {delay_ms} ms");
                platform::sleep_ms(delay_ms).await;
                attempt += 1;
            }
            Next::GiveUp => {
                return Err(GaveUp {
                    message: format!("expo {what}: gave up after attempt {attempt}: {detail}"),
                    refusal: result.ok().map(|ans| ans.body),
                })
            }
        }
    }
}

/// Sends every message; answers one ticket per message, in order.
pub async fn send_all(settings: &Settings, messages: &[PushMessage]) -> Vec<Ticket> {
    let mut tickets = Vec::with_capacity(messages.len());
    for chunk in core::chunks(messages) {
        let (got, refusal) = send_request(settings, chunk).await;
        // Tokens of several Expo projects in one request: Expo refuses it whole and names each
        // project's tokens. Sent again as one request per project (`switchboard_notify_core::projects`).
        let groups = refusal.as_deref().and_then(|body| projects::project_groups(body, chunk));
        match (got, groups) {
            (Ok(t), _) => tickets.extend(t),
            (Err(_), Some(groups)) => {
                worker::console_warn!(
                    "expo send: tokens of {} projects in one request; sent per project",
                    groups.len()
                );
                let mut out: Vec<Option<Ticket>> = vec![None; chunk.len()];
                for group in groups {
                    let part: Vec<PushMessage> = group.iter().map(|&i| chunk[i].clone()).collect();
                    let got = send_request(settings, &part).await.0.unwrap_or_else(|e| error_tickets(&e, part.len()));
                    for (i, t) in group.into_iter().zip(got) {
                        out[i] = Some(t);
                    }
                }
                let missing = || Ticket::Error { error: None, message: "no ticket for this message".to_string() };
                tickets.extend(out.into_iter().map(|t| t.unwrap_or_else(missing)));
            }
            (Err(e), None) => tickets.extend(error_tickets(&e, chunk.len())),
        }
    }
    tickets
}

/// One request: its tickets, or why it failed (logged); and the body of Expo's refusal, if any.
async fn send_request(settings: &Settings, chunk: &[PushMessage]) -> (Result<Vec<Ticket>, String>, Option<String>) {
    let json = core::encode_request(chunk);
    match post("send", &settings.expo_push_url, &json, settings.expo_access_token.as_deref()).await {
        Ok(body) => (core::parse_tickets(&body, chunk.len()), None),
        Err(GaveUp { message, refusal }) => {
            worker::console_error!("{message}");
            (Err(message), refusal)
        }
    }
}

fn error_tickets(message: &str, n: usize) -> Vec<Ticket> {
    (0..n).map(|_| Ticket::Error { error: None, message: message.to_string() }).collect()
}

/// Asks Expo for the receipts of `ids` (at most 1000 per request).
pub async fn fetch_receipts(settings: &Settings, ids: &[String]) -> Result<BTreeMap<String, Receipt>, String> {
    let mut all = BTreeMap::new();
    for chunk in ids.chunks(core::MAX_RECEIPT_IDS_PER_REQUEST) {
        let json = core::encode_receipts_request(chunk);
        let body = post("getReceipts", &settings.expo_receipts_url, &json, settings.expo_access_token.as_deref())
            .await
            .map_err(|e| e.message)?;
        all.extend(core::parse_receipts(&body)?);
    }
    Ok(all)
}
