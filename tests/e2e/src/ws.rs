//! The WebSocket client of the tests: [`Ws`] speaks the conversation, hub and live sockets'
//! protocol, and a raw HTTP reader for upgrade answers.

use super::*;

fn with_query(path: &str, auth: WsAuth<'_>, since: Option<&str>) -> String {
    let mut q = Vec::new();
    if let WsAuth::Ticket(t) = auth {
        q.push(format!("ticket={}", urlencode(t)));
    }
    if let Some(s) = since {
        q.push(format!("since={}", urlencode(s)));
    }
    if q.is_empty() {
        path.to_string()
    } else {
        format!("{path}{}{}", if path.contains('?') { "&" } else { "?" }, q.join("&"))
    }
}

/// Reads one HTTP/1.1 response: (status, head, body). A 101 answer returns without a body.
pub async fn read_http_response(s: &mut tokio::net::TcpStream) -> (u16, String, Vec<u8>) {
    use tokio::io::AsyncReadExt;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = s.read(&mut chunk).await.expect("read");
        assert!(n > 0, "connection closed before response headers: {:?}", String::from_utf8_lossy(&buf));
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let status: u16 = head.get(9..12).and_then(|x| x.parse().ok()).unwrap_or_else(|| panic!("bad status line: {head}"));
    if status == 101 {
        return (status, head, Vec::new());
    }
    let header = |name: &str| {
        head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    };
    let mut body = buf[head_end..].to_vec();
    if let Some(len) = header("content-length").and_then(|v| v.parse::<usize>().ok()) {
        while body.len() < len {
            let n = s.read(&mut chunk).await.expect("read");
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
        body.truncate(len);
    } else if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        let mut out = Vec::new();
        let mut pos = 0;
        loop {
            // need a complete size line
            let line_end = loop {
                if let Some(i) = body[pos..].windows(2).position(|w| w == b"\r\n") {
                    break pos + i;
                }
                let n = s.read(&mut chunk).await.expect("read");
                assert!(n > 0, "connection closed inside a chunked body");
                body.extend_from_slice(&chunk[..n]);
            };
            let size_text = String::from_utf8_lossy(&body[pos..line_end]).to_string();
            let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
                .unwrap_or_else(|_| panic!("bad chunk size line: {size_text:?}"));
            if size == 0 {
                break;
            }
            let data_start = line_end + 2;
            while body.len() < data_start + size + 2 {
                let n = s.read(&mut chunk).await.expect("read");
                assert!(n > 0, "connection closed inside a chunk");
                body.extend_from_slice(&chunk[..n]);
            }
            out.extend_from_slice(&body[data_start..data_start + size]);
            pos = data_start + size + 2;
        }
        body = out;
    } else {
        let _ = s.read_to_end(&mut body).await;
    }
    (status, head, body)
}

/// A request whose body is streamed in chunks (`Transfer-Encoding: chunked`) as the test decides,
/// e.g. a live-channel publish that sends lines one at a time.
pub struct StreamingRequest {
    stream: tokio::net::TcpStream,
    method: String,
    path: String,
}

