//! Adaptive multi-event frames, for the sockets that opt in (`?batch=1`).
//!
//! Such a socket may receive several frames in one WebSocket text frame, one per line (separated by
//! `\n`; each line is exactly a frame as it would be sent alone), at most [`MAX_BATCH_EVENTS`] lines
//! and [`MAX_BATCH_BYTES`] bytes. What a runtime send costs is per text frame, whatever it holds, so a
//! burst costs one send per socket instead of one per event and socket.
//!
//! The [`Batcher`] never waits when idle: frames that become ready while nothing is outstanding go at
//! once (all of one command's frames together) and the batcher becomes *busy*: the shell must call
//! [`Batcher::tick`] once the runtime has had a turn (a zero-delay timer). Frames that become ready
//! while it is busy (commands queued behind the current one, a bot's burst) wait for that tick and go
//! together; a tick that finds nothing waiting makes it idle again. A frame for one socket (an ack)
//! is held while events wait, so that socket still sees an event before its ack. Order is kept and
//! every frame goes exactly once; the shell sends `all` to every opted-in socket except those listed
//! in `own`, which get their own frames (the same events followed by what was held for them).
//!
//! [`PerSocket`] applies the same rules to sockets that each get their own frames (the hub: every
//! socket follows its own contexts): one [`Batcher`] per busy socket, one tick for all.

use crate::error::ApiError;
use crate::limits::{MAX_BATCH_BYTES, MAX_BATCH_EVENTS};

/// The socket URL's `batch` parameter: absent, `0` or `false`: today's one frame per message;
/// `1` or `true`: batched frames. Anything else is refused (400).
pub fn opt_in(value: Option<&str>) -> Result<bool, ApiError> {
    match value {
        None | Some("0") | Some("false") => Ok(false),
        Some("1") | Some("true") => Ok(true),
        Some(_) => Err(ApiError::invalid("batch: must be 1 or 0")),
    }
}

/// What separates the frames of one batched text frame.
pub const SEPARATOR: char = '\n';

/// Joins frames into as few text frames as the limits allow, in order. A frame that is alone too big
/// for a batch (or that holds a newline, which no encoded frame does) goes alone, as it is.
pub fn join<T: AsRef<str>>(frames: &[T]) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = frames;
    while !rest.is_empty() {
        let n = batch_len(rest);
        out.push(concat(&rest[..n]));
        rest = &rest[n..];
    }
    out
}

/// How many of the first frames go in one text frame (at least one).
fn batch_len<T: AsRef<str>>(frames: &[T]) -> usize {
    let mut bytes = 0usize;
    for (i, f) in frames.iter().enumerate() {
        let f = f.as_ref();
        let alone = f.len() > MAX_BATCH_BYTES || f.contains(SEPARATOR);
        if i == 0 && alone {
            return 1;
        }
        let added = if i == 0 { f.len() } else { f.len() + 1 };
        if alone || i == MAX_BATCH_EVENTS || bytes + added > MAX_BATCH_BYTES {
            return i;
        }
        bytes += added;
    }
    frames.len()
}

fn concat<T: AsRef<str>>(frames: &[T]) -> String {
    let mut s = String::with_capacity(frames.iter().map(|f| f.as_ref().len() + 1).sum());
    for (i, f) in frames.iter().enumerate() {
        if i > 0 {
            s.push(SEPARATOR);
        }
        s.push_str(f.as_ref());
    }
    s
}

/// Splits a received text frame into its frames (what a client of a batched socket does).
pub fn split(text: &str) -> impl Iterator<Item = &str> {
    text.split(SEPARATOR).filter(|l| !l.is_empty())
}

/// What to send now to the opted-in sockets.
#[derive(Debug, PartialEq)]
pub struct Out<K> {
    /// For every opted-in socket except those in `own`, in order.
    pub all: Vec<String>,
    /// Sockets that get these frames instead of `all` (the same events, then what was held for them).
    pub own: Vec<(K, Vec<String>)>,
    /// The batcher just became busy: call [`Batcher::tick`] after the runtime's next turn.
    pub schedule_tick: bool,
}

