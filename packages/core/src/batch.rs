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
    /// events wait (it goes after them, at the tick).
    pub fn reply(&mut self, socket: K, frame: String) -> Option<String> {
        if self.queue.is_empty() {
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
mod tests {
    use super::*;

    fn frame(i: usize) -> String {
        format!(r#"{{"type":"event","seq":{i}}}"#)
    }

    fn lines(out: &[String]) -> Vec<String> {
        out.iter().flat_map(|b| split(b).map(str::to_string)).collect()
    }

    #[test]
    fn join_keeps_order_and_limits() {
        let frames: Vec<String> = (1..=200).map(frame).collect();
        let out = join(&frames);
        assert_eq!(out.len(), 4, "64 + 64 + 64 + 8");
        assert!(out.iter().all(|b| split(b).count() <= MAX_BATCH_EVENTS && b.len() <= MAX_BATCH_BYTES));
        assert_eq!(lines(&out), frames);
    }

    #[test]
    fn join_splits_by_bytes_and_sends_huge_frames_alone() {
        let big = "x".repeat(40 * 1024);
        let huge = "y".repeat(MAX_BATCH_BYTES + 1);
        let frames = vec![big.clone(), big.clone(), "a".to_string(), huge.clone(), "b".to_string()];
        let out = join(&frames);
        assert_eq!(out, vec![big.clone(), format!("{big}\na"), huge, "b".to_string()]);
        assert!(join::<String>(&[]).is_empty());
    }

    #[test]
    fn a_lone_event_goes_at_once_and_the_tick_makes_it_idle() {
        let mut b: Batcher<u8> = Batcher::new();
        let out = b.ready(vec![frame(1)]);
        assert_eq!(out.all, vec![frame(1)]);
        assert!(out.schedule_tick && b.busy());
        let out = b.tick();
        assert!(out.is_empty() && !out.schedule_tick && !b.busy());
        // Idle again: the next one goes at once too.
        assert_eq!(b.ready(vec![frame(2)]).all, vec![frame(2)]);
    }

    #[test]
    fn one_commands_frames_go_together_at_once() {
        let mut b: Batcher<u8> = Batcher::new();
        let out = b.ready((1..=3).map(frame).collect());
        assert_eq!(out.all, vec![format!("{}\n{}\n{}", frame(1), frame(2), frame(3))]);
    }

    #[test]
    fn events_ready_while_busy_wait_for_the_tick_and_go_together() {
        let mut b: Batcher<u8> = Batcher::new();
        b.ready(vec![frame(1)]);
        for i in 2..=5 {
            assert!(b.ready(vec![frame(i)]).is_empty());
        }
        let out = b.tick();
        assert_eq!(lines(&out.all), (2..=5).map(frame).collect::<Vec<_>>());
        assert_eq!(out.all.len(), 1);
        assert!(out.schedule_tick && b.busy(), "still busy: one more turn");
        assert!(b.tick().is_empty());
        assert!(!b.busy());
    }

    #[test]
    fn whole_batches_do_not_wait() {
        let mut b: Batcher<u8> = Batcher::new();
        b.ready(vec![frame(0)]);
        let mut sent = Vec::new();
        for i in 1..=150 {
            let out = b.ready(vec![frame(i)]);
            assert!(out.own.is_empty());
            sent.extend(out.all);
            assert!(b.waiting() < MAX_BATCH_EVENTS);
        }
        assert_eq!(sent.len(), 2, "two full batches of 64 went without a tick");
        sent.extend(b.tick().all);
        assert_eq!(lines(&sent), (1..=150).map(frame).collect::<Vec<_>>());
    }

    #[test]
    fn a_reply_follows_the_events_that_wait() {
        let mut b: Batcher<u8> = Batcher::new();
        b.ready(vec![frame(1)]);
        // Nothing waits: the ack of event 1 goes at once.
        assert_eq!(b.reply(7, "ack1".into()), Some("ack1".into()));
        b.ready(vec![frame(2)]);
        assert_eq!(b.reply(7, "ack2".into()), None);
        b.ready(vec![frame(3)]);
        assert_eq!(b.reply(7, "ack3".into()), None);
        let out = b.tick();
        assert_eq!(lines(&out.all), vec![frame(2), frame(3)]);
        assert_eq!(out.own.len(), 1);
        assert_eq!(out.own[0].0, 7);
        assert_eq!(lines(&out.own[0].1), vec![frame(2), frame(3), "ack2".into(), "ack3".into()]);
    }

    #[test]
    fn flush_sends_everything_and_keeps_the_tick_due() {
        let mut b: Batcher<u8> = Batcher::new();
        b.ready(vec![frame(1)]);
        b.ready(vec![frame(2)]);
        let out = b.flush();
        assert_eq!(out.all, vec![frame(2)]);
        assert!(b.busy());
        assert!(b.tick().is_empty());
        assert!(!b.busy());
    }

    #[test]
    fn per_socket_a_lone_frame_goes_at_once_and_one_tick_serves_every_socket() {
        let mut p: PerSocket<u8> = PerSocket::new();
        let now = p.ready(1, vec![frame(1)]);
        assert_eq!(now, Now { frames: vec![frame(1)], schedule_tick: true });
        // Another idle socket: at once too, and the tick already due serves it.
        let now = p.ready(2, vec![frame(2), frame(3)]);
        assert_eq!(now, Now { frames: vec![format!("{}\n{}", frame(2), frame(3))], schedule_tick: false });
        assert_eq!(p.busy(), 2);
        let (out, again) = p.tick();
        assert!(out.is_empty() && !again && p.busy() == 0, "nothing new: every socket is idle, none held");
        assert!(p.ready(1, vec![frame(4)]).schedule_tick, "idle again: the next frame goes at once");
    }

    #[test]
    fn per_socket_frames_ready_while_busy_wait_for_the_tick_per_socket() {
        let mut p: PerSocket<u8> = PerSocket::new();
        p.ready(1, vec![frame(1)]);
        for i in 2..=5 {
            assert!(p.ready(1, vec![frame(i)]).frames.is_empty());
        }
        // Socket 2 was idle: its frame does not wait for socket 1's.
        assert_eq!(p.ready(2, vec![frame(9)]).frames, vec![frame(9)]);
        let (out, again) = p.tick();
        assert!(again);
        assert_eq!(out.len(), 1, "only socket 1 had frames waiting: {out:?}");
        assert_eq!(out[0].0, 1);
        assert_eq!(out[0].1.len(), 1, "one text frame");
        assert_eq!(lines(&out[0].1), (2..=5).map(frame).collect::<Vec<_>>());
        assert_eq!(p.busy(), 1, "socket 2 went idle and is no longer held");
        let (out, again) = p.tick();
        assert!(out.is_empty() && !again && p.busy() == 0);
    }

    #[test]
    fn per_socket_a_reply_follows_the_frames_that_wait_for_its_socket_only() {
        let mut p: PerSocket<u8> = PerSocket::new();
        assert_eq!(p.reply(&1, "r0".into()), Some("r0".into()), "idle socket: at once");
        p.ready(1, vec![frame(1)]);
        p.ready(2, vec![frame(2)]);
        assert_eq!(p.reply(&1, "r1".into()), Some("r1".into()), "nothing waits: at once");
        p.ready(1, vec![frame(3)]);
        assert_eq!(p.reply(&1, "r2".into()), None);
        assert_eq!(p.reply(&2, "r3".into()), Some("r3".into()), "nothing waits for socket 2");
        let (out, _) = p.tick();
        assert_eq!(out.len(), 1);
        assert_eq!(lines(&out[0].1), vec![frame(3), "r2".to_string()]);
    }

    #[test]
    fn per_socket_flush_and_forget() {
        let mut p: PerSocket<u8> = PerSocket::new();
        p.ready(1, vec![frame(1)]);
        p.ready(2, vec![frame(2)]);
        p.ready(1, vec![frame(3)]);
        p.ready(2, vec![frame(4)]);
        assert_eq!(p.flush(&1), vec![frame(3)]);
        assert!(p.flush(&1).is_empty(), "sent once");
        assert!(p.flush(&7).is_empty());
        p.ready(1, vec![frame(5)]);
        assert_eq!(p.flush_all(), vec![(1, vec![frame(5)]), (2, vec![frame(4)])]);
        p.ready(2, vec![frame(6)]);
        p.forget(&2);
        let (out, again) = p.tick();
        assert!(out.is_empty(), "a forgotten socket's frames are dropped: {out:?}");
        assert!(!again && p.busy() == 0);
    }

    #[test]
    fn per_socket_whole_batches_do_not_wait_and_order_is_kept() {
        let mut p: PerSocket<u8> = PerSocket::new();
        let mut sent = p.ready(1, vec![frame(0)]).frames;
        for i in 1..=150 {
            sent.extend(p.ready(1, vec![frame(i)]).frames);
        }
        assert_eq!(sent.len(), 3, "the first frame, then two full batches without a tick");
        let (out, _) = p.tick();
        for (_, f) in out {
            sent.extend(f);
        }
        assert!(sent.iter().all(|b| split(b).count() <= MAX_BATCH_EVENTS && b.len() <= MAX_BATCH_BYTES));
        assert_eq!(lines(&sent), (0..=150).map(frame).collect::<Vec<_>>());
    }

    #[test]
    fn opt_in_parses_the_parameter() {
        assert_eq!(opt_in(None).ok(), Some(false));
        assert_eq!(opt_in(Some("0")).ok(), Some(false));
        assert_eq!(opt_in(Some("1")).ok(), Some(true));
        assert_eq!(opt_in(Some("true")).ok(), Some(true));
        assert!(opt_in(Some("yes")).is_err());
    }

    #[test]
    fn split_ignores_empty_lines() {
        assert_eq!(split("a\nb\n").collect::<Vec<_>>(), vec!["a", "b"]);
    }
}
