//! Sans-IO Pusher Channels protocol 7 (see the crate description).
