//! `BridgeObject`: one Durable Object per linked room, named `{conversationId}:{bridgeId}`, that keeps the
//! outbound socket to Kick (Pusher protocol 7) or Kosmi (`graphql-transport-ws`) and drives the sans-IO machine of
//! `switchboard_bridge` (`machine.rs`).
//!
//! - The conversation starts it when a room is linked (`Start`), sends it members' messages to relay (`Relay`) and
//!   stops it when the room is unlinked (`Stop`: socket closed, alarm and storage cleared, for good).
//! - Its SQLite keeps the link, the Kosmi token and the counters (`store.rs`), so a restart resumes.
//! - Everything the machine asks for goes through `apply`: socket sends and closes at once, a socket opened by a
//!   spawned read loop (`socket.rs`), and the slow parts (commits to the conversation, state reports, Kosmi's login,
//!   Kick's HTTP sends) queued as jobs drained in order by one pump (`jobs.rs`), so the conversation sees the
//!   room's events in the order they arrived.
//! - An outbound socket does not hibernate and a deploy or an eviction ends it, so the alarm is a watchdog
//!   (`switchboard_bridge::status::next_alarm`): it fires at the machine's next timeout and at least every
//!   `WATCHDOG_MS`, and restarts the machine from storage when the object woke up without one.
//!
//! No `RefCell` borrow is held across an `.await`: the machine is borrowed, called, and its acts applied after.

mod jobs;
pub mod kick;
pub mod kosmi;
mod machine;
pub mod relay;
mod socket;
mod store;

use crate::http::{error_response, internal};
use crate::platform;
use crate::sql::Sql;
use machine::{Act, Machine};
use serde::{Deserialize, Serialize};
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use store::{BridgeStore, Config};
use switchboard_bridge::echo::EchoFilter;
use switchboard_bridge::event::BridgeEvent;
use switchboard_bridge::kick_client::KickReader;
use switchboard_bridge::kick_send::KickSender;
use switchboard_bridge::link::Link;
use switchboard_bridge::status::{self, next_alarm};
use switchboard_core::ApiError;
use switchboard_worker_kit::alarm::AlarmSlot;
use worker::{durable_object, DurableObject, Env, Request, Response, State, WebSocket};

/// The binding of the bridge objects' namespace.
pub const BRIDGES: &str = "BRIDGES";

/// The object of bridge `bridge_id` of conversation `conversation_id`.
pub fn object_name(conversation_id: &str, bridge_id: &str) -> String {
    format!("{conversation_id}:{bridge_id}")
}

/// What the conversation's object tells a bridge object.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum BridgeCommand {
    /// Keep this room bridged (idempotent).
    Start { conversation_id: String, bridge_id: String, link: Link },
    /// A member's message to send to the room.
    Relay { message_id: String, sender_id: String, text: String },
    /// The room was unlinked: close, forget everything, stay stopped.
    Stop,
}

/// Jobs waiting for the pump at most (a room far faster than the conversation takes its events, or a conversation
/// that does not answer); beyond it the room's events are dropped, counted in `received` but not committed.
const MAX_PENDING_JOBS: usize = 1_000;

/// Slow work, done in order by one pump.
pub(crate) enum Job {
    Ingest(BridgeEvent),
    Status,
    Login,
    KickPost { message_id: String, sender_id: String, text: String },
}

pub struct Inner {
    pub(crate) state: State,
    pub(crate) env: Env,
    store: BridgeStore,
    pub(crate) config: RefCell<Option<Config>>,
    machine: RefCell<Option<Machine>>,
    /// The open socket and its connection number.
    socket: RefCell<Option<(u64, WebSocket)>>,
    /// The connection the machine last asked for (Kick's sends and closes name none).
    current: Cell<u64>,
    jobs: RefCell<VecDeque<Job>>,
    pumping: Cell<bool>,
    /// Unlinked: nothing runs any more.
    pub(crate) halted: Cell<bool>,
    /// The state and reason last reported to the conversation.
    pub(crate) reported: RefCell<Option<(String, Option<String>)>>,
    /// Why the machine is in its state (its own reason, or the last close or login failure).
    pub(crate) reason: RefCell<Option<String>>,
    /// Why outbound messages are not going out, if they are not.
    pub(crate) outbound_note: RefCell<Option<String>>,
    pub(crate) kick_sender: RefCell<KickSender>,
    /// What the Kick bridge posted, to drop when the room shows it back through our subscription
    /// (the Kosmi relay filters its own echoes).
    pub(crate) kick_echo: RefCell<EchoFilter>,
    /// The Kosmi user ids last stored as ours (`BridgeStore::save_own_ids`).
    own_ids: RefCell<Vec<String>>,
    alarm: AlarmSlot,
}

