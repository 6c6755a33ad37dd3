//! Send idempotency: a repeated `clientId` answers the original while its record lives, an
//! expired record is replaced, and the same key with other content is a conflict.

use super::*;

#[test]
fn a_repeated_client_id_answers_the_original_until_the_record_expires() {
    let c = conversation();
    create(&c, &["bob"]);
    let (first, _) = send(&c, "alice", "one", Some("k"), T0 + 1);
    let first = first.unwrap().body.unwrap();
    let (again, e) = send(&c, "alice", "one", Some("k"), T0 + 30_000);
    let again = again.unwrap();
    assert_eq!(again.status, 200);
    assert_eq!(again.body.unwrap()["messageId"], first["messageId"]);
    assert!(e.broadcast.is_empty() && e.push.is_none(), "a repeat changes nothing");
    // Another sender's identical key is another message.
    let (bobs, _) = send(&c, "bob", "one", Some("k"), T0 + 30_001);
    assert_eq!(bobs.unwrap().status, 201);
    // The record lives 60 s; the alarm after that sweeps it, and the key makes a new message.
    let a = c.alarm_start(T0 + 60_001).unwrap();
    assert!(a.flush.is_some());
    let (later, _) = send(&c, "alice", "one", Some("k"), T0 + 60_002);
    let later = later.unwrap();
    assert_eq!(later.status, 201);
    assert_ne!(later.body.unwrap()["messageId"], first["messageId"]);
}

#[test]
fn an_expired_record_not_yet_swept_is_replaced_by_the_next_send() {
    let c = conversation();
    create(&c, &["bob"]);
    let (first, _) = send(&c, "alice", "one", Some("k"), T0 + 1);
    let first = first.unwrap().body.unwrap();
    // Still live one ms before it lapses.
    let (live, _) = send(&c, "alice", "one", Some("k"), T0 + 60_000);
    assert_eq!(live.unwrap().body.unwrap()["messageId"], first["messageId"]);
    // Lapsed (no alarm has run): the key makes a new message, and the record now names it.
    let (second, e) = send(&c, "alice", "one", Some("k"), T0 + 60_001);
    let second = second.unwrap();
    assert_eq!(second.status, 201);
    assert_eq!(e.broadcast.len(), 1);
    let second = second.body.unwrap();
    assert_ne!(second["messageId"], first["messageId"]);
    let (again, e) = send(&c, "alice", "one", Some("k"), T0 + 60_002);
    let again = again.unwrap();
    assert_eq!((again.status, again.body.unwrap()["messageId"].clone()), (200, second["messageId"].clone()));
    assert!(e.broadcast.is_empty());
}

#[test]
fn a_client_id_reused_for_other_content_is_a_conflict() {
    let c = conversation();
    create(&c, &["bob"]);
    let (first, _) = send(&c, "alice", "one", Some("k"), T0 + 1);
    let first = first.unwrap().body.unwrap();
    let before = c.accept("bob", Some(0), &ctx(T0)).unwrap();
    let (other, e) = send(&c, "alice", "two", Some("k"), T0 + 2);
    let err = other.unwrap_err();
    assert_eq!((err.status(), err.code), (409, ErrorCode::IdempotencyConflict));
    assert!(e.broadcast.is_empty());
    assert_eq!(c.accept("bob", Some(0), &ctx(T0)).unwrap(), before, "nothing was logged");
    // The same content is still the original, marked as a repeat.
    let (same, _) = send(&c, "alice", "one", Some("k"), T0 + 3);
    let same = same.unwrap().body.unwrap();
    assert_eq!((same["messageId"].clone(), same["duplicate"].clone()), (first["messageId"].clone(), json!(true)));
    // Once the original is edited, a retry from before the edit (its first content) is still the
    // original; another key's content is not compared either.
    let id = first["messageId"].as_str().unwrap().to_string();
    let edit = Command::EditMessage {
        message_id: id.clone(),
        content: json!([{"type": "text", "text": "one, edited"}]),
        timestamp: T0 + 4,
    };
    c.handle("alice", edit, &ctx(T0 + 4)).0.unwrap();
    let (retry, e) = send(&c, "alice", "one", Some("k"), T0 + 4);
    let retry = retry.unwrap();
    assert_eq!((retry.status, retry.body.unwrap()["messageId"].clone()), (200, json!(id)));
    assert!(e.broadcast.is_empty());
    // Once the original is deleted, a retry is not compared with it.
    c.handle("alice", Command::DeleteMessage { message_id: id.clone() }, &ctx(T0 + 4)).0.unwrap();
    let (after, _) = send(&c, "alice", "two", Some("k"), T0 + 5);
    assert_eq!(after.unwrap().body.unwrap()["messageId"], json!(id));
}
