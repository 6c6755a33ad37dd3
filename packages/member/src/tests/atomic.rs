//! Every command is all or nothing: with the Nth statement failing, for every N, storage is left
//! exactly as it was, no effect is asked for, and the next healthy command behaves as if the failed
//! one never ran.

use super::*;
use crate::StoreExt;
use switchboard_sqlite_store::FailingStore;

/// Runs `step` once healthy to count its statements, then, from the same starting state, with each
/// of them failing in turn.
fn each_failure(setup: impl Fn() -> Sim<FailingStore>, step: impl Fn(&mut Sim<FailingStore>) -> (bool, Effects)) {
    let mut sim = setup();
    sim.m.store().count.set(0);
    let (ok, _) = step(&mut sim);
    assert!(ok, "the healthy run fails");
    let statements = sim.m.store().count.get();
    assert!(statements > 1, "{statements}");
    for n in 1..=statements {
        let mut sim = setup();
        let before = sim.m.store().inner.dump();
        sim.m.store().fail_in(n);
        let (ok, e) = step(&mut sim);
        assert!(!ok, "statement {n} failed but the command succeeded");
        assert!(e.is_empty(), "statement {n}: {e:?}");
        assert_eq!(sim.m.store().inner.dump(), before, "statement {n} left a trace");
        sim.m.store().healthy();
        // Memory was not left ahead of storage, nor the socket's session closed: the next event
        // takes the stored seq's successor, and reaches the socket.
        let stored = sim.m.store().inner.scalar("SELECT seq AS v FROM hub_state WHERE id = 1", &[]).unwrap();
        let got = received(&sim.deliver(&conv_ctx(C1), "message.created", false));
        assert_eq!(got.len(), 1, "statement {n}: {got:?}");
        assert_eq!(got[0].1["seq"].as_i64(), Some(stored.unwrap_or(0) + 1), "statement {n}");
    }
}

/// A member with one conversation, a socket subscribed to it and to the instance, and a logged
/// event.
fn busy() -> Sim<FailingStore> {
    let mut sim = Sim::over(FailingStore::new());
    sim.join(C1, Some("one"), T0);
    let s = sim.open();
    sim.subscribe(s, &[instance(), conv_ctx(C1), presence_ctx(C1)]);
    sim.deliver(&conv_ctx(C1), "message.created", false);
    sim
}

fn ran(r: Result<Reply, switchboard_core::ApiError>, e: Effects) -> (bool, Effects) {
    (r.is_ok(), e)
}

#[test]
fn list_commands_are_all_or_nothing() {
    each_failure(busy, |sim| {
        ran_cmd(
            sim,
            Command::Upsert {
                conversation_id: C2.into(),
                sandbox_id: SB.into(),
                title: None,
                joined_at: T0,
                last_activity_at: None,
                added_by: None,
            },
        )
    });
    each_failure(busy, |sim| {
        ran_cmd(
            sim,
            Command::Touch {
                conversation_id: C1.into(),
                title: Some("uno".into()),
                last_activity_at: Some(T0 + 9),
                repair: None,
            },
        )
    });
    each_failure(busy, |sim| {
        ran_cmd(sim, Command::MarkRead { conversation_id: C1.into(), member_id: "alice".into(), last_read_at: T0 + 9 })
    });
    each_failure(busy, |sim| ran_cmd(sim, Command::Remove { conversation_id: C1.into(), removed_by: None }));
    each_failure(busy, |sim| ran_cmd(sim, Command::RedeemTicket { nonce: "n".into(), expires_at_ms: T0 + 30_000 }));
    each_failure(busy, |sim| ran_cmd(sim, Command::SetBotStatus { online: true, at: T0 }));
    each_failure(busy, |sim| {
        ran_cmd(
            sim,
            Command::Deliver {
                context: conv_ctx(C1),
                event: "message.created".into(),
                payload: json!({}),
                ephemeral: false,
            },
        )
    });
    each_failure(busy, |sim| {
        let d = |event: &str| switchboard_core::hub::Delivery {
            context: conv_ctx(C1),
            event: event.into(),
            payload: json!({}),
            ephemeral: false,
        };
        ran_cmd(sim, Command::DeliverAll { events: vec![d("message.created"), d("message.updated")] })
    });
}

fn ran_cmd(sim: &mut Sim<FailingStore>, cmd: Command) -> (bool, Effects) {
    let (r, e) = sim.run(cmd);
    ran(r, e)
}

#[test]
fn hub_commands_are_all_or_nothing() {
    // Connect (resuming the open socket's session, which replaces it).
    each_failure(busy, |sim| {
        let session = sim.session(0);
        let (r, e) = sim.m.connect("alice", Some("0"), Some(&session), &sim.ctx());
        (r.is_ok(), e)
    });
    each_failure(busy, |sim| {
        let (r, e) = sim.frame(0, &json!({"type": "context.subscribe", "contexts": ["/presence/app"]}).to_string());
        (r.frames.iter().all(|f| !f.contains("\"error\"")), e)
    });
    // Subscribing to a conversation reads the list to decide: a failed read fails the frame.
    let two = || {
        let sim = busy();
        sim.join(C2, None, T0);
        sim
    };
    each_failure(two, |sim| {
        let (r, e) = sim.frame(0, &json!({"type": "context.subscribe", "contexts": [presence_ctx(C2)]}).to_string());
        (r.frames.iter().all(|f| !f.contains("\"error\"")), e)
    });
    each_failure(busy, |sim| {
        let (r, e) = sim.frame(0, &json!({"type": "context.unsubscribe", "contexts": [presence_ctx(C1)]}).to_string());
        (r.frames.iter().all(|f| !f.contains("\"error\"")), e)
    });
    each_failure(busy, |sim| {
        let mut list = vec![sim.sockets[0].clone()];
        list.extend(sim.sockets.iter().cloned());
        let ctx = Ctx { now_ms: sim.now, random: 1, sockets: &list };
        let (r, e) = sim.m.socket_closed(0, &ctx);
        (r.is_ok(), e)
    });
    // The sweep closing a stale socket and forgetting an expired session.
    let stale = || {
        let mut sim = busy();
        let gone = sim.open();
        sim.close(gone);
        sim.now = T0 + switchboard_core::hub::RESUME_KEEP_MS + 1;
        sim
    };
    each_failure(stale, |sim| {
        let (r, e) = sim.m.sweep(&sim.ctx(), &|_| None);
        (r.is_ok(), e)
    });
}
