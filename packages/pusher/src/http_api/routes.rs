//! The API's routes, from method and path.

use super::error::bad;
use super::query::percent_decode;
use super::HttpError;
use crate::auth::App;
use crate::channel::{self, ChannelKind};

/// What a request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `POST /apps/{id}/events`
    Events,
    /// `POST /apps/{id}/batch_events`
    BatchEvents,
    /// `GET /apps/{id}/channels`
    Channels,
    /// `GET /apps/{id}/channels/{channel}`
    Channel(String),
    /// `GET /apps/{id}/channels/{channel}/users` (presence channels only)
    ChannelUsers(String),
}

/// Routes a request path for `app`. Another app's id is 404.
pub fn route(app: &App, method: &str, path: &str) -> Result<Route, HttpError> {
    let not_found = || HttpError::NotFound(format!("no route for {path}"));
    let rest = path.strip_prefix("/apps/").ok_or_else(not_found)?;
    let (id, rest) = rest.split_once('/').ok_or_else(not_found)?;
    if id != app.id {
        return Err(HttpError::NotFound(format!("unknown app id {id}")));
    }
    let parts: Vec<&str> = rest.split('/').collect();
    let (route, want) = match parts.as_slice() {
        ["events"] => (Route::Events, "POST"),
        ["batch_events"] => (Route::BatchEvents, "POST"),
        ["channels"] => (Route::Channels, "GET"),
        ["channels", name] => (Route::Channel(valid_channel(name)?), "GET"),
        ["channels", name, "users"] => {
            let name = valid_channel(name)?;
            if channel::kind(&name) != ChannelKind::Presence {
                return Err(bad("users are only available for presence channels"));
            }
            (Route::ChannelUsers(name), "GET")
        }
        _ => return Err(not_found()),
    };
    if !method.eq_ignore_ascii_case(want) {
        return Err(HttpError::MethodNotAllowed(format!("{path} takes {want}")));
    }
    Ok(route)
}

fn valid_channel(name: &str) -> Result<String, HttpError> {
    let name = percent_decode(name, false)?;
    channel::validate(&name).map_err(|e| bad(format!("channel `{name}` {e}")))?;
    Ok(name)
}
