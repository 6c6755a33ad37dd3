//! The Pusher scenario: N pusher-protocol sockets on one public channel of our worker
//! (`/app/{key}?protocol=7`), events published through the signed HTTP API
//! (`POST /apps/{id}/events`, signed like the `pusher` SDK). Each event's `data` carries the run's
//! tag as `clientId`, so deliveries are matched to sends like every other scenario's.
//!
//! Reported beside our native conversation socket at the same N in the same run: deliveries/s at
//! saturation (closed loop) and p99 at the native socket's own half-of-max rate (open loop), so the
//! two latencies are measured at one rate.

use crate::net::{self, Conv, Res, Send, Sender, Serve, Sockets, Tracker};
use crate::scenarios::{agg, latency, latency_set, saturate, Ctx};
use crate::Config;
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use std::rc::Rc;
use std::time::{Duration, Instant};
use switchboard_bench::pace;
use switchboard_bench::report::{FanoutRow, Results, HALF_OWN};
use switchboard_pusher::http_api::sign_query;
use switchboard_pusher::App;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

/// The app `bench/serve.mjs` gives our worker (wrangler.toml's defaults and this secret).
pub const APP_ID: &str = "switchboard";
pub const APP_KEY: &str = "switchboard-key";
pub const APP_SECRET: &str = "switchboard-bench-pusher-secret";
/// The one public channel every socket subscribes to.
pub const CHANNEL: &str = "bench-room";
/// The server name in the results.
pub const SERVER: &str = "ours-pusher";
/// The send mode in the results.
pub const MODE: &str = "pusher-http";

pub fn app() -> App {
    App::new(APP_ID, APP_KEY, APP_SECRET)
}

/// Opens pusher socket `i` and subscribes it to `CHANNEL`; answers once subscribed.
async fn open(base: &str, i: usize) -> Res<net::Ws> {
    let ws_base = base.replacen("http://", "ws://", 1);
    let url = format!("{ws_base}/app/{APP_KEY}?protocol=7&client=bench&version=1");
    let req = url.as_str().into_client_request().map_err(|e| e.to_string())?;
    let addr = ws_base.trim_start_matches("ws://").split('/').next().unwrap_or_default().to_string();
    let tcp = TcpStream::connect(&addr).await.map_err(|e| format!("connect {addr}: {e}"))?;
    let _ = tcp.set_nodelay(true);
    let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .read_buffer_size(8 * 1024)
        .write_buffer_size(0);
    let (mut ws, _) = tokio::time::timeout(
        Duration::from_secs(30),
        tokio_tungstenite::client_async_with_config(req, tcp, Some(config)),
    )
    .await
    .map_err(|_| format!("pusher socket {i}: upgrade timed out"))?
    .map_err(|e| format!("pusher socket {i}: {e}"))?;
    let mut subscribed = false;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !subscribed {
        let left = deadline.saturating_duration_since(Instant::now());
        let frame = match tokio::time::timeout(left, ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => t.to_string(),
            Ok(Some(Ok(_))) => continue,
            other => return Err(format!("pusher socket {i}: {other:?} before subscription_succeeded")),
        };
        if frame.contains("pusher:connection_established") {
            let sub = json!({"event": "pusher:subscribe", "data": {"channel": CHANNEL}}).to_string();
            ws.send(Message::text(sub)).await.map_err(|e| format!("pusher socket {i}: {e}"))?;
        } else if frame.contains("subscription_succeeded") {
            subscribed = true;
        } else {
            return Err(format!("pusher socket {i}: unexpected {frame}"));
        }
    }
    Ok(ws)
}

/// N subscribed sockets whose readers feed `tracker`.
pub async fn open_many(base: &str, n: usize, tracker: Rc<Tracker>) -> Res<Sockets> {
    let mut sinks = Vec::with_capacity(n);
    for r in net::bounded((0..n).collect(), 64, |i| open(base, i)).await {
        let (sink, stream) = r?.split();
        sinks.push(sink);
        tokio::task::spawn_local(net::read_loop(stream, tracker.clone()));
    }
    Ok(Sockets { sinks, tracker })
}

/// The URL and body of one signed publish of message `tag` (data: `{"clientId":tag,"text":…}`,
/// padded to about `pad_to` bytes of frame like our native frames).
pub fn publish(base: &str, tag: &str, text: &str, pad_to: usize) -> (String, String) {
    let mut data = json!({"clientId": tag, "text": text}).to_string();
    let frame_overhead = 64;
    if data.len() + frame_overhead < pad_to {
        data.pop();
        data.push_str(&format!(",\"pad\":\"{}\"}}", "x".repeat(pad_to - data.len() - frame_overhead)));
    }
    let body = json!({"name": "message.created", "channel": CHANNEL, "data": data}).to_string();
    let path = format!("/apps/{APP_ID}/events");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let query = sign_query(&app(), "POST", &path, &[], Some(body.as_bytes()), now);
    (format!("{base}{path}?{query}"), body)
}

