//! Building responses and reading requests: every error becomes `{"error":{"code","message"}}`.

use serde::Serialize;
use switchboard_core::limits::MAX_BODY_BYTES;
use switchboard_core::{ApiError, ErrorCode};
use worker::{Request, Response};

pub type Answer = Result<Response, ApiError>;

/// Logs an infrastructure failure and turns it into a 500 that reveals nothing internal.
pub fn internal(context: &str, e: impl std::fmt::Display) -> ApiError {
    worker::console_error!("{context}: {e}");
    ApiError::internal("internal error; nothing was changed")
}

pub fn json<T: Serialize>(status: u16, body: &T) -> Answer {
    let text = serde_json::to_string(body).map_err(|e| internal("encode response", e))?;
    json_text(status, text)
}

pub fn json_text(status: u16, text: String) -> Answer {
    let resp = Response::ok(text).map_err(|e| internal("build response", e))?.with_status(status);
    let mut resp = resp;
    resp.headers_mut().set("content-type", "application/json").map_err(|e| internal("set header", e))?;
    Ok(resp)
}

pub fn no_content() -> Answer {
    Ok(Response::empty().map_err(|e| internal("build response", e))?.with_status(204))
}

/// The HTTP answer for an error (with `Retry-After`, whole seconds rounded up, when rate limited).
pub fn error_response(e: &ApiError) -> worker::Result<Response> {
    let mut r = Response::ok(e.to_http_body())?.with_status(e.status());
    r.headers_mut().set("content-type", "application/json")?;
    if let Some(secs) = e.retry_after_secs() {
        r.headers_mut().set("retry-after", &secs.to_string())?;
    }
    Ok(r)
}

/// Reads a JSON route's body: an explicit content-type other than JSON is refused (415,
/// `switchboard_core::requests::json_content_type`) before the body is read; then as `body_bytes`.
pub async fn json_body_bytes(req: &mut Request) -> Result<Vec<u8>, ApiError> {
    let content_type = req.headers().get("content-type").ok().flatten();
    switchboard_core::requests::json_content_type(content_type.as_deref())?;
    body_bytes(req).await
}

/// Reads the body, refusing more than `MAX_BODY_BYTES` (413): a declared `content-length` over it
/// before anything is read, and otherwise as soon as the bytes read pass it, while the body
/// streams (never buffering more than the cap plus one chunk).
pub async fn body_bytes(req: &mut Request) -> Result<Vec<u8>, ApiError> {
    body_bytes_within(req, MAX_BODY_BYTES).await
}

/// [`body_bytes`] with another bound (`max` bytes): the body is read as a stream and refused (413)
/// as soon as it passes `max`, so a body without a `content-length` is never buffered whole.
pub async fn body_bytes_within(req: &mut Request, max: usize) -> Result<Vec<u8>, ApiError> {
    use futures_util::StreamExt;
    let too_large = || ApiError::new(ErrorCode::PayloadTooLarge, format!("request body is over {} KiB", max / 1024));
    if let Ok(Some(len)) = req.headers().get("content-length") {
        if len.parse::<usize>().map(|n| n > max).unwrap_or(false) {
            return Err(too_large());
        }
    }
    // No body at all reads as empty.
    let Ok(mut stream) = req.stream() else { return Ok(Vec::new()) };
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ApiError::invalid_json(format!("cannot read body: {e}")))?;
        if out.len() + chunk.len() > max {
            return Err(too_large());
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// One query parameter, percent-decoded.
pub fn query(req: &Request, name: &str) -> Result<Option<String>, ApiError> {
    let url = req.url().map_err(|e| internal("parse url", e))?;
    Ok(url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned()))
}

pub fn is_websocket_upgrade(req: &Request) -> bool {
    req.headers().get("upgrade").ok().flatten().map(|v| v.eq_ignore_ascii_case("websocket")).unwrap_or(false)
}