impl StreamingRequest {
    /// Sends the request head; the body follows with [`StreamingRequest::send`].
    pub async fn start(
        api: &Api,
        method: &str,
        path: &str,
        token: Option<&str>,
        content_type: &str,
    ) -> StreamingRequest {
        use tokio::io::AsyncWriteExt;
        let host = api.base.trim_start_matches("http://").to_string();
        let mut stream = tokio::net::TcpStream::connect(&host).await.expect("connect");
        stream.set_nodelay(true).ok();
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n"
        );
        if let Some(t) = token {
            head.push_str(&format!("Authorization: Bearer {t}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).await.expect("write request head");
        StreamingRequest { stream, method: method.to_string(), path: path.to_string() }
    }

    /// Sends one chunk of the body.
    pub async fn send(&mut self, data: &[u8]) {
        assert!(self.try_send(data).await, "{} {}: writing a body chunk failed", self.method, self.path);
    }

    /// Sends one chunk; false if the connection refused it.
    pub async fn try_send(&mut self, data: &[u8]) -> bool {
        use tokio::io::AsyncWriteExt;
        if data.is_empty() {
            return true;
        }
        let mut frame = format!("{:x}\r\n", data.len()).into_bytes();
        frame.extend_from_slice(data);
        frame.extend_from_slice(b"\r\n");
        self.stream.write_all(&frame).await.is_ok() && self.stream.flush().await.is_ok()
    }

    /// Ends the body and reads the answer. (A server that already answered may have stopped
    /// reading: a failed write is ignored and the answer read anyway.)
    pub async fn finish(mut self) -> Resp {
        use tokio::io::AsyncWriteExt;
        let _ = self.stream.write_all(b"0\r\n\r\n").await;
        self.response().await
    }

    /// Reads the answer without ending the body (e.g. after an idle timeout).
    pub async fn response(mut self) -> Resp {
        let (status, _head, body) = tokio::time::timeout(Duration::from_secs(60), read_http_response(&mut self.stream))
            .await
            .unwrap_or_else(|_| panic!("{} {}: no answer within 60 s", self.method, self.path));
        let text = String::from_utf8_lossy(&body).into_owned();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Resp { method: self.method, path: self.path, status, body, text }
    }
}

type WsStream = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A frame as the application sees it (protocol ping/pong frames are handled by tungstenite).
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    Text(String),
    Binary(Vec<u8>),
    /// close frame: code and reason (code 1005 when the frame had none)
    Close(u16, String),
    /// the connection ended without a close frame (or with an error)
    Ended(String),
}

/// A refused upgrade: the HTTP status and body.
#[derive(Debug, Clone)]
pub struct Refused {
    pub status: u16,
    pub body: Value,
    pub text: String,
}

impl Refused {
    /// The refusal in an upgrade's HTTP answer.
    fn of(resp: &tokio_tungstenite::tungstenite::handshake::client::Response) -> Refused {
        let status = resp.status().as_u16();
        let bytes = resp.body().clone().unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Refused { status, body, text }
    }
}

pub struct Ws {
    pub label: String,
    stream: WsStream,
    closed: bool,
}

#[derive(Clone, Copy)]
pub enum WsAuth<'a> {
    Bearer(&'a str),
    Ticket(&'a str),
    None,
}

impl Ws {
    /// Opens `/v1/conversations/{conv}/ws` with the given auth and `since`. `Err` on a refused
    /// upgrade (its body is not available here: use [`Ws::refused`] to check a refusal's body).
    pub async fn open(
        api: &Api,
        conv: &str,
        auth: WsAuth<'_>,
        since: Option<&str>,
        label: &str,
    ) -> Result<Ws, Refused> {
        Ws::open_path(api, &format!("/v1/conversations/{conv}/ws"), auth, since, label).await
    }

    /// Opens a WebSocket on `path` (e.g. `/v1/conversations/{id}/live`).
    pub async fn open_path(
        api: &Api,
        path: &str,
        auth: WsAuth<'_>,
        since: Option<&str>,
        label: &str,
    ) -> Result<Ws, Refused> {
        let url = format!("{}{}", api.ws_base, with_query(path, auth, since));
        let mut req = url.as_str().into_client_request().expect("ws request");
        if let WsAuth::Bearer(t) = auth {
            req.headers_mut().insert("authorization", format!("Bearer {t}").parse().unwrap());
        }
        let fut = tokio_tungstenite::connect_async(req);
        match tokio::time::timeout(Duration::from_secs(20), fut).await {
            Err(_) => panic!("{label}: websocket upgrade to {url} timed out"),
            Ok(Ok((stream, _resp))) => Ok(Ws { label: label.to_string(), stream, closed: false }),
            Ok(Err(tokio_tungstenite::tungstenite::Error::Http(resp))) => Err(Refused::of(&resp)),
            Ok(Err(e)) => panic!("{label}: websocket upgrade to {url} failed: {e}"),
        }
    }

    /// Opens the per-user event hub `/connect` (`kilo.events.v1`). `session` and `since` go in the
    /// query; with `subprotocol` the client asks for `kilo.events.v1` and the echoed protocol is
    /// returned.
    pub async fn open_hub(
        api: &Api,
        auth: WsAuth<'_>,
        session: Option<&str>,
        since: Option<i64>,
        subprotocol: bool,
        label: &str,
    ) -> Result<(Ws, Option<String>), Refused> {
        let mut path = "/connect".to_string();
        if let Some(sid) = session {
            path.push_str(&format!("?session={}", urlencode(sid)));
        }
        let since = since.map(|s| s.to_string());
        let url = format!("{}{}", api.ws_base, with_query(&path, auth, since.as_deref()));
        let mut req = url.as_str().into_client_request().expect("ws request");
        if let WsAuth::Bearer(t) = auth {
            req.headers_mut().insert("authorization", format!("Bearer {t}").parse().unwrap());
        }
        if subprotocol {
            req.headers_mut().insert("sec-websocket-protocol", "kilo.events.v1".parse().unwrap());
        }
        match tokio::time::timeout(Duration::from_secs(20), tokio_tungstenite::connect_async(req)).await {
            Err(_) => panic!("{label}: hub upgrade timed out"),
            Ok(Ok((stream, resp))) => {
                let proto =
                    resp.headers().get("sec-websocket-protocol").and_then(|v| v.to_str().ok()).map(str::to_string);
                Ok((Ws { label: label.to_string(), stream, closed: false }, proto))
            }
            Ok(Err(tokio_tungstenite::tungstenite::Error::Http(resp))) => Err(Refused::of(&resp)),
            Ok(Err(e)) => panic!("{label}: hub upgrade failed: {e}"),
        }
    }

    /// Attempts an upgrade of a conversation's event socket that must be refused, over a raw
    /// HTTP/1.1 connection so that the refusal's body can be read (tungstenite drops it).
    /// Panics if the server upgrades.
    pub async fn refused(api: &Api, conv: &str, auth: WsAuth<'_>, since: Option<&str>) -> Refused {
        Ws::refused_path(api, &format!("/v1/conversations/{conv}/ws"), auth, since).await
    }

    pub async fn refused_path(api: &Api, path: &str, auth: WsAuth<'_>, since: Option<&str>) -> Refused {
        use tokio::io::AsyncWriteExt;
        let host = api.base.trim_start_matches("http://").to_string();
        let target = with_query(path, auth, since);
        let mut req = format!(
            "GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        );
        if let WsAuth::Bearer(t) = auth {
            req.push_str(&format!("Authorization: Bearer {t}\r\n"));
        }
        req.push_str("\r\n");
        let io = async {
            let mut s = tokio::net::TcpStream::connect(&host).await.expect("connect");
            s.write_all(req.as_bytes()).await.expect("write upgrade request");
            read_http_response(&mut s).await
        };
        let (status, head, body) =
            tokio::time::timeout(Duration::from_secs(20), io).await.expect("upgrade attempt timed out");
        if status == 101 {
            panic!("the upgrade to {target} was accepted, expected a refusal ({head})");
        }
        let text = String::from_utf8_lossy(&body).into_owned();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Refused { status, body, text }
    }

    /// Asserts the upgrade is refused with this status and error code.
    pub async fn expect_refused(api: &Api, conv: &str, auth: WsAuth<'_>, since: Option<&str>, status: u16, code: &str) {
        let r = Ws::refused(api, conv, auth, since).await;
        assert_eq!(
            (r.status, r.body["error"]["code"].as_str()),
            (status, Some(code)),
            "upgrade of {conv} (since {since:?}): expected {status} {code}, got {} {}",
            r.status,
            r.text
        );
    }

    /// Connects with a bearer token; panics if refused.
    pub async fn connect(api: &Api, conv: &str, who: &Who, since: Option<i64>) -> Ws {
        let since = since.map(|s| s.to_string());
        match Ws::open(api, conv, WsAuth::Bearer(&who.token), since.as_deref(), &who.id).await {
            Ok(ws) => ws,
            Err(r) => panic!("{}: websocket upgrade refused: {} {}", who.id, r.status, r.text),
        }
    }

    /// Connects with a fresh connect ticket; panics if refused.
    pub async fn connect_ticket(api: &Api, conv: &str, who: &Who, since: Option<i64>) -> Ws {
        let ticket = api.ticket(who).await;
        let since = since.map(|s| s.to_string());
        match Ws::open(api, conv, WsAuth::Ticket(&ticket), since.as_deref(), &who.id).await {
            Ok(ws) => ws,
            Err(r) => panic!("{}: websocket upgrade (ticket) refused: {} {}", who.id, r.status, r.text),
        }
    }

    /// Connects with a bearer token and reads up to `ready`; asserts there was no replay and
    /// returns the ready seq.
    pub async fn connect_ready(api: &Api, conv: &str, who: &Who) -> (Ws, i64) {
        let mut ws = Ws::connect(api, conv, who, None).await;
        let ready = ws.next_json(FRAME_TIMEOUT).await;
        assert_eq!(ready["type"], json!("ready"), "{}: first frame without since must be ready: {ready}", ws.label);
        let seq = ready["seq"].as_i64().unwrap_or_else(|| panic!("ready without integer seq: {ready}"));
        (ws, seq)
    }

    /// The next application frame, or `None` after `timeout`.
    pub async fn next_frame(&mut self, timeout: Duration) -> Option<Frame> {
        if self.closed {
            return Some(Frame::Ended("already closed".into()));
        }
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let next = tokio::time::timeout_at(deadline, self.stream.next()).await.ok()?;
            let frame = match next {
                None => Frame::Ended("stream ended".into()),
                Some(Err(e)) => Frame::Ended(e.to_string()),
                Some(Ok(Message::Text(t))) => Frame::Text(t.to_string()),
                Some(Ok(Message::Binary(b))) => Frame::Binary(b.to_vec()),
                Some(Ok(Message::Close(c))) => match c {
                    Some(c) => Frame::Close(u16::from(c.code), c.reason.to_string()),
                    None => Frame::Close(1005, String::new()),
                },
                Some(Ok(Message::Ping(_))) | Some(Ok(Message::Pong(_))) | Some(Ok(Message::Frame(_))) => continue,
            };
            if matches!(frame, Frame::Close(..) | Frame::Ended(_)) {
                self.closed = true;
            }
            return Some(frame);
        }
    }

    /// The next frame, which must be a JSON text frame arriving within `timeout`.
    pub async fn next_json(&mut self, timeout: Duration) -> Value {
        match self.next_frame(timeout).await {
            None => panic!("{}: no frame within {timeout:?}", self.label),
            Some(Frame::Text(t)) => {
                serde_json::from_str(&t).unwrap_or_else(|e| panic!("{}: text frame is not JSON ({e}): {t}", self.label))
            }
            Some(other) => panic!("{}: expected a JSON text frame, got {other:?}", self.label),
        }
    }

    /// The next frame must be an event; returns it.
    pub async fn next_event(&mut self) -> Value {
        let f = self.next_json(FRAME_TIMEOUT).await;
        assert_eq!(f["type"], json!("event"), "{}: expected an event frame, got {f}", self.label);
        assert!(f["seq"].is_i64(), "{}: event without integer seq: {f}", self.label);
        f
    }

    /// The next frame must be the event `name`; returns the whole frame.
    pub async fn expect_event(&mut self, name: &str) -> Value {
        let f = self.next_event().await;
        assert_eq!(f["event"], json!(name), "{}: expected event {name}, got {f}", self.label);
        f
    }

    /// Asserts that no frame arrives within `dur`.
    pub async fn expect_no_frame(&mut self, dur: Duration) {
        if let Some(f) = self.next_frame(dur).await {
            panic!("{}: expected no frame for {dur:?}, got {f:?}", self.label);
        }
    }

    /// Reads frames up to and including `ready`; returns (replayed events, resync frame if any,
    /// ready seq). Panics on any other frame.
    pub async fn read_until_ready(&mut self) -> (Vec<Value>, Option<Value>, i64) {
        let mut events = Vec::new();
        let mut resync = None;
        loop {
            let f = self.next_json(FRAME_TIMEOUT).await;
            match f["type"].as_str() {
                Some("event") => events.push(f),
                Some("resync") if resync.is_none() => resync = Some(f),
                Some("ready") => {
                    let seq = f["seq"].as_i64().unwrap_or_else(|| panic!("ready without integer seq: {f}"));
                    return (events, resync, seq);
                }
                _ => panic!("{}: unexpected frame before ready: {f}", self.label),
            }
        }
    }

    /// Waits for a close frame (within `timeout`), allowing only event frames before it; returns
    /// the close code and the events seen.
    pub async fn expect_close(&mut self, timeout: Duration) -> (u16, Vec<Value>) {
        let mut events = Vec::new();
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next_frame(left).await {
                None => panic!("{}: no close within {timeout:?} (events seen: {events:?})", self.label),
                Some(Frame::Close(code, _)) => return (code, events),
                Some(Frame::Text(t)) => {
                    let v: Value = serde_json::from_str(&t)
                        .unwrap_or_else(|_| panic!("{}: non-JSON frame before close: {t}", self.label));
                    assert_eq!(v["type"], json!("event"), "{}: unexpected frame before close: {v}", self.label);
                    events.push(v);
                }
                Some(other) => panic!("{}: expected a close frame, got {other:?}", self.label),
            }
        }
    }

    pub async fn send_text(&mut self, s: &str) {
        self.stream
            .send(Message::Text(s.to_string().into()))
            .await
            .unwrap_or_else(|e| panic!("{}: send failed: {e}", self.label));
    }

    pub async fn send_json(&mut self, v: &Value) {
        self.send_text(&v.to_string()).await
    }

    pub async fn send_binary(&mut self, b: Vec<u8>) {
        self.stream
            .send(Message::Binary(b.into()))
            .await
            .unwrap_or_else(|e| panic!("{}: send failed: {e}", self.label));
    }

    /// Drops the connection without a close frame, as a client whose process died: the TCP
    /// connection is reset (`SO_LINGER` 0, so the kernel sends RST, not FIN) and nothing is sent
    /// on the WebSocket. (For a client that vanishes without even a reset, see
    /// [`blackhole::Blackhole`].)
    pub fn abort(self) {
        if let tokio_tungstenite::MaybeTlsStream::Plain(tcp) = self.stream.get_ref() {
            tcp.set_zero_linger().unwrap_or_else(|e| panic!("{}: SO_LINGER 0 failed: {e}", self.label));
        }
        drop(self);
    }

    /// Sends a normal close and waits briefly for the server's answer.
    pub async fn close(mut self) {
        let _ = self
            .stream
            .send(Message::Close(Some(tokio_tungstenite::tungstenite::protocol::CloseFrame {
                code: CloseCode::Normal,
                reason: "bye".into(),
            })))
            .await;
        let _ =
            tokio::time::timeout(Duration::from_secs(2), async { while let Some(Ok(_)) = self.stream.next().await {} })
                .await;
    }
}
