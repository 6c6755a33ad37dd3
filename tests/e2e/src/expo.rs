//! A fake Expo push service on 127.0.0.1 for the notifications tests.
//!
//! It answers `POST .../push/send` and `POST .../push/getReceipts` like Expo, records every
//! request (headers, raw size, gzip-decompressed JSON body, arrival time), and can be told, per
//! device token, to answer a request with an HTTP status (500, 429, ...), to hold its answer for a
//! while, or to answer that token's tickets or receipts with an error (`DeviceNotRegistered`).
//! Plans are keyed by token so that tests sharing one server and one fake never see each other's
//! plans; a test reads only the requests that carry its own tokens.
//!
//! It runs on its own threads (blocking std I/O), so it outlives any one test's tokio runtime.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// One request the fake received.
#[derive(Debug, Clone)]
pub struct ExpoRequest {
    pub path: String,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    /// Size of the body as sent (compressed when gzipped).
    pub raw_len: usize,
    pub gzip: bool,
    /// The JSON body (decompressed when gzipped); `Null` if it did not parse.
    pub body: Value,
    pub at: Instant,
    /// The HTTP status the fake answered.
    pub status: u16,
}

impl ExpoRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub fn is_send(&self) -> bool {
        self.path.ends_with("/push/send")
    }

    pub fn is_receipts(&self) -> bool {
        self.path.ends_with("/push/getReceipts")
    }

    /// The push messages of a send request (one object or an array).
    pub fn messages(&self) -> Vec<Value> {
        match &self.body {
            Value::Array(a) => a.clone(),
            v @ Value::Object(_) if self.is_send() => vec![v.clone()],
            _ => vec![],
        }
    }

    /// The `to` of every message.
    pub fn tokens(&self) -> Vec<String> {
        self.messages().iter().filter_map(|m| m["to"].as_str().map(str::to_string)).collect()
    }

    /// The messages to `token`.
    pub fn messages_to(&self, token: &str) -> Vec<Value> {
        self.messages().into_iter().filter(|m| m["to"] == token).collect()
    }

    /// The ticket ids of a receipts request.
    pub fn receipt_ids(&self) -> Vec<String> {
        self.body["ids"]
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
            .unwrap_or_default()
    }
}

#[derive(Default)]
struct Plans {
    /// Per token: answers for the next send requests that carry it (status, hold in ms).
    send: HashMap<String, Vec<(u16, u64)>>,
    /// Per token: the ticket error for every message to it.
    ticket_error: HashMap<String, String>,
    /// Per token: the receipt error for tickets of messages to it.
    receipt_error: HashMap<String, String>,
    /// Per token: the Expo project it belongs to, when not ours (`OUR_PROJECT`).
    project: HashMap<String, String>,
}

/// The project of every token that was not given another.
const OUR_PROJECT: &str = "@switchboard/chat";

#[derive(Default)]
struct State {
    requests: Vec<ExpoRequest>,
    plans: Plans,
    /// ticket id -> token
    tickets: HashMap<String, String>,
    next_ticket: u64,
}

/// The fake Expo server. Cheap to clone; runs until the process exits.
#[derive(Clone)]
pub struct FakeExpo {
    pub port: u16,
    state: Arc<Mutex<State>>,
}

impl FakeExpo {
    /// Starts listening on a free port of 127.0.0.1.
    pub fn start() -> FakeExpo {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind fake expo");
        let port = listener.local_addr().expect("fake expo addr").port();
        let state = Arc::new(Mutex::new(State::default()));
        let fake = FakeExpo { port, state };
        let f = fake.clone();
        std::thread::Builder::new()
            .name("fake-expo".into())
            .spawn(move || {
                for stream in listener.incoming().flatten() {
                    let f = f.clone();
                    let _ = std::thread::Builder::new().name("fake-expo-conn".into()).spawn(move || f.serve(stream));
                }
            })
            .expect("spawn fake expo");
        fake
    }

    pub fn send_url(&self) -> String {
        format!("http://127.0.0.1:{}/--/api/v2/push/send", self.port)
    }

    pub fn receipts_url(&self) -> String {
        format!("http://127.0.0.1:{}/--/api/v2/push/getReceipts", self.port)
    }

