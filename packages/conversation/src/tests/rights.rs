//! Who may do what to the membership: people add (the bot cannot), the owner removes anyone but the
//! bot, everyone may remove themself, only people rename; every member sees who added whom.

use super::{conversation, create, ctx, frame, send, types, T0};
use crate::Command;
use serde_json::json;
use switchboard_core::limits::close;

const BOT: &str = "bot:kiloclaw:sb1";

fn status(c: &crate::Conversation<switchboard_sqlite_store::SqliteStore>, who: &str, cmd: Command, at: i64) -> u16 {
    match c.handle(who, cmd, &ctx(at)).0 {
        Ok(r) => r.status,
        Err(e) => e.status(),
    }
}

fn remove(member: &str) -> Command {
    Command::RemoveMember { member: member.into() }
}

#[test]
fn the_detail_names_the_owner_and_who_added_whom() {
    let c = conversation();
    create(&c, &["bob"]);
    let (r, e) = c.handle("bob", Command::AddMember { member: "carol".into() }, &ctx(T0 + 1));
    assert_eq!(r.unwrap().status, 201);
    let joined = frame(&e.broadcast[0]);
    assert_eq!(joined["payload"], json!({"conversationId": super::CID, "memberId": "carol", "addedBy": "bob"}));
    let detail = c.handle("carol", Command::Get, &ctx(T0 + 2)).0.unwrap().body.unwrap();
    let who: Vec<(String, serde_json::Value, serde_json::Value)> = detail["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["id"].as_str().unwrap().to_string(), m["addedBy"].clone(), m["role"].clone()))
        .collect();
    assert_eq!(
        who,
        vec![
            ("alice".into(), json!(null), json!("owner")),
            ("bob".into(), json!("alice"), json!(null)),
            (BOT.into(), json!("alice"), json!(null)),
            ("carol".into(), json!("bob"), json!(null)),
        ]
    );
}

#[test]
fn the_detail_shows_how_far_each_member_has_read() {
    let c = conversation();
    create(&c, &["bob"]);
    let sent = |who: &str, text: &str, now: i64| {
        let body = send(&c, who, text, None, now).0.unwrap().body.unwrap();
        body["messageId"].as_str().unwrap().to_string()
    };
    let (first, second) = (sent("alice", "one", T0 + 1), sent("alice", "two", T0 + 2));
    c.handle("bob", Command::MarkRead { message_id: second.clone() }, &ctx(T0 + 3)).0.unwrap();
    // an older id does not move a read position back
    c.handle("bob", Command::MarkRead { message_id: first.clone() }, &ctx(T0 + 4)).0.unwrap();
    c.handle("alice", Command::MarkRead { message_id: first.clone() }, &ctx(T0 + 5)).0.unwrap();
    let detail = c.handle("bob", Command::Get, &ctx(T0 + 6)).0.unwrap().body.unwrap();
    let reads: Vec<(String, serde_json::Value, serde_json::Value)> = detail["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["id"].as_str().unwrap().to_string(), m["lastReadMessageId"].clone(), m["lastReadAt"].clone()))
        .collect();
    assert_eq!(
        reads,
        vec![
            ("alice".into(), json!(first), json!(T0 + 5)),
            ("bob".into(), json!(second), json!(T0 + 3)),
            (BOT.into(), json!(null), json!(null)),
        ]
    );
}

#[test]
fn the_bot_neither_adds_nor_renames() {
    let c = conversation();
    create(&c, &[]);
    assert_eq!(status(&c, BOT, Command::AddMember { member: "dave".into() }, T0 + 1), 403);
    assert_eq!(status(&c, BOT, Command::Rename { title: "x".into() }, T0 + 2), 403);
    assert_eq!(status(&c, "alice", Command::Rename { title: "x".into() }, T0 + 3), 200);
    // Nothing was written by the refusals: dave is not a member.
    assert_eq!(send(&c, "dave", "hi", None, T0 + 4).0.unwrap_err().status(), 403);
}

#[test]
fn the_owner_removes_others_and_the_removed_lose_their_sockets_and_rights() {
    let c = conversation();
    create(&c, &["bob", "carol"]);
    // Bob is not the owner: he removes only himself.
    assert_eq!(status(&c, "bob", remove("carol"), T0 + 1), 403);
    let (r, e) = c.handle("alice", remove("carol"), &ctx(T0 + 2));
    assert_eq!(r.unwrap().status, 204);
    assert_eq!(e.close_member, vec![("carol".to_string(), close::MEMBERSHIP_ENDED, "removed from the conversation")]);
    assert_eq!(types(&e), vec![("member.left".into(), Some(1))]);
    assert_eq!(
        frame(&e.broadcast[0])["payload"],
        json!({"conversationId": super::CID, "memberId": "carol", "removedBy": "alice"})
    );
    assert_eq!(send(&c, "carol", "x", None, T0 + 3).0.unwrap_err().status(), 403);
    assert_eq!(status(&c, "carol", Command::Get, T0 + 3), 403);
    // A former member cannot remove anyone. The owner removing carol again (a retry) answers 204
    // with nothing recorded or closed (the worker ends her other channels again); anyone else, or
    // a non-member who never was one, 404.
    assert_eq!(status(&c, "carol", remove("bob"), T0 + 4), 403);
    let (r, e) = c.handle("alice", remove("carol"), &ctx(T0 + 4));
    assert_eq!(r.unwrap().status, 204);
    assert!(e.broadcast.is_empty() && e.close_member.is_empty(), "{e:?}");
    assert_eq!(status(&c, "bob", remove("carol"), T0 + 4), 404);
    assert_eq!(status(&c, "alice", remove("zed"), T0 + 4), 404);
    // Bob removes himself, like leaving.
    let (r, e) = c.handle("bob", remove("bob"), &ctx(T0 + 5));
    assert_eq!(r.unwrap().status, 204);
    assert_eq!(e.close_member, vec![("bob".to_string(), close::MEMBERSHIP_ENDED, "left the conversation")]);
    assert_eq!(frame(&e.broadcast[0])["payload"], json!({"conversationId": super::CID, "memberId": "bob"}));
}

#[test]
fn the_bot_cannot_be_removed_by_anyone() {
    let c = conversation();
    create(&c, &["bob"]);
    assert_eq!(status(&c, "alice", remove(BOT), T0 + 1), 403);
    assert_eq!(status(&c, "bob", remove(BOT), T0 + 1), 403);
    assert_eq!(status(&c, BOT, remove(BOT), T0 + 1), 403);
    assert_eq!(status(&c, BOT, remove("bob"), T0 + 1), 403, "the bot is not the owner");
    assert_eq!(send(&c, BOT, "still here", None, T0 + 2).0.unwrap().status, 201);
}

/// A member who leaves or is removed while typing is seen to stop (`typing.stop` before
/// `member.left`); one whose typing already ended, or who was not typing, is not.
#[test]
fn a_member_who_leaves_while_typing_is_seen_to_stop() {
    let c = conversation();
    create(&c, &["bob", "carol", "dave"]);
    for who in ["bob", "carol"] {
        c.handle(who, Command::Typing { stop: false }, &ctx(T0)).0.unwrap();
    }
    let (r, e) = c.handle("bob", Command::Leave, &ctx(T0 + 100));
    assert_eq!(r.unwrap().status, 204);
    let t = types(&e);
    assert_eq!((t[0].0.as_str(), t[0].1), ("typing.stop", None), "{t:?}");
    assert_eq!(frame(&e.broadcast[0])["payload"]["memberId"], json!("bob"));
    assert_eq!(t[1].0, "member.left", "{t:?}");
    // dave was not typing; carol's typing ran out before she was removed.
    for (who, at) in [("dave", T0 + 200), ("carol", T0 + 3_600_000)] {
        let (r, e) = c.handle("alice", remove(who), &ctx(at));
        assert_eq!(r.unwrap().status, 204);
        assert!(types(&e).iter().all(|(name, _)| name != "typing.stop"), "{who}: {:?}", types(&e));
    }
}
