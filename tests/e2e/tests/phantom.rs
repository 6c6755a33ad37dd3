//! No phantom objects (issue #18): every read (and write) of a conversation id that was never
//! created answers 404, and leaves the id free: creating nothing there, it still reads as unknown
//! afterwards. Reads that reach a member's object for a member never stored (a new user's list, the
//! status of a bot whose sandbox was never used) answer empty and write nothing either: on a server
//! of its own, the test then finds no object database under the state directory holding a table.
//! (packages/conversation's and packages/member's `phantom` tests check the same natively.)

use serde_json::json;
use switchboard_e2e::{now_ms, shared, storage, text, uid, Api, Server, Ws, WsAuth};

/// A well-formed ULID no conversation has (created ids come from the server's clock and randomness).
fn never_created() -> String {
    const CROCKFORD: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let mut n = now_ms() as u128 * 1_000_003 + std::process::id() as u128;
    let mut id = String::from("7ZZZ");
    for _ in 0..22 {
        id.push(CROCKFORD[(n % 32) as usize] as char);
        n /= 7;
    }
    id
}

#[tokio::test(flavor = "multi_thread")]
async fn every_route_answers_404_for_a_conversation_never_created() {
    let api = Api::new(shared());
    let alice = api.user("alice").await;
    let id = never_created();
    for _ in 0..2 {
        for path in ["", "/messages", "/presence", "/bot-status", "/bridges"] {
            let r = api.get(&format!("/v1/conversations/{id}{path}"), &alice).await;
            r.expect_error(404, "not_found");
        }
        let r = api.post(&format!("/v1/conversations/{id}/mark-read"), &alice, &json!({"lastSeenMessageId": id})).await;
        r.expect_error(404, "not_found");
        api.post_empty(&format!("/v1/conversations/{id}/typing"), &alice).await.expect_error(404, "not_found");
        let r = api.post("/v1/messages", &alice, &json!({"conversationId": id, "content": text("hi")})).await;
        r.expect_error(404, "not_found");
        let r = Ws::refused(&api, &id, WsAuth::Bearer(&alice.token), Some("0")).await;
        assert_eq!(r.status, 404, "{}", r.text);
        // The live channel refuses with its close code for an unknown conversation.
        let mut live =
            Ws::open_path(&api, &format!("/v1/conversations/{id}/live"), WsAuth::Bearer(&alice.token), None, "live")
                .await
                .unwrap_or_else(|r| panic!("live refused {} {}", r.status, r.text));
        let (code, _) = live.expect_close(std::time::Duration::from_secs(5)).await;
        assert_eq!(code, 4001);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn reads_of_members_never_stored_write_no_storage() {
    let server = Server::start(&[]);
    let api = Api::new(&server);
    let reader = api.user("phantom-reader").await;
    let sb = uid("phantom-sb");
    let bot = api.bot_token(&sb).await;
    for _ in 0..2 {
        let list = api.get("/v1/conversations", &reader).await.expect(200).clone();
        assert_eq!((list["conversations"].clone(), list["hasMore"].clone()), (json!([]), json!(false)), "{list}");
        let list = api.get(&format!("/v1/conversations?sandboxId={sb}"), &reader).await.expect(200).clone();
        assert_eq!(list["conversations"], json!([]));
        let status = api.get(&format!("/bot/v1/sandboxes/{sb}/bot-status"), &bot).await.expect(200).clone();
        assert_eq!(status["online"], json!(false), "{status}");
        // A conversation never created: 404, and nothing stored for it either.
        api.get(&format!("/v1/conversations/{}", never_created()), &reader).await.expect_error(404, "not_found");
    }
    let stored = storage::databases_with_tables(server.persist_dir());
    assert!(stored.is_empty(), "objects that were only read hold tables: {stored:?}");
    // The check sees storage when there is some: a write makes it.
    api.create_conversation(&reader, &sb, Some("real"), &[]).await;
    assert!(!storage::databases_with_tables(server.persist_dir()).is_empty(), "a write left no table to find");
}
