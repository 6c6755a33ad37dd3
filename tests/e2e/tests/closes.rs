//! Closes that complete (issue #18): the closes the server sends that do complete (refused live
//! subscriptions 4001/4002, an oversize frame 1009) and a client's own close of each socket kind end
//! the TCP connection promptly, so a browser's `onclose` fires. Checked with Node's `ws`, which
//! reports `close` only once the connection has ended (`tests/e2e/js/closes.test.mjs`); the elapsed
//! times are printed, the assertion is only that `close` arrives (within a generous 5 s). The closes
//! of hibernatable sockets that the object sends first (leave 4003, bot offline 4002, replaced 4009)
//! do not complete under workerd and are not tested here (see the comment in the JS file; #18 open).

use switchboard_e2e::{run_node_tests, Server};

#[tokio::test(flavor = "multi_thread")]
async fn every_close_ends_the_connection() {
    let server = Server::start(&[]);
    run_node_tests("tests/e2e/js/closes.test.mjs", vec![("SWITCHBOARD_URL", server.base_url())]).await;
}