    /// The vars that point the notifications worker here.
    pub fn vars(&self) -> Vec<(String, String)> {
        vec![("EXPO_PUSH_URL".into(), self.send_url()), ("EXPO_RECEIPTS_URL".into(), self.receipts_url())]
    }

    /// The next `times` send requests carrying a message to `token` are answered `status`.
    pub fn fail_next(&self, token: &str, status: u16, times: usize) {
        let mut s = self.state.lock().unwrap();
        let q = s.plans.send.entry(token.to_string()).or_default();
        q.extend(std::iter::repeat_n((status, 0), times));
    }

    /// The next send request carrying `token` is answered normally, but only after `hold`.
    pub fn hold_next(&self, token: &str, hold: Duration) {
        let mut s = self.state.lock().unwrap();
        s.plans.send.entry(token.to_string()).or_default().push((200, hold.as_millis() as u64));
    }

    /// Every ticket for a message to `token` is `{status:"error", details:{error}}`.
    pub fn ticket_error(&self, token: &str, error: &str) {
        self.state.lock().unwrap().plans.ticket_error.insert(token.to_string(), error.to_string());
    }

    /// Every receipt of a ticket for `token` is `{status:"error", details:{error}}`.
    /// `token` belongs to another Expo project: a send request mixing it with tokens of ours is
    /// refused whole (400 `PUSH_TOO_MANY_EXPERIENCE_IDS`, naming each project's tokens), as Expo does.
    pub fn project_of(&self, token: &str, project: &str) {
        self.state.lock().unwrap().plans.project.insert(token.to_string(), project.to_string());
    }

