//! The TypeScript client library (`packages/client-ts`) against the real workers, in Node with `ws`
//! (`tests/e2e/js/client.test.mjs`): two users chat through it; a dropped network (sockets killed
//! without a close frame, an answer lost) is resumed with exactly the missed events, and an outbox
//! send during the drop arrives exactly once. Fails when node exits non-zero.

use switchboard_e2e::node::run_client_test;
use switchboard_e2e::Server;

#[tokio::test(flavor = "multi_thread")]
async fn client_library_against_the_server() {
    let server = Server::start(&[]);
    run_client_test(&server, "tests/e2e/js/client.test.mjs").await;
}
