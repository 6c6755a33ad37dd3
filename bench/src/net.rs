//! The wire: each server's protocol (setup, socket URL, send), member sockets and the bookkeeping
//! that matches every delivery to its send (the serve process itself: `serve.rs`).

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};
use switchboard_bench::tag;
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

pub type Ws = WebSocketStream<TcpStream>;
pub type Sink = SplitSink<Ws, Message>;
pub type Res<T> = Result<T, String>;

pub const SANDBOX: &str = "bench";

pub use crate::serve::Serve;

/// Our worker, or a variant of it (`ours-...`): same protocol.
pub fn is_ours(server: &str) -> bool {
    server == "ours" || server.starts_with("ours-")
}

/// The JS room or a variant of it (`room-min`: one INSERT per message, bench/baselines/room.mjs).
pub fn is_room(server: &str) -> bool {
    server == "room" || server.starts_with("room-")
}

/// The JS ceiling or another build of it (`ceiling-rs`: the same object written with workers-rs).
pub fn is_ceiling(server: &str) -> bool {
    server == "ceiling" || server.starts_with("ceiling-")
}
pub const JWT_SECRET: &str = "switchboard-bench-secret-0123456789abcdef";

// -------------------------------------------------------------------------------------------------
// HTTP
// -------------------------------------------------------------------------------------------------

pub fn http_client(pool: usize) -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(pool.max(16))
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(60))
        .no_proxy()
        .build()
        .expect("http client")
}

/// A setup request (tokens, conversations, members); retried twice on transport errors (a kept-alive
/// connection the server closed), never on an answer.
pub async fn post_json(http: &reqwest::Client, url: &str, token: Option<&str>, body: &Value) -> Res<(u16, Value)> {
    let mut attempt = 0;
    let resp = loop {
        let mut req = http.post(url).header("content-type", "application/json").body(body.to_string());
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        match req.send().await {
            Ok(r) => break r,
            Err(e) if attempt < 2 => {
                attempt += 1;
                let _ = e;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => return Err(format!("POST {url}: {e}")),
        }
    };
    let status = resp.status().as_u16();
    let text = resp.text().await.map_err(|e| format!("POST {url}: {e}"))?;
    let v = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
    Ok((status, v))
}

/// Runs `f` over `items` with at most `limit` at a time, in order of results.
pub async fn bounded<T, F, Fut, R>(items: Vec<T>, limit: usize, f: F) -> Vec<R>
where
    F: Fn(T) -> Fut,
    Fut: std::future::Future<Output = R>,
{
    futures_util::stream::iter(items.into_iter().map(f)).buffered(limit.max(1)).collect().await
}

// -------------------------------------------------------------------------------------------------
// Members and tokens
// -------------------------------------------------------------------------------------------------

/// Member i of a conversation of `m` members: humans u1..u(m-1), then the sandbox's bot.
pub fn member_of(i: usize, m: usize) -> usize {
    // token index: humans 0..=998 are u1..u999, index 999 is the bot
    if i + 1 == m {
        BOT_TOKEN
    } else {
        i
    }
}
pub const BOT_TOKEN: usize = 999;

/// Tokens for u1..u999 and the bot, from our worker's `POST /dev/token` (the JS room checks the same
/// JWTs with the same secret).
pub async fn tokens(http: &reqwest::Client, ours: &str) -> Res<Vec<String>> {
    let bodies: Vec<Value> = (0..1000)
        .map(|i| if i == BOT_TOKEN { json!({"sandboxId": SANDBOX}) } else { json!({"userId": format!("u{}", i + 1)}) })
        .collect();
    let url = format!("{ours}/dev/token");
    let out = bounded(bodies, 16, |b| {
        let url = url.clone();
        async move { post_json(http, &url, None, &b).await }
    })
    .await;
    out.into_iter()
        .map(|r| match r {
            Ok((200, v)) => v["token"].as_str().map(String::from).ok_or_else(|| format!("dev token: {v}")),
            Ok((s, v)) => Err(format!("POST /dev/token answered {s}: {v}")),
            Err(e) => Err(e),
        })
        .collect()
}

fn ulid_like() -> String {
    const B32: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let mut x = rand_u64();
    let mut s = String::from("01");
    for i in 0..24 {
        if i == 12 {
            x = rand_u64();
        }
        s.push(B32[(x % 32) as usize] as char);
        x /= 32;
    }
    s
}

pub fn rand_u64() -> u64 {
    let mut b = [0u8; 8];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        use std::io::Read;
        let _ = f.read_exact(&mut b);
    }
    u64::from_le_bytes(b) ^ Instant::now().elapsed().as_nanos() as u64
}

