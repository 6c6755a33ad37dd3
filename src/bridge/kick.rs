//! The Kick side of a bridge object: where its reader connects (`KICK_PUSHER_URL`) and how a member's message
//! goes out (`POST {KICK_API_URL}/public/v1/chat` with the bot's `KICK_ACCESS_TOKEN`), under
//! `switchboard_bridge::kick_send`'s refusal policy: a refused message is dropped, never retried in a loop.

use super::socket::Target;
use super::{clock, Inner};
use crate::config;
use std::rc::Rc;
use switchboard_bridge::kick_send::{chat_json, chat_text, chat_url, Outcome};
use switchboard_bridge::nick::NickFormat;
use switchboard_bridge::source::Outbound;
use worker::{Env, Fetch, Headers, Method, Request, RequestInit};

/// The reason recorded when outbound relay is on but there is no token.
pub const NO_TOKEN: &str = "outbound: KICK_ACCESS_TOKEN is not configured; members' messages are not sent to Kick";

pub fn target(env: &Env) -> Target {
    Target { url: config::kick_pusher_url(env), headers: vec![] }
}

pub fn access_token(env: &Env) -> Option<String> {
    config::kick_access_token(env)
}

/// Sends one member's message to Kick. True when the outbound note (part of the reported reason) changed.
pub async fn post(inner: &Rc<Inner>, message_id: &str, sender_id: &str, text: &str) -> bool {
    let Some(token) = access_token(&inner.env) else {
        return set_note(inner, Some(NO_TOKEN.to_string()));
    };
    let (now, _) = clock();
    if let Err(refusal) = inner.kick_sender.borrow().check(now) {
        worker::console_warn!("kick outbound {message_id}: held back ({})", refusal.reason.as_str());
        return false;
    }
    let out = Outbound { local_id: message_id, sender_id, source: None, sender_name: sender_id, text };
    let Ok(posted) = chat_text(&NickFormat::default(), &out) else { return false };
    let body = chat_json(&posted);
    let url = chat_url(&config::kick_api_url(&inner.env));
    // Remembered before it goes: the room may show it back before Kick's API answers.
    inner.kick_echo.borrow_mut().sent(now, &posted);
    let answer = send(&url, &token, body).await;
    let (now, random) = clock();
    let outcome = match answer {
        Ok((status, text, retry_after)) => {
            inner.kick_sender.borrow_mut().on_answer(now, random, status, &text, retry_after)
        }
        Err(e) => {
            worker::console_warn!("kick outbound {message_id}: {e}");
            inner.kick_sender.borrow_mut().on_network_error(now, random)
        }
    };
    if !matches!(outcome, Outcome::Sent { .. }) {
        inner.kick_echo.borrow_mut().unsent(&posted);
    }
    match outcome {
        Outcome::Sent { .. } => {
            if let Some(c) = inner.config.borrow_mut().as_mut() {
                c.relayed += 1;
            }
            inner.save_counters();
            set_note(inner, None)
        }
        Outcome::Rejected { status, detail } => {
            worker::console_warn!("kick refused message {message_id}: {status} {detail:?}");
            false
        }
        Outcome::Refused(r) => {
            let detail = r.detail.map(|d| format!(": {d}")).unwrap_or_default();
            let status = r.status.map(|s| format!(" ({s})")).unwrap_or_default();
            set_note(
                inner,
                Some(format!(
                    "outbound refused, {}{status}{detail}; held back until {}",
                    r.reason.as_str(),
                    r.retry_at_ms
                )),
            )
        }
    }
}

fn set_note(inner: &Inner, note: Option<String>) -> bool {
    let changed = *inner.outbound_note.borrow() != note;
    inner.outbound_note.replace(note);
    changed
}

/// Posts `body`; answers the status, the body and `Retry-After` in seconds.
async fn send(url: &str, token: &str, body: String) -> Result<(u16, String, Option<u64>), String> {
    let headers = Headers::new();
    headers.set("content-type", "application/json").map_err(|e| e.to_string())?;
    headers.set("accept", "application/json").map_err(|e| e.to_string())?;
    headers.set("authorization", &format!("Bearer {token}")).map_err(|e| e.to_string())?;
    let mut init = RequestInit::new();
    init.with_method(Method::Post).with_headers(headers).with_body(Some(body.into()));
    let req = Request::new_with_init(url, &init).map_err(|e| e.to_string())?;
    let mut resp = Fetch::Request(req).send().await.map_err(|e| e.to_string())?;
    let retry_after = resp.headers().get("retry-after").ok().flatten().and_then(|v| v.trim().parse::<u64>().ok());
    let text = resp.text().await.unwrap_or_default();
    Ok((resp.status_code(), text, retry_after))
}