#[durable_object]
pub struct BridgeObject {
    inner: Rc<Inner>,
}

impl DurableObject for BridgeObject {
    fn new(state: State, env: Env) -> Self {
        let store = BridgeStore::new(Sql::new(state.storage().sql()));
        let inner = Inner {
            state,
            env,
            store,
            config: RefCell::new(None),
            machine: RefCell::new(None),
            socket: RefCell::new(None),
            current: Cell::new(0),
            jobs: RefCell::new(VecDeque::new()),
            pumping: Cell::new(false),
            halted: Cell::new(false),
            reported: RefCell::new(None),
            reason: RefCell::new(None),
            outbound_note: RefCell::new(None),
            kick_sender: RefCell::new(KickSender::new()),
            kick_echo: RefCell::new(EchoFilter::default()),
            own_ids: RefCell::new(Vec::new()),
            alarm: AlarmSlot::new(),
        };
        BridgeObject { inner: Rc::new(inner) }
    }

    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        let result = match req.text().await {
            Ok(body) => self.command(&body).await,
            Err(e) => Err(internal("read bridge command", e)),
        };
        match result {
            Ok(resp) => Ok(resp),
            Err(e) => error_response(&e),
        }
    }

    async fn alarm(&self) -> worker::Result<Response> {
        let inner = &self.inner;
        inner.alarm.fired();
        if inner.ensure_running() {
            let (now, random) = clock();
            inner.step(|m| m.timeout(now, random));
            inner.settle().await;
        }
        Response::ok("ok")
    }
}

impl BridgeObject {
    async fn command(&self, body: &str) -> Result<Response, ApiError> {
        let command: BridgeCommand = serde_json::from_str(body).map_err(|e| internal("decode bridge command", e))?;
        let inner = &self.inner;
        match command {
            BridgeCommand::Start { conversation_id, bridge_id, link } => {
                // A repeated start (the same link) keeps the running machine, the token and the counters.
                if !inner.store.save_link(&conversation_id, &bridge_id, &link) {
                    return Err(ApiError::internal("could not store the bridge"));
                }
                inner.halted.set(false);
                inner.ensure_running();
                inner.settle().await;
            }
            BridgeCommand::Relay { message_id, sender_id, text } => {
                if inner.ensure_running() {
                    inner.relay(message_id, sender_id, text);
                    inner.settle().await;
                }
            }
            BridgeCommand::Stop => inner.halt().await,
        }
        crate::http::no_content()
    }
}

/// The time and 64 random bits the machines take.
pub(crate) fn clock() -> (u64, u64) {
    (platform::now_ms().max(0) as u64, platform::random_u64())
}

impl Inner {
    /// Builds and starts the machine from storage when there is none; false when this object holds no link.
    fn ensure_running(self: &Rc<Self>) -> bool {
        if self.halted.get() {
            return false;
        }
        if self.machine.borrow().is_some() {
            return true;
        }
        let Some(config) = self.store.load() else { return false };
        let machine = match config.link.platform.as_str() {
            "kick" => match KickReader::new(&config.link.room) {
                Ok(r) => Machine::Kick(r),
                Err(_) => {
                    worker::console_error!("bridge {}: bad chatroom id {}", config.bridge_id, config.link.room);
                    return false;
                }
            },
            _ => match kosmi::relay(&config) {
                Ok(r) => Machine::Kosmi(Box::new(r.with_past_user_ids(self.store.own_ids()))),
                Err(e) => {
                    worker::console_error!("bridge {}: {e}", config.bridge_id);
                    return false;
                }
            },
        };
        if config.link.platform == "kick" && config.link.relay_outbound && kick::access_token(&self.env).is_none() {
            self.outbound_note.replace(Some(kick::NO_TOKEN.to_string()));
        }
        self.config.replace(Some(config));
        self.machine.replace(Some(machine));
        self.reported.replace(None);
        let (now, random) = clock();
        self.step(|m| m.start(now, random));
        true
    }