impl<K> Out<K> {
    fn none() -> Self {
        Out { all: Vec::new(), own: Vec::new(), schedule_tick: false }
    }

    pub fn is_empty(&self) -> bool {
        self.all.is_empty() && self.own.is_empty()
    }
}

/// The frames waiting for the opted-in sockets of one object (see the module's documentation).
/// `K` names a socket (the shell's handle; compared with `==`).
#[derive(Debug)]
pub struct Batcher<K> {
    busy: bool,
    /// Events for every opted-in socket, waiting for the tick.
    queue: Vec<String>,
    queued_bytes: usize,
    /// Frames for one socket that must follow the waiting events.
    held: Vec<(K, Vec<String>)>,
}

impl<K> Default for Batcher<K> {
    fn default() -> Self {
        Batcher { busy: false, queue: Vec::new(), queued_bytes: 0, held: Vec::new() }
    }
}

impl<K: PartialEq> Batcher<K> {
    pub fn new() -> Self {
        Self::default()
    }

    /// A send is outstanding: a tick is due.
    pub fn busy(&self) -> bool {
        self.busy
    }

    /// Frames waiting for the tick.
    pub fn waiting(&self) -> usize {
        self.queue.len()
    }

    /// Frames for every opted-in socket, in commit order. Idle: they go now (joined) and the batcher
    /// is busy until a tick finds nothing new. Busy: they wait for the tick, except that what fills
    /// whole batches goes now (so what waits stays under one batch).
    pub fn ready(&mut self, frames: Vec<String>) -> Out<K> {
        if frames.is_empty() {
            return Out::none();
        }
        if !self.busy {
            self.busy = true;
            return Out { all: join(&frames), own: Vec::new(), schedule_tick: true };
        }
        for f in frames {
            self.queued_bytes += f.len() + 1;
            self.queue.push(f);
        }
        if self.queue.len() < MAX_BATCH_EVENTS && self.queued_bytes <= MAX_BATCH_BYTES {
            return Out::none();
        }
        // Full: every whole batch goes now; the last, partial one waits for the tick. Held frames
        // stay held (they must follow what still waits).
        let mut all = Vec::new();
        while self.queue.len() >= MAX_BATCH_EVENTS || self.queued_bytes > MAX_BATCH_BYTES {
            let n = batch_len(&self.queue);
            all.push(concat(&self.queue[..n]));
            self.queue.drain(..n);
            self.queued_bytes = self.queue.iter().map(|f| f.len() + 1).sum();
        }
        Out { all, own: Vec::new(), schedule_tick: false }
    }

    /// A frame for one opted-in socket (an ack or an error): `Some` to send now, or `None` when
    /// events wait or an earlier frame of that socket is held (it goes after them, at the tick).
    pub fn reply(&mut self, socket: K, frame: String) -> Option<String> {
        if self.queue.is_empty() && !self.held.iter().any(|(k, _)| *k == socket) {
            return Some(frame);
        }
        match self.held.iter_mut().find(|(k, _)| *k == socket) {
            Some((_, list)) => list.push(frame),
            None => self.held.push((socket, vec![frame])),
        }
        None
    }

    /// The runtime had its turn since the last send: what waited goes now and the batcher stays busy
    /// (`schedule_tick`); nothing waited: it is idle.
    pub fn tick(&mut self) -> Out<K> {
        if self.queue.is_empty() && self.held.is_empty() {
            self.busy = false;
            return Out::none();
        }
        let mut out = self.drain();
        out.schedule_tick = true;
        out
    }

    /// Everything waiting, now (before a socket is accepted or closed, so that it sees exactly the
    /// events committed while it was open). The batcher's busy state is unchanged.
    pub fn flush(&mut self) -> Out<K> {
        self.drain()
    }

    fn drain(&mut self) -> Out<K> {
        let queue = std::mem::take(&mut self.queue);
        self.queued_bytes = 0;
        let own = std::mem::take(&mut self.held)
            .into_iter()
            .map(|(k, extra)| {
                let mut lines: Vec<&str> = queue.iter().map(String::as_str).collect();
                lines.extend(extra.iter().map(String::as_str));
                (k, join(&lines))
            })
            .collect();
        Out { all: join(&queue), own, schedule_tick: false }
    }
}