/// The scenario at `n` sockets: a warm-up, `cfg.runs` saturation runs, then `cfg.runs` latency runs
/// at the native socket's half-of-max rate (`native`, ours at the same N in this run) or, without it,
/// at half this scenario's own median max.
pub async fn scenario(
    cfg: &Config,
    serve: &Serve,
    pad_to: usize,
    native: Option<&FanoutRow>,
    n: usize,
) -> Res<FanoutRow> {
    let base = serve.base("ours").to_string();
    let tracker = Tracker::new();
    let t = Instant::now();
    let mut sockets = open_many(&base, n, tracker.clone()).await?;
    eprintln!("bench: pusher: {n} sockets subscribed in {:.1} s", t.elapsed().as_secs_f64());
    let window = pace::window(n, cfg.window_deliveries, 2, 64);
    let conv = Conv { server: SERVER.into(), base, id: String::new(), members: n };
    let send = Send {
        conv: &conv,
        sender: Sender::Pusher { http: net::http_client(window * 2) },
        text: cfg.text.clone(),
        pad_to,
    };
    let c = Ctx { serve, tracker: tracker.clone(), n, window, burst: 0 };
    serve.quiesce().await;
    saturate(&c, &send, &mut sockets, cfg.warm, cfg.sat).await?;
    let mut sat = Vec::new();
    for _ in 0..cfg.runs.max(1) {
        serve.quiesce().await;
        sat.push(saturate(&c, &send, &mut sockets, cfg.warm, cfg.sat).await?);
    }
    let own_half = agg(sat.iter().map(|r| r.msgs_per_s)).map(|a| a.median / 2.0).unwrap_or(1.0);
    let rate = native.and_then(|r| r.latency_basis(HALF_OWN)).map(|l| l.rate_msgs_per_s).unwrap_or(own_half);
    let mut lat = Vec::new();
    for _ in 0..cfg.runs.max(1) {
        serve.quiesce().await;
        lat.push(latency(&c, &send, &mut sockets, rate, cfg.warm, cfg.lat).await?);
    }
    let frame_bytes = tracker.st.borrow().frame_bytes;
    let http_errors = tracker.st.borrow().http_errors;
    sockets.close().await;
    let mut errors = Vec::new();
    if http_errors > 0 {
        errors.push(format!("{http_errors} publishes failed"));
    }
    Ok(FanoutRow {
        server: SERVER.into(),
        mode: MODE.into(),
        n,
        members: n,
        window,
        frame_bytes,
        deliveries_per_s: agg(sat.iter().map(|r| r.deliveries_per_s)),
        msgs_per_s: agg(sat.iter().map(|r| r.msgs_per_s)),
        workerd_cpu: agg(sat.iter().map(|r| r.workerd_cpu)),
        generator_cpu: agg(sat.iter().map(|r| r.generator_cpu)),
        other_cpu: agg(sat.iter().map(|r| r.other_cpu)),
        saturation: sat,
        latency: vec![latency_set(HALF_OWN, rate, lat)],
        errors,
        ..FanoutRow::default()
    })
}

/// The Pusher scenario beside our native socket at the same N: the two targets (deliveries/s at
/// least 0.8× native, p99 at most 1.5× native's at the same rate).
pub fn summary(r: &Results) -> String {
    let Some(p) = r.fanout.iter().find(|f| f.server == SERVER) else { return String::new() };
    let native = r.fanout.iter().find(|f| f.server == "ours" && f.mode == "socket" && f.n == p.n);
    let d = |f: &FanoutRow| f.deliveries_per_s.map(|a| a.median);
    let p99 = |f: &FanoutRow| f.latency_basis(HALF_OWN).and_then(|l| l.p99_ms).map(|a| a.median);
    let fmt = |v: Option<f64>, unit: &str| v.map_or("–".to_string(), |v| format!("{v:.1}{unit}"));
    let mut out = format!(
        "\n## Pusher protocol (N = {}, one public channel, signed HTTP API publishes)\n\n\
         | | Pusher sockets | native conversation sockets | ratio | target |\n|---|---:|---:|---:|---|\n",
        p.n
    );
    let (pd, nd) = (d(p), native.and_then(d));
    let dr = pd.zip(nd).map(|(a, b)| a / b);
    out.push_str(&format!(
        "| deliveries/s (median) | {} | {} | {} | ≥ 0.8 |\n",
        fmt(pd, ""),
        fmt(nd, ""),
        fmt(dr.map(|x| x * 100.0), " %")
    ));
    let (pp, np) = (p99(p), native.and_then(p99));
    let pr = pp.zip(np).map(|(a, b)| a / b);
    let rate = p.latency_basis(HALF_OWN).map(|l| l.rate_msgs_per_s).unwrap_or(0.0);
    out.push_str(&format!(
        "| p99 at {rate:.1} msg/s (native's half max) | {} | {} | {} | ≤ 1.5 |\n",
        fmt(pp, " ms"),
        fmt(np, " ms"),
        fmt(pr.map(|x| x * 100.0), " %")
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_frames_carry_a_findable_tag() {
        let (url, body) = publish("http://127.0.0.1:1", "b7.42", "hello", 600);
        assert!(url.contains("auth_signature=") && url.contains("body_md5="), "{url}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        let data = v["data"].as_str().unwrap();
        // the frame clients receive: data as a JSON string
        let frame = json!({"event": "message.created", "channel": CHANNEL, "data": data}).to_string();
        assert_eq!(switchboard_bench::tag::find(&frame), Some((7, 42)));
        assert!(frame.len() >= 550 && frame.len() <= 650, "{}", frame.len());
    }
}
