//! CORS and browser origins (`ALLOWED_ORIGINS`, docs/api.md "CORS and browser origins"), end to end.
//!
//! One server for this file with `ALLOWED_ORIGINS=https://app.example` (and `LOCAL_MODE` as the harness
//! sets it: a configured list replaces local mode's `*`). Preflights and simple requests from an
//! allowed, a disallowed and the service's own origin; error answers carry the headers too; a socket
//! upgrade from a browser origin that is not allowed is refused on every socket route. One test uses
//! the shared server (no `ALLOWED_ORIGINS`, local mode) to check that local mode allows every origin.

use reqwest::header::HeaderMap;
use serde_json::{json, Value};
use std::sync::OnceLock;
use std::time::Duration;
use switchboard_e2e::*;

const ALLOWED: &str = "https://app.example";
const DISALLOWED: &str = "https://evil.example";

fn server() -> &'static Server {
    static S: OnceLock<Server> = OnceLock::new();
    S.get_or_init(|| {
        Server::start_with(&StartOptions::with_vars(&[
            ("ALLOWED_ORIGINS", ALLOWED),
            ("PUSHER_APP_SECRET", "cors-e2e-secret"),
        ]))
    })
}

fn api() -> Api {
    Api::new(server())
}

struct Answer {
    status: u16,
    headers: HeaderMap,
    body: Value,
    text: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
    }

    /// Every `Access-Control-*` header of the answer.
    fn cors_headers(&self) -> Vec<String> {
        self.headers.keys().map(|k| k.as_str().to_string()).filter(|k| k.starts_with("access-control-")).collect()
    }

    #[track_caller]
    fn assert_allowed_for(&self, origin: &str, what: &str) {
        assert_eq!(self.header("access-control-allow-origin").as_deref(), Some(origin), "{what}: {}", self.text);
        assert_varies(self, what);
    }

    #[track_caller]
    fn assert_no_cors(&self, what: &str) {
        assert_eq!(self.cors_headers(), Vec::<String>::new(), "{what}: no CORS headers expected");
    }
}

#[track_caller]
fn assert_varies(a: &Answer, what: &str) {
    let vary = a.headers.get_all("vary").iter().filter_map(|v| v.to_str().ok()).collect::<Vec<_>>().join(",");
    assert!(vary.split(',').any(|v| v.trim().eq_ignore_ascii_case("origin")), "{what}: Vary {vary:?} lacks Origin");
}

async fn request(api: &Api, method: &str, path: &str, headers: &[(&str, &str)], body: Option<&Value>) -> Answer {
    let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut req = api.http.request(m, format!("{}{}", api.base, path));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    if let Some(b) = body {
        req = req.header("content-type", "application/json").body(b.to_string());
    }
    let resp = req.send().await.unwrap_or_else(|e| panic!("{method} {path}: request failed: {e}"));
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Answer { status, headers, body, text }
}

async fn preflight(api: &Api, path: &str, origin: &str, method: &str) -> Answer {
    let headers = [
        ("origin", origin),
        ("access-control-request-method", method),
        ("access-control-request-headers", "authorization,content-type"),
    ];
    request(api, "OPTIONS", path, &headers, None).await
}

/// A raw WebSocket upgrade of `path` with these extra headers: (status, head, body). A 101 is
/// dropped at once.
async fn upgrade(api: &Api, path: &str, headers: &[(&str, &str)]) -> (u16, String, String) {
    use tokio::io::AsyncWriteExt;
    let host = api.base.trim_start_matches("http://").to_string();
    let mut req = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    let io = async {
        let mut s = tokio::net::TcpStream::connect(&host).await.expect("connect");
        s.write_all(req.as_bytes()).await.expect("write upgrade request");
        read_http_response(&mut s).await
    };
    let (status, head, body) = tokio::time::timeout(Duration::from_secs(20), io).await.expect("upgrade timed out");
    (status, head, String::from_utf8_lossy(&body).into_owned())
}

/// The API routes a preflight is checked on: humans', bots', notifications' (forwarded), Pusher's,
/// identity's.
fn api_paths(conv: &str) -> Vec<(String, &'static str)> {
    vec![
        ("/v1/conversations".into(), "POST"),
        (format!("/v1/conversations/{conv}"), "PATCH"),
        (format!("/v1/conversations/{conv}/messages"), "GET"),
        ("/v1/messages".into(), "POST"),
        (format!("/v1/messages/{}", "01ARZ3NDEKTSV4RRFFQ69G5FAV"), "DELETE"),
        (format!("/v1/messages/{}/reactions", "01ARZ3NDEKTSV4RRFFQ69G5FAV"), "POST"),
        ("/bot/v1/sandboxes/sb1/profile".into(), "PUT"),
        ("/v1/push-tokens".into(), "POST"),
        ("/pusher/auth".into(), "POST"),
        ("/connect-ticket".into(), "POST"),
        ("/dev/token".into(), "POST"),
        ("/health".into(), "GET"),
    ]
}

