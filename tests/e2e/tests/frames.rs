//! The socket frame schemas (`docs/schemas/frames.json`, #20) against the real workers: a scenario
//! over the hub, the conversation socket and the live channel that covers every event kind, with
//! every frame received and every frame the client sent validated by ajv (`tests/e2e/js/frames.test.mjs`);
//! an unknown frame type, a field the schemas do not allow, or an event kind never seen fails it.

use switchboard_e2e::node::run_client_test;
use switchboard_e2e::Server;

#[tokio::test(flavor = "multi_thread")]
async fn every_frame_matches_the_schemas() {
    let server = Server::start(&[]);
    run_client_test(&server, "tests/e2e/js/frames.test.mjs").await;
}