// -------------------------------------------------------------------------------------------------
// A conversation on one server
// -------------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct Conv {
    pub server: String,
    pub base: String,
    pub id: String,
    pub members: usize,
}

/// Creates a conversation of `m` members (m-1 humans and the bot) on `server`.
pub async fn create_conversation(
    http: &reqwest::Client,
    server: &str,
    base: &str,
    toks: &[String],
    m: usize,
) -> Res<Conv> {
    let m = m.clamp(2, 1000);
    let humans: Vec<String> = (1..m).map(|i| format!("u{i}")).collect();
    let id = match server {
        s if is_ours(s) => {
            let first: Vec<&String> = humans.iter().skip(1).take(100).collect();
            let body = json!({"sandboxId": SANDBOX, "title": "bench", "additionalMembers": first});
            let (s, v) = post_json(http, &format!("{base}/v1/conversations"), Some(&toks[0]), &body).await?;
            if s != 201 {
                return Err(format!("create conversation answered {s}: {v}"));
            }
            let id = v["conversationId"].as_str().ok_or("no conversationId")?.to_string();
            let rest: Vec<String> = humans.iter().skip(101).cloned().collect();
            let url = format!("{base}/v1/conversations/{id}/members");
            let added = bounded(rest, 8, |u| {
                let url = url.clone();
                async move { post_json(http, &url, Some(&toks[0]), &json!({"userId": u})).await }
            })
            .await;
            for r in added {
                match r {
                    Ok((200 | 201, _)) => {}
                    Ok((s, v)) => return Err(format!("add member answered {s}: {v}")),
                    Err(e) => return Err(e),
                }
            }
            id
        }
        s if is_room(s) => {
            let id = ulid_like();
            let body = json!({"conversationId": id, "sandboxId": SANDBOX, "members": humans});
            let (s, v) = post_json(http, &format!("{base}/bench/conversations"), None, &body).await?;
            if s != 201 {
                return Err(format!("room create answered {s}: {v}"));
            }
            id
        }
        _ => format!("r{:x}", rand_u64()),
    };
    Ok(Conv { server: server.to_string(), base: base.to_string(), id, members: m })
}

impl Conv {
    fn ws_url(&self) -> String {
        let ws = self.base.replacen("http://", "ws://", 1);
        match self.server.as_str() {
            s if is_ceiling(s) => format!("{ws}/ws/{}", self.id),
            s if s.ends_with("-batched") => format!("{ws}/v1/conversations/{}/ws?batch=1", self.id),
            _ => format!("{ws}/v1/conversations/{}/ws", self.id),
        }
    }

    /// Whether the server sends a first frame (`ready`) on connect.
    pub fn greets(&self) -> bool {
        !is_ceiling(&self.server)
    }

    /// A `message.create` frame (the ceiling echoes it, padded to `pad_to` bytes).
    pub fn frame(&self, tag: &str, text: &str, pad_to: usize) -> String {
        let mut f =
            json!({"type": "message.create", "clientId": tag, "content": [{"type": "text", "text": text}]}).to_string();
        if is_ceiling(&self.server) && f.len() + 10 < pad_to {
            f.pop();
            f.push_str(&format!(",\"pad\":\"{}\"}}", "x".repeat(pad_to - f.len() - 10)));
        }
        f
    }

    /// The URL and body of an HTTP send.
    pub fn http_send(&self, tag: &str, text: &str, pad_to: usize) -> (String, String) {
        match self.server.as_str() {
            s if is_ceiling(s) => (format!("{}/send/{}", self.base, self.id), self.frame(tag, text, pad_to)),
            _ => (
                format!("{}/v1/messages", self.base),
                json!({"conversationId": self.id, "clientId": tag, "content": [{"type": "text", "text": text}]})
                    .to_string(),
            ),
        }
    }
}