    pub fn receipt_error(&self, token: &str, error: &str) {
        self.state.lock().unwrap().plans.receipt_error.insert(token.to_string(), error.to_string());
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<ExpoRequest> {
        self.state.lock().unwrap().requests.clone()
    }

    /// Send requests that carry a message to `token`, in arrival order.
    pub fn sends_to(&self, token: &str) -> Vec<ExpoRequest> {
        self.requests().into_iter().filter(|r| r.is_send() && r.tokens().iter().any(|t| t == token)).collect()
    }

    /// Messages to `token` in send requests the fake answered 200, in order.
    pub fn delivered_to(&self, token: &str) -> Vec<Value> {
        self.sends_to(token).iter().filter(|r| r.status == 200).flat_map(|r| r.messages_to(token)).collect()
    }

    /// Receipt requests that asked for a ticket of `token`.
    pub fn receipt_requests_for(&self, token: &str) -> Vec<ExpoRequest> {
        let s = self.state.lock().unwrap();
        s.requests
            .iter()
            .filter(|r| {
                r.is_receipts()
                    && r.receipt_ids().iter().any(|id| s.tickets.get(id).map(|t| t == token).unwrap_or(false))
            })
            .cloned()
            .collect()
    }

    /// Waits until `f` holds for the recorded requests, or panics with `what` after `deadline`.
    pub async fn wait_for<T>(&self, what: &str, deadline: Duration, f: impl Fn(&FakeExpo) -> Option<T>) -> T {
        let start = Instant::now();
        loop {
            if let Some(v) = f(self) {
                return v;
            }
            if start.elapsed() > deadline {
                let seen: Vec<String> = self
                    .requests()
                    .iter()
                    .map(|r| format!("{} {} tokens={:?}", r.path, r.status, r.tokens()))
                    .collect();
                panic!("fake expo: timed out after {deadline:?} waiting for: {what}; requests: {seen:#?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    // ------------------------------------------------------------------------------------------

    fn serve(&self, mut stream: TcpStream) {
        let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
        loop {
            let Some((path, headers, raw)) = read_request(&mut stream) else { return };
            let gzip = headers.iter().any(|(k, v)| k == "content-encoding" && v.eq_ignore_ascii_case("gzip"));
            let bytes = if gzip { gunzip(&raw).unwrap_or_default() } else { raw.clone() };
            let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            let req = ExpoRequest { path, headers, raw_len: raw.len(), gzip, body, at: Instant::now(), status: 200 };
            let (status, hold, answer) = self.answer(&req);
            if hold > 0 {
                std::thread::sleep(Duration::from_millis(hold));
            }
            let text = answer.to_string();
            let reason = match status {
                200 => "OK",
                429 => "Too Many Requests",
                400 => "Bad Request",
                _ => "Error",
            };
            let head = format!(
                "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: keep-alive\r\n\r\n",
                text.len()
            );
            if stream.write_all(head.as_bytes()).and_then(|_| stream.write_all(text.as_bytes())).is_err() {
                return;
            }
        }
    }

    /// Decides the answer and records the request.
    fn answer(&self, req: &ExpoRequest) -> (u16, u64, Value) {
        let mut s = self.state.lock().unwrap();
        let mut rec = req.clone();
        let mixed = req.is_send().then(|| {
            let mut by_project: std::collections::BTreeMap<String, Vec<String>> = Default::default();
            for t in req.tokens() {
                let p = s.plans.project.get(&t).cloned().unwrap_or_else(|| OUR_PROJECT.to_string());
                by_project.entry(p).or_default().push(t);
            }
            by_project
        });
        let out = if let Some(by_project) = mixed.filter(|m| m.len() > 1) {
            let message = "All push notification messages in the same request must be for the same project";
            (
                400,
                0,
                json!({"errors": [{"code": "PUSH_TOO_MANY_EXPERIENCE_IDS", "message": message, "details": by_project}]}),
            )
        } else if req.is_send() {
            let tokens = req.tokens();
            // The first token of the request that has a plan decides the whole request.
            let plan = tokens.iter().find_map(|t| {
                let q = s.plans.send.get_mut(t)?;
                if q.is_empty() {
                    None
                } else {
                    Some(q.remove(0))
                }
            });
            match plan {
                Some((status, hold)) if status != 200 => {
                    let err = if status == 429 { "TOO_MANY_REQUESTS" } else { "INTERNAL_SERVER_ERROR" };
                    (status, hold, json!({"errors": [{"code": err, "message": "fake expo was told to fail"}]}))
                }
                plan => {
                    let hold = plan.map(|(_, h)| h).unwrap_or(0);
                    let mut data = Vec::new();
                    for t in &tokens {
                        match s.plans.ticket_error.get(t).cloned() {
                            Some(e) => data.push(json!({
                                "status": "error",
                                "message": format!("\"{t}\" is not a registered push notification recipient"),
                                "details": {"error": e}
                            })),
                            None => {
                                s.next_ticket += 1;
                                let id = format!("ticket-{}-{}", s.next_ticket, t.len());
                                s.tickets.insert(id.clone(), t.clone());
                                data.push(json!({"status": "ok", "id": id}));
                            }
                        }
                    }
                    (200, hold, json!({ "data": data }))
                }
            }
        } else if req.is_receipts() {
            let mut data = serde_json::Map::new();
            for id in req.receipt_ids() {
                let token = s.tickets.get(&id).cloned();
                let receipt = match token.as_ref().and_then(|t| s.plans.receipt_error.get(t)) {
                    Some(e) => json!({"status": "error", "message": "receipt error", "details": {"error": e}}),
                    None => json!({"status": "ok"}),
                };
                if token.is_some() {
                    data.insert(id, receipt);
                }
            }
            (200, 0, json!({ "data": data }))
        } else {
            (404, 0, json!({"errors": [{"code": "NOT_FOUND", "message": "fake expo: unknown path"}]}))
        };
        rec.status = out.0;
        s.requests.push(rec);
        out
    }
}

/// Path, lower-cased headers, body.
type RawRequest = (String, Vec<(String, String)>, Vec<u8>);

/// Reads one HTTP/1.1 request (body by content-length).
fn read_request(stream: &mut TcpStream) -> Option<RawRequest> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => buf.push(byte[0]),
            _ => return None,
        }
        if buf.len() > 64 * 1024 {
            return None;
        }
    }
    let head = String::from_utf8_lossy(&buf).to_string();
    let mut lines = head.split("\r\n");
    let request_line = lines.next()?;
    let path = request_line.split_whitespace().nth(1)?.to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let len: usize = headers.iter().find(|(k, _)| k == "content-length").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body).ok()?;
    Some((path, headers, body))
}

fn gunzip(data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(data).read_to_end(&mut out).ok()?;
    Some(out)
}
