//! The Kosmi side of a bridge object: the relay built from the stored link and token, where it connects
//! (`KOSMI_WS_URL`, with the `Origin`, `User-Agent` and subprotocol Kosmi's web client sends) and the anonymous
//! login over HTTP (`KOSMI_HTTP_URL`).

use super::socket::Target;
use super::store::Config;
use crate::config;
use switchboard_bridge::kosmi::{parse_login, KosmiConfig, KosmiRelay, RoomId, LOGIN_BODY, ORIGIN};
use switchboard_bridge::nick::NickFormat;
use worker::{Env, Fetch, Headers, Method, Request, RequestInit};

/// The User-Agent the relay presents (over HTTP, in the upgrade, and base64 in `connection_init`).
pub const USER_AGENT: &str =
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36 Switchboard";

/// The relay of the stored link, with the stored token, if any.
pub fn relay(config: &Config) -> Result<KosmiRelay, String> {
    let room = RoomId::parse(&config.link.room).map_err(|e| e.to_string())?;
    let nick_format = match &config.link.nick_format {
        Some(f) => NickFormat::parse(f).map_err(|e| format!("nickFormat: {e}"))?,
        None => NickFormat::default(),
    };
    let relay_config = KosmiConfig { room, nick_format, user_agent: USER_AGENT.to_string() };
    Ok(KosmiRelay::new(relay_config, config.token.clone()))
}

pub fn target(env: &Env) -> Target {
    Target {
        url: config::kosmi_ws_url(env),
        headers: vec![
            ("origin", ORIGIN.to_string()),
            ("user-agent", USER_AGENT.to_string()),
            ("sec-websocket-protocol", "graphql-transport-ws".to_string()),
        ],
    }
}

/// `mutation { anonLogin { token } }`: a token, or why not.
pub async fn login(env: &Env) -> Result<String, String> {
    let headers = Headers::new();
    for (k, v) in [("content-type", "application/json"), ("origin", ORIGIN), ("user-agent", USER_AGENT)] {
        headers.set(k, v).map_err(|e| e.to_string())?;
    }
    let mut init = RequestInit::new();
    init.with_method(Method::Post).with_headers(headers).with_body(Some(LOGIN_BODY.into()));
    let req = Request::new_with_init(&config::kosmi_http_url(env), &init).map_err(|e| e.to_string())?;
    let mut resp = Fetch::Request(req).send().await.map_err(|e| e.to_string())?;
    let status = resp.status_code();
    let text = resp.text().await.map_err(|e| e.to_string())?;
    if !(200..300).contains(&status) {
        return Err(format!("kosmi login answered {status}"));
    }
    parse_login(&text).map_err(|e| e.to_string())
}
