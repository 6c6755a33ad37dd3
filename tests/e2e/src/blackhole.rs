//! A TCP forwarder between test clients and a server whose connections can *vanish*: after
//! [`Blackhole::vanish`] nothing more is forwarded in either direction, and the connections to the
//! server are held open (no close frame, no FIN, no RST) until the `Blackhole` is dropped. To the
//! server this looks like a client whose network went away: only its own timeouts (missing pings)
//! can tell that the client is gone.
//!
//! Use it by pointing an [`Api`](crate::Api) at it: `let api = bh.api(&api)`; sockets opened with
//! that `Api` go through the blackhole (plain HTTP requests too).

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub struct Blackhole {
    pub port: u16,
    vanish: watch::Sender<bool>,
    /// Connections held open after vanishing: (client side, server side).
    held: Arc<Mutex<Vec<(TcpStream, TcpStream)>>>,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Blackhole {
    /// Listens on a free port of 127.0.0.1 and forwards each connection to `upstream`
    /// (`host:port`). Must be called inside a tokio runtime (the forwarding runs on it).
    pub async fn start(upstream: &str) -> Blackhole {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind blackhole");
        let port = listener.local_addr().expect("blackhole addr").port();
        let (vanish, _) = watch::channel(false);
        let held: Arc<Mutex<Vec<(TcpStream, TcpStream)>>> = Arc::default();
        let tasks: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let upstream = upstream.to_string();
        let accept = {
            let vanish = vanish.clone();
            let held = held.clone();
            let tasks = tasks.clone();
            tokio::spawn(async move {
                loop {
                    let Ok((client, _)) = listener.accept().await else { return };
                    let Ok(server) = TcpStream::connect(&upstream).await else { continue };
                    client.set_nodelay(true).ok();
                    server.set_nodelay(true).ok();
                    let rx = vanish.subscribe();
                    let held = held.clone();
                    let t = tokio::spawn(forward(client, server, rx, held));
                    tasks.lock().unwrap().push(t);
                }
            })
        };
        tasks.lock().unwrap().push(accept);
        Blackhole { port, vanish, held, tasks }
    }

    /// An `Api` like `api` whose HTTP requests and sockets go through this blackhole.
    pub fn api(&self, api: &crate::Api) -> crate::Api {
        let mut a = api.clone();
        a.base = format!("http://127.0.0.1:{}", self.port);
        a.ws_base = format!("ws://127.0.0.1:{}", self.port);
        // reqwest keeps connections per host: a separate client so none is shared with `api`
        a.http = reqwest::Client::builder()
            .no_proxy()
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .expect("http client");
        a
    }

    /// From now on nothing is forwarded; every connection through the blackhole stays open.
    pub fn vanish(&self) {
        self.vanish.send_replace(true);
    }
}

impl Drop for Blackhole {
    fn drop(&mut self) {
        for t in self.tasks.lock().unwrap_or_else(|e| e.into_inner()).drain(..) {
            t.abort();
        }
        self.held.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

async fn forward(
    client: TcpStream,
    server: TcpStream,
    mut vanish: watch::Receiver<bool>,
    held: Arc<Mutex<Vec<(TcpStream, TcpStream)>>>,
) {
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let mut up = vec![0u8; 16 * 1024];
    let mut down = vec![0u8; 16 * 1024];
    let mut up_open = true;
    let mut down_open = true;
    while !*vanish.borrow() && (up_open || down_open) {
        tokio::select! {
            biased;
            _ = vanish.changed() => {}
            // read() on a TcpStream half is cancel-safe: nothing read is lost when another branch wins
            r = cr.read(&mut up), if up_open && !*vanish.borrow() => match r {
                _ if *vanish.borrow() => {}
                Ok(0) | Err(_) => {
                    up_open = false;
                    let _ = sw.shutdown().await;
                }
                Ok(n) => {
                    if sw.write_all(&up[..n]).await.is_err() {
                        up_open = false;
                    }
                }
            },
            r = sr.read(&mut down), if down_open && !*vanish.borrow() => match r {
                _ if *vanish.borrow() => {}
                Ok(0) | Err(_) => {
                    down_open = false;
                    let _ = cw.shutdown().await;
                }
                Ok(n) => {
                    if cw.write_all(&down[..n]).await.is_err() {
                        down_open = false;
                    }
                }
            },
        }
    }
    if *vanish.borrow() {
        // hold both sides open, silent, until the blackhole is dropped
        if let (Ok(c), Ok(s)) = (cr.reunite(cw), sr.reunite(sw)) {
            held.lock().unwrap_or_else(|e| e.into_inner()).push((c, s));
        }
    }
}
