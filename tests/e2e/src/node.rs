//! Node test files of `tests/e2e/js/` that use the TypeScript client library
//! (`packages/client-ts`), run against a server.

use crate::{node_test, repo_root, Server};
use std::process::Command;

/// Builds the client library (seconds; a no-op when up to date: `SWITCHBOARD_PREBUILT=1` makes
/// `scripts/build` skip it), then runs `node --test <script>` with `SWITCHBOARD_URL` set to the
/// server; panics with node's output and the server's log tail when node fails.
pub async fn run_client_test(server: &Server, script: &'static str) {
    let root = repo_root();
    let built = tokio::task::spawn_blocking(move || {
        Command::new("bash").arg("packages/client-ts/scripts/build.sh").current_dir(&root).status()
    })
    .await
    .expect("build runner");
    assert!(built.is_ok_and(|s| s.success()), "packages/client-ts/scripts/build.sh failed");
    let (status, output) = node_test(script, vec![("SWITCHBOARD_URL", server.base_url())]).await;
    assert!(status.success(), "{script} failed ({status}):\n{output}\n{}", server.log_tail(40));
}