    /// Calls the machine (if any) and applies what it asks for.
    pub(crate) fn step(self: &Rc<Self>, f: impl FnOnce(&mut Machine) -> Vec<Act>) {
        let (acts, own_ids) = {
            let mut machine = self.machine.borrow_mut();
            match machine.as_mut() {
                Some(m) => {
                    let acts = f(m);
                    let own = match m {
                        Machine::Kosmi(k) => Some(k.echo_filter().own_user_ids()),
                        Machine::Kick(_) => None,
                    };
                    (acts, own)
                }
                None => return,
            }
        };
        // The ids the relay learned it posts as outlive the object (the room's history on join).
        if let Some(ids) = own_ids.filter(|ids| *ids != *self.own_ids.borrow()) {
            self.store.save_own_ids(&ids);
            self.own_ids.replace(ids);
        }
        self.apply(acts);
    }

    fn apply(self: &Rc<Self>, acts: Vec<Act>) {
        let mut counted = false;
        for act in acts {
            match act {
                Act::Connect(conn) => {
                    self.current.set(conn);
                    if let Some((_, old)) = self.socket.borrow_mut().take() {
                        let _ = old.close(Some(1000), Some("reconnecting"));
                    }
                    wasm_bindgen_futures::spawn_local(socket::run(self.clone(), conn));
                }
                Act::Send(conn, text) => {
                    let want = conn.unwrap_or(self.current.get());
                    if let Some((c, ws)) = self.socket.borrow().as_ref() {
                        if *c == want {
                            let _ = ws.send_with_str(&text);
                        }
                    }
                }
                Act::Close(conn, code, reason) => {
                    let want = conn.unwrap_or(self.current.get());
                    let mut socket = self.socket.borrow_mut();
                    if socket.as_ref().is_some_and(|(c, _)| *c == want) {
                        if let Some((_, ws)) = socket.take() {
                            let _ = ws.close(Some(code), Some(reason));
                        }
                    }
                }
                Act::Login => self.jobs.borrow_mut().push_back(Job::Login),
                Act::TokenRefused => {
                    self.reason.replace(Some("kosmi refused the token; logging in again".into()));
                    self.store.save_token(None);
                }
                Act::Event(BridgeEvent::Message(m))
                    if self.kick_echo.borrow_mut().is_echo(clock().0, &m.sender_id, &m.text) =>
                {
                    worker::console_log!("bridge: our own message came back ({}): dropped", m.idempotency_key);
                }
                Act::Event(ev) => {
                    counted = true;
                    if let Some(c) = self.config.borrow_mut().as_mut() {
                        c.received += 1;
                        c.last_event_at = Some(platform::now_ms());
                    }
                    let mut jobs = self.jobs.borrow_mut();
                    if jobs.len() >= MAX_PENDING_JOBS {
                        worker::console_warn!(
                            "bridge: {MAX_PENDING_JOBS} jobs waiting; an event of the room is dropped"
                        );
                    } else if !matches!(ev, BridgeEvent::Unknown { .. }) {
                        jobs.push_back(Job::Ingest(ev));
                    }
                }
                Act::Relayed(true, _) => {
                    counted = true;
                    if let Some(c) = self.config.borrow_mut().as_mut() {
                        c.relayed += 1;
                    }
                }
                Act::Relayed(false, why) => worker::console_warn!("bridge outbound {why}"),
                Act::Skipped(what) => worker::console_log!("bridge skipped: {what}"),
                Act::State(reason) => {
                    if reason.is_some() {
                        self.reason.replace(reason);
                    } else if self.current_state() == Some(status::LIVE) {
                        // Kosmi gives no reason of its own: once live again, the last close is history.
                        self.reason.replace(None);
                    }
                    self.jobs.borrow_mut().push_back(Job::Status);
                }
            }
        }
        if counted {
            self.save_counters();
        }
    }

