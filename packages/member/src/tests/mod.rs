//! The member's rules, natively, with virtual time: each test drives a [`Member`] over an
//! in-memory SQLite, with a simulated list of the runtime's sockets, and checks its answers, the
//! frames it asks to send to which sockets, the closes, the watch calls and the alarm times.

mod atomic;
mod bot_fanout;
mod commands;
mod hub;
mod limits;
mod list;
mod phantom;
mod sandbox_users;
mod simulation;
mod sweep;

use crate::hub::sessions::{Connected, Incoming, SocketReply};
use crate::{Command, Ctx, Effects, Member, Reply, Socket, Store};
use serde_json::{json, Value};
use switchboard_sqlite_store::SqliteStore;

pub const T0: i64 = 1_700_000_000_000;
pub const SB: &str = "sb1";
pub const C1: &str = "01ARZ3NDEKTSV4RRFFQ69G5FAV";
pub const C2: &str = "01BX5ZZKBKACTAV9WEVGEMMVRZ";
pub const C3: &str = "01CZ5ZZKBKACTAV9WEVGEMMVS0";

pub fn frame(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

pub fn instance() -> String {
    format!("/kiloclaw/{SB}")
}

pub fn conv_ctx(c: &str) -> String {
    format!("/kiloclaw/{SB}/{c}")
}

pub fn presence_ctx(c: &str) -> String {
    format!("/presence/kiloclaw/{SB}/{c}")
}

/// A member object and the sockets the runtime would hold for it, driven by a virtual clock.
pub struct Sim<S: Store = SqliteStore> {
    pub m: Member<S>,
    pub sockets: Vec<Option<Socket>>,
    pub now: i64,
    random: u128,
}

impl Sim<SqliteStore> {
    pub fn new() -> Self {
        Sim::over(SqliteStore::new())
    }
}

impl<S: Store> Sim<S> {
    pub fn over(store: S) -> Self {
        Sim { m: Member::open(store).unwrap(), sockets: Vec::new(), now: T0, random: 0xabc }
    }

    pub fn ctx(&self) -> Ctx<'_> {
        Ctx { now_ms: self.now, random: self.random, sockets: &self.sockets }
    }

    pub fn run(&self, cmd: Command) -> (Result<Reply, switchboard_core::ApiError>, Effects) {
        self.m.handle(cmd, &self.ctx())
    }

    pub fn ok(&self, cmd: Command) -> (Reply, Effects) {
        let (r, e) = self.run(cmd);
        (r.unwrap(), e)
    }

    pub fn join(&self, conv: &str, title: Option<&str>, joined_at: i64) -> Effects {
        self.ok(Command::Upsert {
            conversation_id: conv.into(),
            sandbox_id: SB.into(),
            title: title.map(String::from),
            joined_at,
            last_activity_at: None,
            added_by: None,
        })
        .1
    }

    /// Connects a socket as the shell does: older sockets of its session are marked replaced, the
    /// new one joins the list. Answers its index, what it was sent and the effects.
    pub fn connect(
        &mut self,
        since: Option<&str>,
        session: Option<&str>,
    ) -> Result<(usize, Connected, Effects), switchboard_core::ApiError> {
        self.random += 1;
        let (r, e) = self.m.connect("alice", since, session, &self.ctx());
        let c = r?;
        for i in &c.replace {
            if let Some(Some(s)) = self.sockets.get_mut(*i) {
                s.replaced = true;
            }
        }
        self.sockets.push(Some(Socket { session: c.session.clone(), connected_at: self.now, replaced: false }));
        Ok((self.sockets.len() - 1, c, e))
    }

    pub fn open(&mut self) -> usize {
        self.connect(None, None).unwrap().0
    }

    pub fn session(&self, i: usize) -> String {
        self.sockets[i].as_ref().unwrap().session.clone()
    }

    /// A frame from socket `i`, as the shell passes it (the socket first, then all of them).
    pub fn frame(&self, i: usize, text: &str) -> (SocketReply, Effects) {
        let mut list = vec![self.sockets[i].clone()];
        list.extend(self.sockets.iter().cloned());
        let ctx = Ctx { now_ms: self.now, random: self.random, sockets: &list };
        let (reply, e) = self.m.socket_frame(0, Incoming::Text(text), &ctx);
        (reply, shift(e))
    }

    pub fn subscribe(&self, i: usize, contexts: &[String]) -> (Vec<Value>, Effects) {
        let (r, e) = self.frame(i, &json!({"type": "context.subscribe", "contexts": contexts}).to_string());
        (r.frames.iter().map(|f| frame(f)).collect(), e)
    }

    /// Socket `i` closes: the core hears of it, then the runtime forgets the socket.
    pub fn close(&mut self, i: usize) -> Effects {
        let mut list = vec![self.sockets[i].clone()];
        list.extend(self.sockets.iter().cloned());
        let ctx = Ctx { now_ms: self.now, random: self.random, sockets: &list };
        let (r, e) = self.m.socket_closed(0, &ctx);
        r.unwrap();
        self.sockets[i] = None;
        shift(e)
    }

    pub fn deliver(&self, context: &str, event: &str, ephemeral: bool) -> Effects {
        self.ok(Command::Deliver { context: context.into(), event: event.into(), payload: json!({"n": 1}), ephemeral })
            .1
    }
}

/// The frames each socket was asked to receive: (socket index, frame).
pub fn received(e: &Effects) -> Vec<(usize, Value)> {
    e.sends.iter().flat_map(|s| s.to.iter().map(|i| (*i, frame(&s.frame)))).collect()
}

/// Effects of a call whose socket list had the calling socket prepended: back to plain indices.
fn shift(mut e: Effects) -> Effects {
    for s in &mut e.sends {
        s.to = s.to.iter().map(|i| i.saturating_sub(1)).collect();
    }
    for c in &mut e.closes {
        c.0 = c.0.saturating_sub(1);
    }
    e
}
