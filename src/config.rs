//! The worker's configuration, read from vars and secrets (`wrangler.toml`, `.dev.vars`, `wrangler secret`).

use switchboard_auth::AuthConfig;
use switchboard_core::limits::{DEFAULT_ACTIVITY_FLUSH_MS, DEFAULT_IDEM_TTL_MS, DEFAULT_LIST_RECONCILE_MS};
use switchboard_core::{cors, ApiError};
use worker::Env;

fn var(env: &Env, name: &str) -> Option<String> {
    env.var(name).ok().map(|v| v.to_string()).or_else(|| env.secret(name).ok().map(|v| v.to_string()))
}

/// Local mode: `LOCAL_MODE` is exactly "true". It opens sandboxes that have no allowed-users list
/// yet, and (with a request from this machine: [`local_request`]) the `/dev/...` routes.
pub fn local_mode(env: &Env) -> bool {
    var(env, "LOCAL_MODE").as_deref() == Some("true")
}

/// The local-only routes (`POST /dev/token`, `POST /dev/pusher/reconnect`) answer only in local mode
/// and only a request from this machine (`switchboard_core::local`); otherwise they do not exist.
pub fn local_request(env: &Env, req: &worker::Request) -> bool {
    let host = req.url().ok().and_then(|u| u.host_str().map(str::to_string)).unwrap_or_default();
    let ip = req.headers().get("cf-connecting-ip").ok().flatten();
    local_mode(env) && switchboard_core::local::is_loopback_request(&host, ip.as_deref())
}

/// `OPERATOR_SECRET` (a secret): the bearer credential of the `/operator/v1/...` routes; unset, they answer 404.
pub fn operator_secret(env: &Env) -> Option<String> {
    var(env, "OPERATOR_SECRET")
}

pub fn auth(env: &Env) -> Result<AuthConfig, ApiError> {
    let secret = var(env, "JWT_SECRET").ok_or_else(|| {
        worker::console_error!("JWT_SECRET is not set");
        ApiError::internal("the service is not configured (JWT_SECRET)")
    })?;
    let audience = var(env, "JWT_AUDIENCE").unwrap_or_else(|| "switchboard".to_string());
    AuthConfig::new(&secret, &audience).map_err(|e| {
        worker::console_error!("{e}");
        e
    })
}

/// Which browser origins may use the API (`ALLOWED_ORIGINS`: comma-separated origins, or `*`; unset
/// or blank: `*` in local mode, only the service's own origin in production). A bad value is logged
/// and then only the service's own origin is allowed.
pub fn cors_policy(env: &Env) -> cors::Policy {
    cors::Policy::from_config(var(env, "ALLOWED_ORIGINS").as_deref(), local_mode(env)).unwrap_or_else(|e| {
        worker::console_error!("{e}; only the service's own origin is allowed");
        cors::Policy::own_only()
    })
}

fn millis(env: &Env, name: &str, default: i64) -> i64 {
    var(env, name).and_then(|v| v.parse::<i64>().ok()).filter(|v| *v > 0).unwrap_or(default)
}

/// How long a send-idempotency record lives.
pub fn idem_ttl_ms(env: &Env) -> i64 {
    millis(env, "IDEM_TTL_MS", DEFAULT_IDEM_TTL_MS)
}

/// How long new activity may wait before members' conversation lists are updated.
pub fn activity_flush_ms(env: &Env) -> i64 {
    millis(env, "ACTIVITY_FLUSH_MS", DEFAULT_ACTIVITY_FLUSH_MS)
}

/// How long after a list flush the background reconcile of members' lists runs.
pub fn list_reconcile_ms(env: &Env) -> i64 {
    millis(env, "LIST_RECONCILE_MS", DEFAULT_LIST_RECONCILE_MS)
}

/// The rate limits and caps (`switchboard_core::limit_vars`): each var unset keeps its default; a
/// var that does not parse is logged and keeps its default. Read once per object instance.
pub fn limits(env: &Env) -> switchboard_core::limits::Limits {
    let (limits, refused) = switchboard_core::limits::Limits::from_vars(|name| var(env, name));
    for line in refused {
        worker::console_error!("{line}");
    }
    limits
}