// -------------------------------------------------------------------------------------------------
// Sockets
// -------------------------------------------------------------------------------------------------

/// Timings of one socket's opening.
#[derive(Debug, Clone, Copy)]
pub struct Opened {
    pub handshake: Duration,
    pub first_frame: Option<Duration>,
}

/// Opens socket `i` of a conversation (member i % m) and waits for its first frame where there is one.
pub async fn open(conv: &Conv, toks: &[String], i: usize) -> Res<(Ws, Opened)> {
    let t0 = Instant::now();
    let url = conv.ws_url();
    let mut req = url.as_str().into_client_request().map_err(|e| e.to_string())?;
    if !is_ceiling(&conv.server) {
        let tok = &toks[member_of(i % conv.members, conv.members)];
        req.headers_mut()
            .insert("authorization", HeaderValue::from_str(&format!("Bearer {tok}")).map_err(|e| e.to_string())?);
    }
    let addr = url.trim_start_matches("ws://").split('/').next().unwrap_or_default().to_string();
    let tcp = TcpStream::connect(&addr).await.map_err(|e| format!("connect {addr}: {e}"))?;
    let _ = tcp.set_nodelay(true);
    // A small read buffer: tungstenite zeroes the whole buffer on every read, and with its 128 KiB
    // default that memset was a third of the generator's CPU. Our frames are under 1 KiB.
    let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .read_buffer_size(8 * 1024)
        .write_buffer_size(0);
    let (mut ws, resp) = tokio::time::timeout(
        Duration::from_secs(30),
        tokio_tungstenite::client_async_with_config(req, tcp, Some(config)),
    )
    .await
    .map_err(|_| format!("socket {i}: upgrade timed out"))?
    .map_err(|e| format!("socket {i} to {url}: {e}"))?;
    let handshake = t0.elapsed();
    if resp.status().as_u16() != 101 {
        return Err(format!("socket {i}: status {}", resp.status()));
    }
    let mut first_frame = None;
    if conv.greets() {
        match tokio::time::timeout(Duration::from_secs(30), ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) if t.as_str().contains("\"ready\"") || t.as_str().contains("\"resync\"") => {
                first_frame = Some(t0.elapsed());
            }
            Ok(Some(Ok(m))) => return Err(format!("socket {i}: first frame {m:?}")),
            Ok(Some(Err(e))) => return Err(format!("socket {i}: {e}")),
            Ok(None) => return Err(format!("socket {i}: closed before ready")),
            Err(_) => return Err(format!("socket {i}: no ready frame within 30 s")),
        }
    }
    Ok((ws, Opened { handshake, first_frame }))
}

/// N open sockets whose readers feed `Tracker`; socket 0 is the sender's (member u1).
pub struct Sockets {
    pub sinks: Vec<Sink>,
    pub tracker: Rc<Tracker>,
}

impl Sockets {
    pub async fn open_many(
        conv: &Conv,
        toks: &[String],
        range: std::ops::Range<usize>,
        tracker: Rc<Tracker>,
    ) -> Res<Sockets> {
        let mut sinks = Vec::with_capacity(range.len());
        let opened = bounded(range.collect(), 64, |i| open(conv, toks, i)).await;
        for r in opened {
            let (ws, _) = r?;
            let (sink, stream) = ws.split();
            sinks.push(sink);
            tokio::task::spawn_local(read_loop(stream, tracker.clone()));
        }
        Ok(Sockets { sinks, tracker })
    }

    pub async fn extend(&mut self, conv: &Conv, toks: &[String], range: std::ops::Range<usize>) -> Res<()> {
        let more = Sockets::open_many(conv, toks, range, self.tracker.clone()).await?;
        self.sinks.extend(more.sinks);
        Ok(())
    }

