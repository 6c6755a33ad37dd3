//! Node test files of `tests/e2e/js/` that use the TypeScript client library
//! (`packages/client-ts`), run against a server.

use crate::{repo_root, Server};
use std::process::Command;

/// Builds the client library (seconds; a no-op when up to date: `SWITCHBOARD_PREBUILT=1` makes
/// `scripts/build` skip it), then runs `node --test <script>` with `SWITCHBOARD_URL` set to the
/// server; panics with node's output and the server's log tail when node fails.
pub async fn run_client_test(server: &Server, script: &'static str) {
    let root = repo_root();
    let base = server.base_url();
    let out = tokio::task::spawn_blocking(move || {
        let built = Command::new("bash").arg("packages/client-ts/scripts/build.sh").current_dir(&root).status();
        assert!(built.is_ok_and(|s| s.success()), "packages/client-ts/scripts/build.sh failed");
        Command::new("node")
            .args(["--test", "--test-reporter=spec", "--test-concurrency=1", "--test-timeout=120000", script])
            .current_dir(&root)
            .env("SWITCHBOARD_URL", base)
            .output()
            .expect("run node (Node 20 is required)")
    })
    .await
    .expect("node runner");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}\n{stderr}");
    assert!(out.status.success(), "{script} failed ({}):\n{stdout}\n{stderr}\n{}", out.status, server.log_tail(40));
}