/// A publish body that sends nothing for this long is ended.
pub fn live_idle_ms(env: &Env) -> i64 {
    millis(env, "LIVE_IDLE_MS", switchboard_core::live::DEFAULT_IDLE_TIMEOUT_MS)
}

/// The longest a publish may run (`LIVE_MAX_PUBLISH_MS`, default 10 min).
pub fn live_max_publish_ms(env: &Env) -> i64 {
    millis(env, "LIVE_MAX_PUBLISH_MS", switchboard_core::live::DEFAULT_MAX_PUBLISH_MS)
}

/// Who may publish on live channels (`LIVE_PUBLISHERS`: `bot`, the default, or `members`).
pub fn live_publishers(env: &Env) -> switchboard_live::admission::Publishers {
    switchboard_live::admission::Publishers::from_config(var(env, "LIVE_PUBLISHERS").as_deref())
}

/// The one Pusher app (`PUSHER_APP_ID`, `PUSHER_APP_KEY`, secret `PUSHER_APP_SECRET`). Without a
/// secret the Pusher endpoint is off: its routes answer 500 saying so.
pub fn pusher_app(env: &Env) -> Result<switchboard_pusher::App, ApiError> {
    let id = var(env, "PUSHER_APP_ID").filter(|v| !v.is_empty()).unwrap_or_else(|| DEFAULT_PUSHER_APP_ID.to_string());
    let key =
        var(env, "PUSHER_APP_KEY").filter(|v| !v.is_empty()).unwrap_or_else(|| DEFAULT_PUSHER_APP_KEY.to_string());
    let secret = var(env, "PUSHER_APP_SECRET").filter(|v| !v.is_empty()).ok_or_else(|| {
        worker::console_error!("PUSHER_APP_SECRET is not set");
        ApiError::internal("the Pusher endpoint is not configured (PUSHER_APP_SECRET)")
    })?;
    Ok(switchboard_pusher::App::new(id, key, secret))
}

pub const DEFAULT_PUSHER_APP_ID: &str = "switchboard";
pub const DEFAULT_PUSHER_APP_KEY: &str = "switchboard-key";

/// Where Pusher webhooks go (`PUSHER_WEBHOOK_URL`); none when unset or empty.
pub fn pusher_webhook_url(env: &Env) -> Option<String> {
    var(env, "PUSHER_WEBHOOK_URL").filter(|v| !v.is_empty())
}

/// Where the Kick bridge reads chat: Kick's Pusher socket (`KICK_PUSHER_URL`; tests point it at a local server).
pub fn kick_pusher_url(env: &Env) -> String {
    var(env, "KICK_PUSHER_URL").filter(|v| !v.is_empty()).unwrap_or_else(switchboard_bridge::kick_client::ws_url)
}

/// Kick's HTTP API (`KICK_API_URL`), where the Kick bridge sends members' messages.
pub fn kick_api_url(env: &Env) -> String {
    var(env, "KICK_API_URL").filter(|v| !v.is_empty()).unwrap_or_else(|| "https://api.kick.com".to_string())
}

/// The bot's OAuth token for Kick's chat API (secret `KICK_ACCESS_TOKEN`); without it nothing is sent to Kick.
pub fn kick_access_token(env: &Env) -> Option<String> {
    var(env, "KICK_ACCESS_TOKEN").filter(|v| !v.is_empty())
}

/// Kosmi's GraphQL HTTP endpoint (`KOSMI_HTTP_URL`), for the anonymous login.
pub fn kosmi_http_url(env: &Env) -> String {
    var(env, "KOSMI_HTTP_URL")
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| switchboard_bridge::kosmi::HTTP_URL.to_string())
}

/// Kosmi's `graphql-transport-ws` socket (`KOSMI_WS_URL`).
pub fn kosmi_ws_url(env: &Env) -> String {
    var(env, "KOSMI_WS_URL").filter(|v| !v.is_empty()).unwrap_or_else(|| switchboard_bridge::kosmi::WS_URL.to_string())
}