    /// A member's message for the room.
    fn relay(self: &Rc<Self>, message_id: String, sender_id: String, text: String) {
        let kick = self.config.borrow().as_ref().is_some_and(|c| c.link.platform == "kick");
        if kick {
            self.jobs.borrow_mut().push_back(Job::KickPost { message_id, sender_id, text });
            return;
        }
        let (now, random) = clock();
        let out = switchboard_bridge::source::Outbound {
            local_id: &message_id,
            sender_id: &sender_id,
            source: None,
            sender_name: &sender_id,
            text: &text,
        };
        let acts = match self.machine.borrow_mut().as_mut() {
            Some(m) => m.send(&out, now, random),
            None => return,
        };
        match acts {
            Ok(acts) => self.apply(acts),
            Err(why) => worker::console_warn!("bridge outbound {message_id} refused: {why}"),
        }
    }

    /// Drains the jobs, then sets the alarm for the machine's next timeout (or the watchdog).
    pub(crate) async fn settle(self: &Rc<Self>) {
        self.pump().await;
        self.arm().await;
    }

    async fn arm(&self) {
        if self.halted.get() {
            return;
        }
        let timeout = match self.machine.borrow().as_ref() {
            Some(m) => m.poll_timeout(),
            None => return,
        };
        let (now, _) = clock();
        let at = next_alarm(now, timeout).min(i64::MAX as u64) as i64;
        self.alarm.ensure(&self.state.storage(), at).await;
    }

    async fn pump(self: &Rc<Self>) {
        if self.pumping.get() {
            return;
        }
        self.pumping.set(true);
        loop {
            let next = self.jobs.borrow_mut().pop_front();
            let Some(job) = next else { break };
            if self.halted.get() {
                break;
            }
            self.run_job(job).await;
        }
        self.pumping.set(false);
    }

    /// Unlinked (or the conversation no longer knows this bridge): close, forget, stay stopped.
    pub(crate) async fn halt(self: &Rc<Self>) {
        let (now, random) = clock();
        let acts = self.machine.borrow_mut().as_mut().map(|m| m.stop(now, random)).unwrap_or_default();
        self.halted.set(true);
        // Only the socket matters now; nothing else of the machine's last acts is carried out.
        for act in acts {
            if let Act::Close(_, code, reason) = act {
                if let Some((_, ws)) = self.socket.borrow_mut().take() {
                    let _ = ws.close(Some(code), Some(reason));
                }
            }
        }
        if let Some((_, ws)) = self.socket.borrow_mut().take() {
            let _ = ws.close(Some(1000), Some("unlinked"));
        }
        self.machine.replace(None);
        self.jobs.borrow_mut().clear();
        self.config.replace(None);
        self.store.clear();
        if let Err(e) = self.state.storage().delete_alarm().await {
            worker::console_error!("bridge: delete alarm: {e}");
        }
    }

    /// The socket of connection `conn`, once open (`socket.rs`); false if the machine moved on meanwhile.
    pub(crate) fn socket_opened(&self, conn: u64, ws: WebSocket) -> bool {
        if self.halted.get() || self.machine.borrow().is_none() || self.current.get() != conn {
            let _ = ws.close(Some(1000), Some("superseded"));
            return false;
        }
        self.socket.replace(Some((conn, ws)));
        true
    }

    /// Connection `conn` ended: forget its socket.
    pub(crate) fn socket_ended(&self, conn: u64) {
        let mut socket = self.socket.borrow_mut();
        if socket.as_ref().is_some_and(|(c, _)| *c == conn) {
            socket.take();
        }
    }

    pub(crate) fn platform(&self) -> String {
        self.config.borrow().as_ref().map(|c| c.link.platform.clone()).unwrap_or_default()
    }

    pub(crate) fn save_token(&self, token: Option<&str>) {
        self.store.save_token(token);
    }

    pub(crate) fn save_counters(&self) {
        if let Some(c) = self.config.borrow().as_ref() {
            self.store.save_counters(c.received, c.relayed, c.last_event_at);
        }
    }

    /// The machine's state as reported, `None` when there is none or it is stopped.
    pub(crate) fn current_state(&self) -> Option<&'static str> {
        self.machine.borrow().as_ref().and_then(Machine::state)
    }

    /// Where this bridge's connections go.
    pub(crate) fn target(&self) -> Option<socket::Target> {
        let platform = self.config.borrow().as_ref()?.link.platform.clone();
        Some(if platform == "kick" { kick::target(&self.env) } else { kosmi::target(&self.env) })
    }
}