/// The frames of one socket in an [`Out`] of a batcher that serves that socket alone (`K = ()`):
/// its own list when something was held for it, else the shared one.
fn one_socket(out: Out<()>) -> Vec<String> {
    match out.own.into_iter().next() {
        Some((_, frames)) => frames,
        None => out.all,
    }
}

/// What a [`PerSocket`] call asks the shell to send to one socket now.
#[derive(Debug, PartialEq)]
pub struct Now {
    pub frames: Vec<String>,
    /// The first socket just became busy: call [`PerSocket::tick`] after the runtime's next turn.
    pub schedule_tick: bool,
}

/// Batching for an object whose opted-in sockets each get their own frames (the hub: every socket
/// follows its own contexts), where [`Batcher`] serves sockets that all get the same ones. Each
/// socket is one [`Batcher`] with the same rules (a lone frame goes at once, frames ready while
/// that socket is busy wait for the tick, a reply follows the frames that wait); one tick serves
/// them all. Only busy sockets are held: a socket whose tick finds nothing new is dropped, so this
/// holds at most the opted-in sockets sent to in the last turn.
#[derive(Debug)]
pub struct PerSocket<K> {
    busy: Vec<(K, Batcher<()>)>,
}

impl<K> Default for PerSocket<K> {
    fn default() -> Self {
        PerSocket { busy: Vec::new() }
    }
}

impl<K: PartialEq + Clone> PerSocket<K> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sockets that are busy (a tick is due while this is not zero).
    pub fn busy(&self) -> usize {
        self.busy.len()
    }

    fn find(&mut self, socket: &K) -> Option<&mut Batcher<()>> {
        self.busy.iter_mut().find(|(k, _)| k == socket).map(|(_, b)| b)
    }

    /// Frames for `socket`, in order (all of one command's frames at once): now, joined, when the
    /// socket is idle; otherwise at the tick (but for whole batches).
    pub fn ready(&mut self, socket: K, frames: Vec<String>) -> Now {
        if frames.is_empty() {
            return Now { frames: Vec::new(), schedule_tick: false };
        }
        if let Some(b) = self.find(&socket) {
            return Now { frames: b.ready(frames).all, schedule_tick: false };
        }
        let schedule_tick = self.busy.is_empty();
        let mut b = Batcher::new();
        let frames = b.ready(frames).all;
        self.busy.push((socket, b));
        Now { frames, schedule_tick }
    }

    /// A frame for `socket` alone (an answer to what it sent): `Some` to send now, `None` when
    /// frames wait for it (it goes after them, at the tick).
    pub fn reply(&mut self, socket: &K, frame: String) -> Option<String> {
        match self.find(socket) {
            Some(b) => b.reply((), frame),
            None => Some(frame),
        }
    }

    /// The runtime had its turn: what waited goes now, per socket; answers whether a tick is due
    /// again (some socket was sent something).
    pub fn tick(&mut self) -> (Vec<(K, Vec<String>)>, bool) {
        let mut out = Vec::new();
        self.busy.retain_mut(|(k, b)| {
            let o = b.tick();
            if b.busy() {
                out.push((k.clone(), one_socket(o)));
            }
            b.busy()
        });
        (out, !self.busy.is_empty())
    }

    /// What waits for `socket`, now (before it is closed). It stays busy until the tick.
    pub fn flush(&mut self, socket: &K) -> Vec<String> {
        match self.find(socket) {
            Some(b) => one_socket(b.flush()),
            None => Vec::new(),
        }
    }

    /// What waits for every socket, now (before sockets are closed in bulk).
    pub fn flush_all(&mut self) -> Vec<(K, Vec<String>)> {
        let all = self.busy.iter_mut().map(|(k, b)| (k.clone(), one_socket(b.flush())));
        all.filter(|(_, f)| !f.is_empty()).collect()
    }

    /// The socket is gone: what waited for it is dropped.
    pub fn forget(&mut self, socket: &K) {
        self.busy.retain(|(k, _)| k != socket);
    }
}

#[cfg(test)]
mod tests;