    /// Sends a close frame on every socket (bounded in time) and drops them.
    pub async fn close(mut self) {
        let sinks = std::mem::take(&mut self.sinks);
        let _ = tokio::time::timeout(
            Duration::from_secs(20),
            bounded(sinks, 256, |mut s| async move {
                let _ = s.send(Message::Close(None)).await;
                let _ = s.close().await;
            }),
        )
        .await;
        // Give the readers a moment to see the closing handshake.
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.tracker.open_readers.get() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

pub(crate) async fn read_loop(mut stream: SplitStream<Ws>, t: Rc<Tracker>) {
    t.open_readers.set(t.open_readers.get() + 1);
    while let Some(m) = stream.next().await {
        match m {
            Ok(Message::Text(text)) => t.on_frame(text.as_str()),
            Ok(Message::Close(_)) | Err(_) => break,
            Ok(_) => {}
        }
    }
    t.open_readers.set(t.open_readers.get() - 1);
}

// -------------------------------------------------------------------------------------------------
// Matching deliveries to sends
// -------------------------------------------------------------------------------------------------

/// State of the current run, shared by the sender and every socket's reader (one thread).
#[derive(Default)]
pub struct RunState {
    pub n: u32,
    /// Send time (ns since the tracker's epoch) of message k.
    pub sent: Vec<u64>,
    /// Deliveries of message k so far.
    pub counts: Vec<u32>,
    pub complete: u64,
    pub delivered: u64,
    pub frame_bytes: usize,
    /// Deliveries received in [win_from, win_to) count towards throughput.
    pub win_from: u64,
    pub win_to: u64,
    pub win_delivered: u64,
    /// Deliveries of messages sent in [lat_from, lat_to) give latency samples (µs).
    pub lat_from: u64,
    pub lat_to: u64,
    pub lat: Vec<u32>,
    pub http_errors: u64,
    pub last_error: Option<String>,
    /// Deliveries per 250 ms since the run began (a time series, to see stalls).
    pub buckets: Vec<u32>,
    pub started: u64,
}

pub struct Tracker {
    epoch: Instant,
    pub run: Cell<u32>,
    pub st: RefCell<RunState>,
    pub progress: Notify,
    pub open_readers: Cell<usize>,
    /// Text frames received, and the lines they held (more lines than frames: batched frames).
    pub frames: Cell<u64>,
    pub lines: Cell<u64>,
    pub stale: Cell<u64>,
}

impl Tracker {
    pub fn new() -> Rc<Tracker> {
        Rc::new(Tracker {
            epoch: Instant::now(),
            run: Cell::new(0),
            st: RefCell::new(RunState::default()),
            progress: Notify::new(),
            open_readers: Cell::new(0),
            frames: Cell::new(0),
            lines: Cell::new(0),
            stale: Cell::new(0),
        })
    }

    pub fn now_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    /// Starts a new run expecting `n` deliveries per message; frames of earlier runs are ignored.
    /// Run ids are unique in the process and start at a random offset, so a tag (the message's
    /// `clientId`) is never repeated by the same sender: a repeat would be answered from the
    /// idempotency record and not broadcast.
    pub fn begin(&self, n: usize) -> u32 {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT_RUN: AtomicU32 = AtomicU32::new(0);
        let _ = NEXT_RUN.compare_exchange(
            0,
            1 + (rand_u64() % 1_000_000) as u32 * 1000,
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
        let run = NEXT_RUN.fetch_add(1, Ordering::Relaxed);
        self.run.set(run);
        *self.st.borrow_mut() =
            RunState { n: n as u32, win_to: u64::MAX, lat_to: 0, started: self.now_ns(), ..RunState::default() };
        run
    }

    /// Records the send of the next message; returns its k.
    pub fn sent(&self) -> u64 {
        let now = self.now_ns();
        let mut st = self.st.borrow_mut();
        st.sent.push(now);
        st.counts.push(0);
        (st.sent.len() - 1) as u64
    }

    pub fn in_flight(&self) -> u64 {
        let st = self.st.borrow();
        st.sent.len() as u64 - st.complete
    }

    /// A text frame: one frame per line (a socket opened with `?batch=1` may get several).
    fn on_frame(&self, text: &str) {
        self.frames.set(self.frames.get() + 1);
        for line in text.split('\n') {
            self.on_line(line);
        }
    }

    fn on_line(&self, text: &str) {
        self.lines.set(self.lines.get() + 1);
        let Some((run, k)) = tag::find(text) else { return };
        if run != self.run.get() {
            self.stale.set(self.stale.get() + 1);
            return;
        }
        let now = self.now_ns();
        let mut st = self.st.borrow_mut();
        let k = k as usize;
        let Some(&sent) = st.sent.get(k) else { return };
        st.counts[k] += 1;
        st.delivered += 1;
        let b = (now.saturating_sub(st.started) / 250_000_000) as usize;
        if b < 4 * 600 {
            if st.buckets.len() <= b {
                st.buckets.resize(b + 1, 0);
            }
            st.buckets[b] += 1;
        }
        st.frame_bytes = text.len();
        if now >= st.win_from && now < st.win_to {
            st.win_delivered += 1;
        }
        if sent >= st.lat_from && sent < st.lat_to {
            st.lat.push(((now.saturating_sub(sent)) / 1000).min(u32::MAX as u64) as u32);
        }
        if st.counts[k] == st.n {
            st.complete += 1;
            drop(st);
            self.progress.notify_one();
        }
    }

    /// Waits until every sent message is complete, at most `limit`. Answers whether they all are.
    pub async fn drain(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            if self.in_flight() == 0 {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            let _ = tokio::time::timeout(left.min(Duration::from_millis(200)), self.progress.notified()).await;
        }
    }
}

// -------------------------------------------------------------------------------------------------
// Senders
// -------------------------------------------------------------------------------------------------

pub enum Sender {
    /// `message.create` frames on socket 0.
    Socket,
    /// HTTP posts, `window` at most in flight.
    Http { http: reqwest::Client, token: String },
    /// Signed Pusher HTTP API publishes to the one channel of `crate::pusher` (`conv.base` is ours).
    Pusher { http: reqwest::Client },
}

pub struct Send<'a> {
    pub conv: &'a Conv,
    pub sender: Sender,
    pub text: String,
    pub pad_to: usize,
}

impl Send<'_> {
    /// Sends message k of `run` (socket: writes the frame; HTTP: starts the request in the background).
    pub async fn send(&self, sockets: &mut Sockets, run: u32, k: u64) -> Res<()> {
        let t = tag::make(run, k);
        match &self.sender {
            Sender::Socket => {
                let f = self.conv.frame(&t, &self.text, self.pad_to);
                sockets.sinks[0].send(Message::text(f)).await.map_err(|e| format!("send on socket 0: {e}"))
            }
            Sender::Http { .. } | Sender::Pusher { .. } => {
                let req = match &self.sender {
                    Sender::Http { http, token } => {
                        let (url, body) = self.conv.http_send(&t, &self.text, self.pad_to);
                        http.post(url)
                            .header("content-type", "application/json")
                            .header("authorization", format!("Bearer {token}"))
                            .body(body)
                    }
                    Sender::Pusher { http } => {
                        let (url, body) = crate::pusher::publish(&self.conv.base, &t, &self.text, self.pad_to);
                        http.post(url).header("content-type", "application/json").body(body)
                    }
                    Sender::Socket => return Ok(()),
                };
                let tracker = sockets.tracker.clone();
                let run_now = run;
                tokio::task::spawn_local(async move {
                    let err = match req.send().await {
                        Ok(r) if r.status().is_success() => {
                            let _ = r.bytes().await;
                            None
                        }
                        Ok(r) => Some(format!("HTTP send answered {}", r.status())),
                        Err(e) => Some(format!("HTTP send: {e}")),
                    };
                    if let Some(e) = err {
                        // The message will never be delivered: let it leave the window.
                        if tracker.run.get() == run_now {
                            let mut st = tracker.st.borrow_mut();
                            st.http_errors += 1;
                            st.last_error = Some(e);
                            st.complete += 1;
                            drop(st);
                            tracker.progress.notify_one();
                        }
                    }
                });
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_kinds_by_name() {
        assert!(is_ours("ours") && is_ours("ours-batched") && !is_ours("room"));
        assert!(is_room("room") && is_room("room-min") && !is_room("ours"));
        assert!(is_ceiling("ceiling") && is_ceiling("ceiling-rs") && !is_ceiling("room"));
        let c = Conv { server: "ceiling-rs".into(), base: "http://127.0.0.1:1".into(), id: "r1".into(), members: 2 };
        assert!(!c.greets());
        assert_eq!(c.ws_url(), "ws://127.0.0.1:1/ws/r1");
        assert_eq!(c.http_send("t", "x", 0).0, "http://127.0.0.1:1/send/r1");
    }
}
