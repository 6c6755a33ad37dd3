//! A socket's life in the registry: connect, frames, sign-in, disconnect.

use super::state::SocketState;
use super::{error_frame, unknown_socket, Effect, Registry};
use crate::auth::{self, SocketId};
use crate::frame::{ClientFrame, FrameError, ServerFrame};
use crate::limits::{close, error_code, ACTIVITY_TIMEOUT_SECS, MAX_RECORD_BYTES, MAX_SOCKETS_PER_REGISTRY};
use switchboard_core::rate::{FrameGate, FrameVerdict};

impl Registry {
    /// A socket opened: answers `pusher:connection_established` (or a 4100 close when full).
    pub fn connect(&mut self, socket: SocketId) -> Vec<Effect> {
        if !self.sockets.contains_key(&socket) {
            if self.sockets.len() >= MAX_SOCKETS_PER_REGISTRY {
                return vec![Effect::Close {
                    socket,
                    code: close::OVER_CAPACITY,
                    reason: "over capacity: try again later".into(),
                }];
            }
            self.sockets.insert(socket.clone(), SocketState::new(None));
        }
        vec![
            Effect::Send {
                socket: socket.clone(),
                frame: ServerFrame::ConnectionEstablished {
                    socket_id: socket.as_str(),
                    activity_timeout_secs: ACTIVITY_TIMEOUT_SECS,
                }
                .encode(),
            },
            Effect::SaveRecord { socket },
        ]
    }

    /// A text frame arrived from a socket at `now_ms`.
    pub fn handle_frame(&mut self, socket: &SocketId, text: &str, now_ms: u64) -> Vec<Effect> {
        let (rate, strikes) = (self.frame_rate, self.flood_strikes);
        let Some(state) = self.sockets.get_mut(socket) else { return unknown_socket(socket) };
        let now = now_ms.min(i64::MAX as u64) as i64;
        match state.frames.get_or_insert_with(|| FrameGate::new(rate, now)).check(rate, strikes, now) {
            FrameVerdict::Pass => {}
            FrameVerdict::Refuse(retry) => {
                let message = format!("rate limited: more than {rate} frames; retry in {} ms", retry.0);
                return vec![error_frame(socket, Some(error_code::CLIENT_EVENT_RATE_LIMIT), &message)];
            }
            FrameVerdict::Close => return self.close_flooding(socket, "too many frames"),
        }
        match ClientFrame::parse(text) {
            Err(e @ FrameError::TooLarge { .. }) => {
                let mut effects = self.disconnect(socket);
                effects.insert(
                    0,
                    Effect::Close {
                        socket: socket.clone(),
                        code: e.close_code().unwrap_or(close::MESSAGE_TOO_BIG),
                        reason: e.to_string(),
                    },
                );
                effects
            }
            Err(e) => vec![Effect::Send { socket: socket.clone(), frame: e.to_error_frame() }],
            Ok(ClientFrame::Ping) => vec![Effect::Send { socket: socket.clone(), frame: ServerFrame::Pong.encode() }],
            Ok(ClientFrame::Pong) => Vec::new(),
            Ok(ClientFrame::Subscribe { channel, auth, channel_data }) => {
                self.subscribe(socket, &channel, auth.as_deref(), channel_data.as_deref())
            }
            Ok(ClientFrame::Unsubscribe { channel }) => self.unsubscribe(socket, &channel),
            Ok(ClientFrame::Signin { auth, user_data }) => self.signin(socket, &auth, &user_data),
            Ok(ClientFrame::ClientEvent { event, channel, data }) => {
                self.client_event(socket, &channel, &event, &data, now_ms)
            }
        }
    }

    /// Closes a socket that keeps sending over its limit with 4100 (pusher-js backs off, then
    /// reconnects) and forgets it.
    pub(super) fn close_flooding(&mut self, socket: &SocketId, reason: &str) -> Vec<Effect> {
        let mut effects =
            vec![Effect::Close { socket: socket.clone(), code: close::OVER_CAPACITY, reason: reason.into() }];
        effects.extend(self.disconnect(socket));
        effects
    }

    /// The socket closed (or was closed): leaves every channel. No record to save.
    pub fn disconnect(&mut self, socket: &SocketId) -> Vec<Effect> {
        let Some(state) = self.sockets.remove(socket) else { return Vec::new() };
        let mut effects = Vec::new();
        for (name, member) in state.channels {
            effects.extend(self.leave(socket, &name, member));
        }
        effects
    }

    /// `pusher:signin`. A failed sign-in is answered with `pusher:error` 4009 and the socket is closed
    /// with 4009 (pusher-js does not reconnect on 4000-4099).
    pub fn signin(&mut self, socket: &SocketId, auth: &str, user_data: &str) -> Vec<Effect> {
        if !self.sockets.contains_key(socket) {
            return unknown_socket(socket);
        }
        let refuse = |this: &mut Registry, message: String| {
            let mut effects = vec![
                error_frame(socket, Some(close::UNAUTHORIZED), &message),
                Effect::Close { socket: socket.clone(), code: close::UNAUTHORIZED, reason: message },
            ];
            effects.extend(this.disconnect(socket));
            effects
        };
        let user = match auth::verify_user(&self.app, auth, socket.as_str(), user_data) {
            Ok(u) => u,
            Err(e) => return refuse(self, format!("sign-in refused: {e}")),
        };
        let fits = self.record(socket).is_some_and(|mut rec| {
            rec.user = Some(user.clone());
            serde_json::to_string(&rec).is_ok_and(|s| s.len() <= MAX_RECORD_BYTES)
        });
        if !fits {
            return refuse(self, "sign-in refused: user_data does not fit in the connection's record".into());
        }
        if let Some(s) = self.sockets.get_mut(socket) {
            s.user = Some(user);
        }
        vec![
            Effect::Send { socket: socket.clone(), frame: ServerFrame::SigninSuccess { user_data }.encode() },
            Effect::SaveRecord { socket: socket.clone() },
        ]
    }
}
