//! Pusher webhooks outlive the object (docs/pusher.md, "Webhooks"): a batch the app's backend
//! refused is kept in the Pusher object's SQLite with its retry, so a crash of the runtime (SIGKILL
//! to workerd, restarted on the same state) loses nothing: after the restart the alarm sends the
//! same body again and the backend gets it.
//!
//! The backend is a small HTTP listener on 127.0.0.1 that answers 500 until the restart, then 200.

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use switchboard_e2e::serde_json::{json, Value};
use switchboard_e2e::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const KEY: &str = "webhook-key";
const SECRET: &str = "webhook-secret";

/// What the backend received: each request's answer, body and `X-Pusher-Signature`.
#[derive(Clone, Debug)]
struct Hit {
    status: u16,
    body: String,
    signature: String,
}

/// A webhook backend answering `status` (changeable) to every POST, recording each request.
async fn backend(status: Arc<AtomicU16>, hits: Arc<Mutex<Vec<Hit>>>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind backend");
    let port = listener.local_addr().expect("backend addr").port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let (status, hits) = (status.clone(), hits.clone());
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let (head_end, length) = loop {
                    let Ok(n) = s.read(&mut chunk).await else { return };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..i]).to_lowercase();
                        let length = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        break (i + 4, length);
                    }
                };
                while buf.len() < head_end + length {
                    match s.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                let signature = head
                    .lines()
                    .find_map(|l| l.to_lowercase().strip_prefix("x-pusher-signature:").map(|v| v.trim().to_string()))
                    .unwrap_or_default();
                let body = String::from_utf8_lossy(&buf[head_end..head_end + length]).to_string();
                let code = status.load(Ordering::SeqCst);
                hits.lock().expect("hits").push(Hit { status: code, body, signature });
                let answer = format!("HTTP/1.1 {code} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
                let _ = s.write_all(answer.as_bytes()).await;
            });
        }
    });
    port
}

fn signed(body: &str) -> String {
    switchboard_e2e::hmac_hex(SECRET, body)
}

fn occupies(hit: &Hit, channel: &str) -> bool {
    let v: Value = switchboard_e2e::serde_json::from_str(&hit.body).unwrap_or(Value::Null);
    v["events"]
        .as_array()
        .is_some_and(|es| es.iter().any(|e| e["name"] == "channel_occupied" && e["channel"] == channel))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_batch_is_sent_again_after_a_crash() {
    let status = Arc::new(AtomicU16::new(500));
    let hits = Arc::new(Mutex::new(Vec::<Hit>::new()));
    let port = backend(status.clone(), hits.clone()).await;
    let hook = format!("http://127.0.0.1:{port}/webhook");
    let server = Arc::new(Server::start_with(&StartOptions::with_vars(&[
        ("PUSHER_APP_ID", "webhook-app"),
        ("PUSHER_APP_KEY", KEY),
        ("PUSHER_APP_SECRET", SECRET),
        ("PUSHER_WEBHOOK_URL", &hook),
    ])));
    let api = Api::new(&server);

    // A socket subscribes: `channel_occupied` is batched, sent, and refused by the backend.
    let mut ws = Ws::open_path(&api, &format!("/app/{KEY}?protocol=7&client=e2e&version=1"), WsAuth::None, None, "p")
        .await
        .unwrap_or_else(|r| panic!("pusher socket refused: {r:?}"));
    let first = ws.next_json(FRAME_TIMEOUT).await;
    assert_eq!(first["event"], "pusher:connection_established", "{first}");
    ws.send_json(&json!({"event": "pusher:subscribe", "data": {"channel": "crash-room"}})).await;
    let ok = ws.next_json(FRAME_TIMEOUT).await;
    assert_eq!(ok["event"], "pusher_internal:subscription_succeeded", "{ok}");
    let refused = poll_until("the backend refusing the first batch", Duration::from_secs(20), Duration::from_millis(100), || {
        let hits = hits.clone();
        async move { hits.lock().expect("hits").iter().find(|h| h.status == 500 && occupies(h, "crash-room")).cloned() }
    })
    .await;
    assert_eq!(refused.signature, signed(&refused.body), "signed with the app secret");

    // The runtime dies before the retry; the backend comes back.
    let s = server.clone();
    assert!(tokio::task::spawn_blocking(move || s.crash_and_restart()).await.expect("restart"), "workerd was killed");
    status.store(200, Ordering::SeqCst);

    let delivered =
        poll_until(
            "the batch sent again after the restart",
            Duration::from_secs(60),
            Duration::from_millis(200),
            || {
                let hits = hits.clone();
                async move {
                    hits.lock().expect("hits").iter().find(|h| h.status == 200 && occupies(h, "crash-room")).cloned()
                }
            },
        )
        .await;
    assert_eq!(delivered.body, refused.body, "the same body: a backend that deduplicates by body sees one event");
    assert_eq!(delivered.signature, signed(&delivered.body));
}
