//! Closes that complete (issue #18): every close the server sends (refused live subscriptions
//! 4001/4002, a live subscriber closed when the bot goes offline 4002, leave and removal 4003, an
//! oversize frame 1009, a replaced hub session 4009) and a client's own close of each socket kind end
//! the TCP connection promptly, so a browser's `onclose` fires. Checked with Node's `ws`, which
//! reports `close` only once the connection has ended (`tests/e2e/js/closes.test.mjs`); the elapsed
//! times are printed, the assertion is that `close` arrives with its code within 5 s. The sockets ping
//! at open, as the protocol asks and the client library does: under workerd a hibernatable socket that
//! has sent nothing is released only when its object hibernates (docs/reliability.md, section 4).

use switchboard_e2e::{run_node_tests, Server};

#[tokio::test(flavor = "multi_thread")]
async fn every_close_ends_the_connection() {
    let server = Server::start(&[]);
    run_node_tests("tests/e2e/js/closes.test.mjs", vec![("SWITCHBOARD_URL", server.base_url())]).await;
}
