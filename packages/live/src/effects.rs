//! What a call asks the Durable Object to do, in order.

/// One thing for the shell to carry out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Send this frame to every socket (one call into the runtime).
    Broadcast(String),
    /// Send this frame to the socket whose frame is being handled.
    Reply(String),
    /// Close the subscriber's sockets (by tag).
    Close { tag: String, code: u16, reason: &'static str },
    /// Close every socket.
    CloseAll { code: u16, reason: &'static str },
}
