//! One bridge's sans-IO machine, Kick's reader or Kosmi's relay, behind one face: inputs in, a list of `Act`s
//! out (what the object must do), every decision the machines' own.

use switchboard_bridge::event::BridgeEvent;
use switchboard_bridge::graphql_ws::Input;
use switchboard_bridge::kick_client::{KickReader, KickReaderEffect};
use switchboard_bridge::kosmi::{KosmiEffect, KosmiRelay};
use switchboard_bridge::source::Outbound;
use switchboard_bridge::status;

/// What the object does for its machine.
#[derive(Debug)]
pub enum Act {
    /// Open the platform's socket as connection `conn`.
    Connect(u64),
    /// Send on connection `conn` (Kick: the current one).
    Send(Option<u64>, String),
    Close(Option<u64>, u16, String),
    /// Kosmi: log in anonymously over HTTP.
    Login,
    /// Kosmi: the stored token was refused; forget it.
    TokenRefused,
    /// Commit this to the conversation.
    Event(BridgeEvent),
    /// Kosmi: an outbound message went out (`true`) or was dropped with a reason.
    Relayed(bool, String),
    /// Something the platform sent that we did not use (logged).
    Skipped(String),
    /// The state may have changed (with the machine's reason, if it gives one): report it if it did.
    State(Option<String>),
}

pub enum Machine {
    Kick(KickReader),
    Kosmi(Box<KosmiRelay>),
}

/// The Kick reader answers effects directly; Kosmi's relay queues them.
fn kick_acts(effects: Vec<KickReaderEffect>) -> Vec<Act> {
    effects
        .into_iter()
        .map(|e| match e {
            KickReaderEffect::Connect { generation } => Act::Connect(generation),
            KickReaderEffect::Send(t) => Act::Send(None, t),
            KickReaderEffect::Close { code, reason } => Act::Close(None, code, reason),
            KickReaderEffect::Event(ev) => Act::Event(*ev),
            KickReaderEffect::Skipped(e) => Act::Skipped(format!("{e:?}")),
            KickReaderEffect::SubscriptionFailed { data } => Act::Skipped(format!("subscription refused: {data}")),
            KickReaderEffect::ServerError { code, message } => {
                Act::Skipped(format!("pusher:error {code:?}: {message}"))
            }
            KickReaderEffect::StateChanged { reason, .. } => Act::State(Some(reason)),
        })
        .collect()
}

fn kosmi_acts(relay: &mut KosmiRelay) -> Vec<Act> {
    std::iter::from_fn(|| relay.poll())
        .map(|e| match e {
            KosmiEffect::NeedLogin => Act::Login,
            KosmiEffect::Connect { conn } => Act::Connect(conn),
            KosmiEffect::Send { conn, text } => Act::Send(Some(conn), text),
            KosmiEffect::Close { conn, code, reason } => Act::Close(Some(conn), code, reason),
            KosmiEffect::TokenRefused => Act::TokenRefused,
            KosmiEffect::Event(ev) => Act::Event(*ev),
            KosmiEffect::Skipped(e) => Act::Skipped(e.to_string()),
            KosmiEffect::Joined | KosmiEffect::StateChanged(_) => Act::State(None),
            KosmiEffect::Delivered { local_id } => Act::Relayed(true, local_id),
            KosmiEffect::Dropped { local_id, reason } => Act::Relayed(
                false,
                format!("{local_id}: dropped after {} attempts: {}", reason.attempts, reason.last_error),
            ),
        })
        .collect()
}

impl Machine {
    pub fn start(&mut self, now: u64, random: u64) -> Vec<Act> {
        match self {
            Machine::Kick(r) => kick_acts(r.start(now)),
            Machine::Kosmi(k) => {
                k.start(now, random);
                kosmi_acts(k)
            }
        }
    }

    pub fn stop(&mut self, now: u64, random: u64) -> Vec<Act> {
        match self {
            Machine::Kick(r) => kick_acts(r.stop()),
            Machine::Kosmi(k) => {
                k.stop(now, random);
                kosmi_acts(k)
            }
        }
    }

    /// Connection `conn` is open (Kick waits for `pusher:connection_established` instead).
    pub fn opened(&mut self, conn: u64, now: u64, random: u64) -> Vec<Act> {
        match self {
            Machine::Kick(_) => vec![],
            Machine::Kosmi(k) => {
                k.handle(now, random, Input::Opened { conn });
                kosmi_acts(k)
            }
        }
    }

    /// Connection `conn` could not be opened.
    pub fn connect_failed(&mut self, conn: u64, now: u64, random: u64) -> Vec<Act> {
        match self {
            Machine::Kick(r) => kick_acts(r.handle_close(conn, 1006, "could not connect", now, random)),
            Machine::Kosmi(k) => {
                k.handle(now, random, Input::ConnectFailed { conn });
                kosmi_acts(k)
            }
        }
    }

    pub fn text(&mut self, conn: u64, text: &str, now: u64, random: u64) -> Vec<Act> {
        match self {
            Machine::Kick(r) => kick_acts(r.handle_text(conn, text, now)),
            Machine::Kosmi(k) => {
                k.handle(now, random, Input::Text { conn, text });
                kosmi_acts(k)
            }
        }
    }

    pub fn closed(&mut self, conn: u64, code: u16, reason: &str, now: u64, random: u64) -> Vec<Act> {
        match self {
            Machine::Kick(r) => kick_acts(r.handle_close(conn, code, reason, now, random)),
            Machine::Kosmi(k) => {
                k.handle(now, random, Input::Closed { conn, code, reason });
                kosmi_acts(k)
            }
        }
    }

    pub fn timeout(&mut self, now: u64, random: u64) -> Vec<Act> {
        match self {
            Machine::Kick(r) => kick_acts(r.handle_timeout(now, random)),
            Machine::Kosmi(k) => {
                k.handle(now, random, Input::Timeout);
                kosmi_acts(k)
            }
        }
    }

    /// Kosmi: the login answered a token, or failed.
    pub fn login(&mut self, token: Option<String>, now: u64, random: u64) -> Vec<Act> {
        match self {
            Machine::Kick(_) => vec![],
            Machine::Kosmi(k) => {
                match token {
                    Some(t) => k.logged_in(now, random, t),
                    None => k.login_failed(now, random),
                }
                kosmi_acts(k)
            }
        }
    }

    /// Kosmi: queue a member's message (Kick's outbound is an HTTP call the object makes itself).
    pub fn send(&mut self, message: &Outbound<'_>, now: u64, random: u64) -> Result<Vec<Act>, String> {
        match self {
            Machine::Kick(_) => Ok(vec![]),
            Machine::Kosmi(k) => match k.send(now, random, message) {
                Ok(()) => Ok(kosmi_acts(k)),
                Err(e) => Err(format!("{e:?}")),
            },
        }
    }

    pub fn poll_timeout(&self) -> Option<u64> {
        match self {
            Machine::Kick(r) => r.poll_timeout(),
            Machine::Kosmi(k) => k.poll_timeout(),
        }
    }

    /// The state to report, `None` when stopped.
    pub fn state(&self) -> Option<&'static str> {
        match self {
            Machine::Kick(r) => status::kick_state(r.state()),
            Machine::Kosmi(k) => status::kosmi_state(k.phase(), k.is_joined()),
        }
    }
}