#[tokio::test]
async fn preflight_from_an_allowed_origin_answers_204_with_the_cors_headers() {
    let api = api();
    let conv = "01ARZ3NDEKTSV4RRFFQ69G5FAV";
    for (path, method) in api_paths(conv) {
        let what = format!("OPTIONS {path} ({method})");
        let a = preflight(&api, &path, ALLOWED, method).await;
        assert_eq!(a.status, 204, "{what}: {}", a.text);
        a.assert_allowed_for(ALLOWED, &what);
        let methods = a.header("access-control-allow-methods").unwrap_or_default();
        for m in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
            assert!(methods.contains(m), "{what}: Allow-Methods {methods:?} lacks {m}");
        }
        let headers = a.header("access-control-allow-headers").unwrap_or_default().to_ascii_lowercase();
        for h in ["authorization", "content-type"] {
            assert!(headers.contains(h), "{what}: Allow-Headers {headers:?} lacks {h}");
        }
        let max_age = a.header("access-control-max-age").and_then(|v| v.parse::<u64>().ok());
        assert!(max_age.is_some_and(|s| s > 0), "{what}: Max-Age {max_age:?}");
    }
}

#[tokio::test]
async fn preflight_from_a_disallowed_origin_gets_no_cors_headers() {
    let api = api();
    for (path, method) in api_paths("01ARZ3NDEKTSV4RRFFQ69G5FAV") {
        let what = format!("OPTIONS {path} from {DISALLOWED}");
        let a = preflight(&api, &path, DISALLOWED, method).await;
        a.assert_no_cors(&what);
        assert_eq!(
            (a.status, a.body["error"]["code"].as_str()),
            (403, Some("origin_not_allowed")),
            "{what}: {}",
            a.text
        );
    }
    // the look-alikes are other origins
    for origin in ["http://app.example", "https://app.example:8443", "https://sub.app.example", "null"] {
        let a = preflight(&api, "/v1/conversations", origin, "POST").await;
        a.assert_no_cors(origin);
        assert_eq!(a.status, 403, "{origin}: {}", a.text);
    }
}

#[tokio::test]
async fn simple_requests_carry_the_origin_only_when_allowed() {
    let api = api();
    let alice = api.user("cors-alice").await;
    let bearer = format!("Bearer {}", alice.token);

    let a = request(&api, "GET", "/v1/conversations", &[("authorization", &bearer), ("origin", ALLOWED)], None).await;
    assert_eq!(a.status, 200, "{}", a.text);
    a.assert_allowed_for(ALLOWED, "GET /v1/conversations from the allowed origin");
    assert!(a.body["conversations"].is_array(), "{}", a.text);

    // a POST with a body, whose answer comes from the conversation's object
    let body = json!({ "sandboxId": uid("sb"), "title": "cors" });
    let a = request(&api, "POST", "/v1/conversations", &[("authorization", &bearer), ("origin", ALLOWED)], Some(&body))
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
    a.assert_allowed_for(ALLOWED, "POST /v1/conversations from the allowed origin");
    let conv = a.body["conversationId"].as_str().expect("conversationId").to_string();
    let a = request(
        &api,
        "GET",
        &format!("/v1/conversations/{conv}"),
        &[("authorization", &bearer), ("origin", ALLOWED)],
        None,
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text);
    a.assert_allowed_for(ALLOWED, "GET /v1/conversations/:id (the object's answer)");

    // a disallowed origin: the request runs (the bearer token is the credential), but the answer
    // carries no CORS headers, so a browser keeps it from the page
    let a =
        request(&api, "GET", "/v1/conversations", &[("authorization", &bearer), ("origin", DISALLOWED)], None).await;
    assert_eq!(a.status, 200, "{}", a.text);
    a.assert_no_cors("GET /v1/conversations from a disallowed origin");

    // no Origin (not a browser): no CORS headers, but Vary: Origin
    let a = request(&api, "GET", "/v1/conversations", &[("authorization", &bearer)], None).await;
    assert_eq!(a.status, 200, "{}", a.text);
    a.assert_no_cors("GET /v1/conversations without Origin");
    assert_varies(&a, "GET /v1/conversations without Origin");
}

#[tokio::test]
async fn the_services_own_origin_is_always_allowed() {
    let api = api();
    let own = server().base_url();
    let a = preflight(&api, "/v1/messages", &own, "POST").await;
    assert_eq!(a.status, 204, "{}", a.text);
    a.assert_allowed_for(&own, "preflight from the own origin");
    let a = request(&api, "GET", "/health", &[("origin", &own)], None).await;
    assert_eq!(a.status, 200, "{}", a.text);
    a.assert_allowed_for(&own, "GET /health from the own origin");
}

