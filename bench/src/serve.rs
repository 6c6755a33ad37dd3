//! The serve process: `node bench/serve.mjs` (one workerd serving every server under test), its
//! ready line (the servers' URLs, workerd's pid), and its stop.

use crate::net::{Res, JWT_SECRET};
use crate::Config;
use serde_json::Value;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub struct Serve {
    child: Child,
    pub urls: std::collections::HashMap<String, String>,
    pub ours: String,
    pub workerd: u32,
    pub node: u32,
}

impl Serve {
    /// Starts `node bench/serve.mjs` on `state` and waits for its ready line.
    pub async fn start(cfg: &Config, state: &Path, core: &str, inspector: Option<u16>) -> Res<Serve> {
        std::fs::create_dir_all(state).map_err(|e| format!("mkdir {}: {e}", state.display()))?;
        let mut cmd = Command::new("node");
        cmd.arg(cfg.root.join("bench/serve.mjs")).arg("--state").arg(state).arg("--build").arg(&cfg.build).args([
            "--core",
            core,
            "--secret",
            JWT_SECRET,
            "--notifications",
            &cfg.notifications,
        ]);
        for v in &cfg.serve_vars {
            cmd.args(["--var", v]);
        }
        for v in &cfg.variants {
            cmd.args(["--variant", v]);
        }
        if let Some(p) = inspector {
            cmd.args(["--inspector", &p.to_string()]);
        }
        let err = std::fs::File::create(state.join("serve.stderr")).map_err(|e| e.to_string())?;
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::from(err)).kill_on_drop(true);
        let mut child = cmd.spawn().map_err(|e| format!("start node bench/serve.mjs: {e}"))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(90), lines.next_line())
            .await
            .map_err(|_| "serve.mjs did not become ready within 90 s".to_string())?
            .map_err(|e| e.to_string())?
            .ok_or_else(|| {
                let log = std::fs::read_to_string(state.join("serve.stderr")).unwrap_or_default();
                format!("serve.mjs exited before ready:\n{log}")
            })?;
        let v: Value = serde_json::from_str(&line).map_err(|e| format!("serve.mjs said {line:?}: {e}"))?;
        let urls: std::collections::HashMap<String, String> = v["urls"]
            .as_object()
            .ok_or_else(|| format!("serve.mjs: no urls in {line}"))?
            .iter()
            .filter_map(|(k, u)| u.as_str().map(|u| (k.clone(), u.to_string())))
            .collect();
        let node = child.id().unwrap_or(0);
        Ok(Serve {
            ours: urls.get("ours").cloned().ok_or("serve.mjs: no ours url")?,
            urls,
            workerd: v["workerd_pid"].as_u64().ok_or("no workerd_pid")? as u32,
            node,
            child,
        })
    }

    pub fn base(&self, server: &str) -> &str {
        self.urls.get(server).map(String::as_str).unwrap_or("http://127.0.0.1:9")
    }

    /// Closes its stdin (it disposes workerd and exits); kills it after 15 s.
    pub async fn stop(mut self) {
        drop(self.child.stdin.take());
        if tokio::time::timeout(Duration::from_secs(15), self.child.wait()).await.is_err() {
            let _ = self.child.kill().await;
        }
        // workerd exits with its parent's Miniflare dispose; make sure it is gone before the next phase.
        for _ in 0..50 {
            if !Path::new(&format!("/proc/{}", self.workerd)).exists() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until workerd has been nearly idle (< 6% of a core) for two 200 ms windows (at most
    /// 30 s): background work left by the previous run (an alarm, closing sockets) must not land
    /// in the next one.
    pub async fn quiesce(&self) {
        self.quiesce_for(2).await
    }

    /// As `quiesce`, with `windows` calm 200 ms windows in a row. After a run of our worker use
    /// more: its list-flush alarm fires up to ACTIVITY_FLUSH_MS (1 s) after the last message.
    pub async fn quiesce_for(&self, windows: usize) {
        let mut calm = 0;
        for _ in 0..150 {
            let a = crate::cpu::proc_cpu_secs(self.workerd);
            tokio::time::sleep(Duration::from_millis(200)).await;
            let b = crate::cpu::proc_cpu_secs(self.workerd);
            calm = if (b - a) / 0.2 < 0.06 { calm + 1 } else { 0 };
            if calm >= windows {
                return;
            }
        }
    }
}
