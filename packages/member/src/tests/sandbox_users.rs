//! Who may use a sandbox: the list its bot (or an operator) sets, and an unlisted sandbox open only
//! in local mode.

use super::Sim;
use crate::Command;
use serde_json::json;
use switchboard_core::limits::MAX_SANDBOX_USERS;

fn access(sim: &Sim, user: &str, open_unlisted: bool) -> Result<u16, (u16, String)> {
    let cmd = Command::SandboxAccess { sandbox_id: "sb1".into(), user: user.into(), open_unlisted };
    match sim.run(cmd).0 {
        Ok(r) => Ok(r.status),
        Err(e) => Err((e.status(), e.message)),
    }
}

#[test]
fn unlisted_sandbox_is_open_only_in_local_mode() {
    let sim = Sim::new();
    assert_eq!(access(&sim, "alice", true), Ok(204));
    let (status, message) = access(&sim, "alice", false).unwrap_err();
    assert_eq!(status, 403);
    assert!(message.contains("PUT /bot/v1/sandboxes/sb1/users"), "{message}");
}

#[test]
fn the_list_decides_and_is_replaced_whole() {
    let sim = Sim::new();
    let (r, _) = sim.ok(Command::SetSandboxUsers { users: vec!["alice".into(), "bob".into(), "alice".into()] });
    assert_eq!(r.status, 200);
    assert_eq!(r.body, Some(json!({"users": ["alice", "bob"]})), "duplicates dropped, order kept");
    for open in [true, false] {
        assert_eq!(access(&sim, "alice", open), Ok(204));
        assert_eq!(access(&sim, "carol", open).unwrap_err().0, 403, "a listed sandbox is closed even in local mode");
    }
    sim.ok(Command::SetSandboxUsers { users: vec!["carol".into()] });
    assert_eq!(access(&sim, "carol", false), Ok(204));
    assert_eq!(access(&sim, "alice", false).unwrap_err().0, 403, "replaced, not merged");
    // An empty list is a list: nobody, even in local mode.
    sim.ok(Command::SetSandboxUsers { users: vec![] });
    assert_eq!(access(&sim, "carol", true).unwrap_err().0, 403);
}

#[test]
fn bad_lists_are_refused_and_change_nothing() {
    let sim = Sim::new();
    sim.ok(Command::SetSandboxUsers { users: vec!["alice".into()] });
    let too_many: Vec<String> = (0..=MAX_SANDBOX_USERS).map(|i| format!("u{i}")).collect();
    for bad in [vec!["bot:kiloclaw:sb2".to_string()], vec!["".to_string()], too_many] {
        let (r, _) = sim.run(Command::SetSandboxUsers { users: bad });
        assert_eq!(r.unwrap_err().status(), 400);
    }
    assert_eq!(access(&sim, "alice", false), Ok(204));
}