#[tokio::test]
async fn error_answers_carry_the_cors_headers_too() {
    let api = api();
    let o = [("origin", ALLOWED)];
    let cases: Vec<(&str, &str, Option<Value>, u16, &str)> = vec![
        ("GET", "/v1/conversations", None, 401, "unauthorized"),
        ("GET", "/no/such/route", None, 404, "not_found"),
        ("OPTIONS", "/no/such/route", None, 404, "not_found"),
        ("PUT", "/v1/messages", None, 405, "method_not_allowed"),
        ("POST", "/dev/token", Some(json!({})), 400, "invalid_request"),
        ("GET", "/v1/badges", None, 401, "unauthorized"), // forwarded to the notifications worker
    ];
    for (method, path, body, status, code) in cases {
        let what = format!("{method} {path}");
        let a = request(&api, method, path, &o, body.as_ref()).await;
        assert_eq!(a.status, status, "{what}: {}", a.text);
        assert_eq!(a.body["error"]["code"], json!(code), "{what}: {}", a.text);
        a.assert_allowed_for(ALLOWED, &what);
        let a = request(&api, method, path, &[("origin", DISALLOWED)], body.as_ref()).await;
        assert_eq!(a.status, status, "{what} from a disallowed origin: {}", a.text);
        a.assert_no_cors(&what);
    }
}

#[tokio::test]
async fn socket_upgrades_from_a_disallowed_browser_origin_are_refused() {
    let api = api();
    let alice = api.user("cors-ws").await;
    let sb = uid("sb");
    let conv = api.create_conversation(&alice, &sb, Some("cors ws"), &[]).await;
    let bearer = format!("Bearer {}", alice.token);
    let paths = [
        format!("/v1/conversations/{conv}/ws"),
        "/connect".to_string(),
        format!("/v1/conversations/{conv}/live"),
        "/app/switchboard-key?protocol=7".to_string(),
    ];
    for path in &paths {
        for origin in [DISALLOWED, "null", "http://app.example"] {
            let (status, head, body) = upgrade(&api, path, &[("Authorization", &bearer), ("Origin", origin)]).await;
            let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
            assert_eq!(
                (status, v["error"]["code"].as_str()),
                (403, Some("origin_not_allowed")),
                "upgrade of {path} from {origin}: {head}{body}"
            );
            assert!(v["error"]["message"].is_string(), "{body}");
            assert!(!head.to_ascii_lowercase().contains("access-control-"), "{path}: {head}");
        }
        // without credentials too: the origin is checked first
        let (status, _, body) = upgrade(&api, path, &[("Origin", DISALLOWED)]).await;
        assert_eq!(status, 403, "upgrade of {path} without auth from {DISALLOWED}: {body}");
    }

    // an allowed origin, the own origin, and no Origin at all (not a browser) are upgraded
    let own = server().base_url();
    for path in &paths {
        for extra in [Some(ALLOWED), Some(own.as_str()), None] {
            let mut headers = vec![("Authorization", bearer.as_str())];
            if let Some(o) = extra {
                headers.push(("Origin", o));
            }
            let (status, head, body) = upgrade(&api, path, &headers).await;
            assert_eq!(status, 101, "upgrade of {path} with Origin {extra:?}: {head}{body}");
        }
    }

    // and the conversation socket works from the allowed origin (frames flow)
    let url = format!("{}/v1/conversations/{conv}/ws", api.ws_base);
    let mut req = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(url.as_str())
        .expect("ws request");
    req.headers_mut().insert("authorization", bearer.parse().expect("header"));
    req.headers_mut().insert("origin", ALLOWED.parse().expect("header"));
    let (mut ws, _) = tokio::time::timeout(Duration::from_secs(20), tokio_tungstenite::connect_async(req))
        .await
        .expect("upgrade timed out")
        .expect("upgrade from the allowed origin");
    use futures_util::StreamExt;
    let first = tokio::time::timeout(FRAME_TIMEOUT, ws.next()).await.expect("a frame").expect("open").expect("frame");
    let first: Value = serde_json::from_str(first.to_text().unwrap_or("")).unwrap_or(Value::Null);
    assert_eq!(first["type"], json!("ready"), "{first}");
}

/// Local mode without `ALLOWED_ORIGINS` (the shared server): every origin is allowed.
#[tokio::test]
async fn local_mode_allows_every_origin_by_default() {
    let api = Api::new(shared());
    for origin in [DISALLOWED, "http://localhost:5173"] {
        let a = preflight(&api, "/v1/conversations", origin, "POST").await;
        assert_eq!(a.status, 204, "{origin}: {}", a.text);
        a.assert_allowed_for(origin, origin);
        let a = request(&api, "GET", "/v1/conversations", &[("origin", origin)], None).await;
        assert_eq!(a.status, 401, "{}", a.text);
        a.assert_allowed_for(origin, origin);
    }
    let alice = api.user("cors-local").await;
    let conv = api.create_conversation(&alice, &uid("sb"), None, &[]).await;
    let bearer = format!("Bearer {}", alice.token);
    let (status, head, body) =
        upgrade(&api, &format!("/v1/conversations/{conv}/ws"), &[("Authorization", &bearer), ("Origin", DISALLOWED)])
            .await;
    assert_eq!(status, 101, "{head}{body}");
}
