//! The worker's configuration, read from vars and secrets (`wrangler.toml`, `.dev.vars`,
//! `wrangler dev --var`, `wrangler secret`).

use switchboard_auth::AuthConfig;
use switchboard_core::ApiError;
use switchboard_notify_core::config::Settings;
use worker::Env;

fn var(env: &Env, name: &str) -> Option<String> {
    env.var(name).ok().map(|v| v.to_string()).or_else(|| env.secret(name).ok().map(|v| v.to_string()))
}

/// `/dev/...` routes exist only when `LOCAL_MODE` is exactly "true".
pub fn local_mode(env: &Env) -> bool {
    var(env, "LOCAL_MODE").as_deref() == Some("true")
}

pub fn settings(env: &Env) -> Settings {
    let (settings, warnings) = Settings::from_lookup(|name| var(env, name));
    for w in warnings {
        worker::console_warn!("config: {w}");
    }
    settings
}

/// Same `JWT_SECRET` / `JWT_AUDIENCE` as the chat worker: the chat worker forwards requests as they came.
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
