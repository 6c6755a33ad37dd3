//! Typed calls to Durable Objects: a command goes as JSON over `stub.fetch`; a 2xx answer's body
//! is decoded as the command's answer type, any other answer is the object's
//! `{"error":{"code","message"}}` turned back into an [`ApiError`].

use crate::http::internal;
use serde::de::DeserializeOwned;
use serde::Serialize;
use switchboard_core::ApiError;
use worker::{Env, Method, Request, RequestInit, Response, Stub};

/// The stub of the object named `name` in the namespace bound as `binding`.
pub fn stub(env: &Env, binding: &str, name: &str) -> Result<Stub, ApiError> {
    let ns = env.durable_object(binding).map_err(|e| internal("durable object binding", e))?;
    ns.get_by_name(name).map_err(|e| internal("durable object stub", e))
}

/// Posts an already-encoded command; answers the raw response.
pub async fn post(stub: &Stub, body: String) -> Result<Response, ApiError> {
    let mut init = RequestInit::new();
    init.with_method(Method::Post).with_body(Some(body.into()));
    let req = Request::new_with_init("https://object/rpc", &init).map_err(|e| internal("build rpc", e))?;
    stub.fetch_with_request(req).await.map_err(|e| internal("call durable object", e))
}

/// Sends `command` and decodes the answer as `A`.
pub async fn call<C: Serialize, A: DeserializeOwned>(stub: &Stub, command: &C) -> Result<A, ApiError> {
    let body = serde_json::to_string(command).map_err(|e| internal("encode rpc", e))?;
    let mut resp = post(stub, body).await?;
    let status = resp.status_code();
    let text = resp.text().await.map_err(|e| internal("read rpc answer", e))?;
    if !(200..300).contains(&status) {
        return Err(error_of(status, &text));
    }
    let text = if text.is_empty() { "null" } else { text.as_str() };
    serde_json::from_str(text).map_err(|e| internal("decode rpc answer", e))
}

/// The error an object answered with `status` and body `text`.
pub fn error_of(status: u16, text: &str) -> ApiError {
    #[derive(serde::Deserialize)]
    struct Envelope {
        error: ApiError,
    }
    serde_json::from_str::<Envelope>(text)
        .map(|e| e.error)
        .unwrap_or_else(|_| internal("durable object", format!("{status} {text}")))
}
