//! The background reconcile of members' lists (#18): a conversation whose members' list entries
//! drifted — here every member's entry deleted straight from their objects' databases while the
//! server was stopped, as a lost update would leave them — gets them back without any new user
//! action: the conversation's alarm, `LIST_RECONCILE_MS` after its creation (or after the list flush
//! that followed its last message, whichever is first: it is never postponed), tells every member
//! the whole entry again.

use std::time::{Duration, Instant};
use switchboard_e2e::serde_json::{json, Value};
use switchboard_e2e::*;

/// The reconcile's delay in this test (production: 10 min).
const RECONCILE_MS: u64 = 30_000;

fn entry<'a>(list: &'a [Value], conv: &str) -> Option<&'a Value> {
    list.iter().find(|i| i["conversationId"] == json!(conv))
}

#[tokio::test(flavor = "multi_thread")]
async fn drifted_list_entries_are_repaired_by_the_reconcile_without_user_action() {
    let server = Server::start(&[("LIST_RECONCILE_MS", &RECONCILE_MS.to_string())]);
    let api = Api::new(&server);
    let sb = uid("sb-reconcile");
    let (alice, bob) = (api.user("alice").await, api.user("bob").await);
    let bot = api.bot_token(&sb).await;
    let created = Instant::now();
    let conv = api.create_conversation(&alice, &sb, Some("Drift"), &[&bob.id]).await;
    let sent = api.send_text(&alice, &conv, "the last word").await;
    let sent_at = sent["createdAt"].as_i64().expect("createdAt");
    // The list flush that follows the message: bob's entry shows its activity; the reconcile is due a
    // period after the creation.
    api.wait_for_list(&bob, "", "the flush", |l| {
        entry(l, &conv).is_some_and(|e| e["lastActivityAt"] == json!(sent_at))
    })
    .await;
    let before = entry(&api.all_conversations(&bob, "").await, &conv).cloned().expect("bob's entry");

    // Drift: every member's entry (alice's, bob's, the bot's) is deleted from their objects.
    let mut deleted = Vec::new();
    server.restart_after(|dir| {
        let holders =
            storage::databases_where(dir, "SELECT COUNT(*) FROM conversations WHERE conversation_id = ?1", &conv);
        for db in holders {
            let n = storage::write(&db, "DELETE FROM conversations WHERE conversation_id = ?1", &conv);
            deleted.push(n.expect("delete the entry"));
        }
    });
    assert_eq!(deleted, vec![1, 1, 1], "three members' entries deleted");
    if created.elapsed() < Duration::from_millis(RECONCILE_MS - 5_000) {
        // (Only when the restart was quick enough that the reconcile cannot have run yet.)
        assert!(entry(&api.all_conversations(&bob, "").await, &conv).is_none(), "the drift is there");
    }

    // No user action from here: the reconcile brings every entry back, as it was.
    let deadline = Instant::now() + Duration::from_secs(180);
    let bot_path = format!("/bot/v1/sandboxes/{sb}/conversations");
    let (alice_entry, bob_entry, bot_listed) = loop {
        let a = entry(&api.all_conversations(&alice, "").await, &conv).cloned();
        let b = entry(&api.all_conversations(&bob, "").await, &conv).cloned();
        let bot_list = api.get(&bot_path, &bot).await.expect(200).clone();
        let bot_listed = bot_list["conversations"].as_array().is_some_and(|l| entry(l, &conv).is_some());
        if (a.is_some() && b.is_some() && bot_listed) || Instant::now() > deadline {
            break (a, b, bot_listed);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let bob_entry = bob_entry.expect("bob's entry was not repaired");
    let alice_entry = alice_entry.expect("alice's entry was not repaired");
    assert!(bot_listed, "the bot's entry was not repaired");
    for field in ["conversationId", "title", "sandboxId", "lastActivityAt", "joinedAt"] {
        assert_eq!(bob_entry[field], before[field], "bob's {field}");
        assert_eq!(alice_entry[field], before[field], "alice's {field}");
    }
    assert!(
        created.elapsed() >= Duration::from_millis(RECONCILE_MS - 1_000),
        "repaired by the reconcile, after its delay"
    );
}
