//! ULIDs: parsing ids from requests, and a monotonic generator so that ids made by one conversation
//! sort in the order they were made, even within one millisecond or when the clock steps back.

use crate::error::ApiError;
pub use ulid::Ulid;

/// Parses a ULID from a request field; answers `invalid_request` naming the field.
pub fn parse(field: &str, s: &str) -> Result<Ulid, ApiError> {
    if s.len() != 26 {
        return Err(ApiError::invalid(format!("{field}: must be a ULID")));
    }
    Ulid::from_string(s).map_err(|_| ApiError::invalid(format!("{field}: must be a ULID")))
}

/// Defines a ULID id newtype: parsed once where it enters (the router), then passed typed, so no
/// code behind the edge checks an id again or mistakes one kind of id for another.
macro_rules! ulid_id {
    ($(#[$doc:meta])* $name:ident, $field:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// Parses a client-supplied id; a clear 400 names the field otherwise.
            pub fn parse(s: &str) -> Result<Self, ApiError> {
                parse($field, s)?;
                Ok($name(s.to_string()))
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

ulid_id!(
    /// A conversation's id (a ULID).
    ConversationId,
    "conversationId"
);
ulid_id!(
    /// A message's id (a ULID).
    MessageId,
    "messageId"
);

/// Makes ids that strictly increase. `last` is the greatest id made so far (restored from storage).
#[derive(Debug, Default, Clone)]
pub struct MonotonicUlids {
    last: Option<Ulid>,
}

impl MonotonicUlids {
    pub fn new(last: Option<Ulid>) -> Self {
        MonotonicUlids { last }
    }

    /// The next id at `now_ms` with the given random bits (only the low 80 are used).
    pub fn next(&mut self, now_ms: u64, random: u128) -> Ulid {
        let fresh = Ulid::from_parts(now_ms, random);
        let id = match self.last {
            Some(last) if fresh <= last => match last.increment() {
                Some(next) => next,
                // The random part overflowed within one millisecond: move to the next millisecond.
                None => Ulid::from_parts(last.timestamp_ms() + 1, 0),
            },
            _ => fresh,
        };
        self.last = Some(id);
        id
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn typed_ids_parse_once_and_name_their_field() {
        let id = super::ConversationId::parse("01ARZ3NDEKTSV4RRFFQ69G5FAV").unwrap();
        assert_eq!(id.as_str(), "01ARZ3NDEKTSV4RRFFQ69G5FAV");
        assert_eq!(&*id, "01ARZ3NDEKTSV4RRFFQ69G5FAV");
        let e = super::ConversationId::parse("not-a-ulid").unwrap_err();
        assert_eq!((e.status(), e.message.as_str()), (400, "conversationId: must be a ULID"));
        let e = super::MessageId::parse("x").unwrap_err();
        assert_eq!(e.message, "messageId: must be a ULID");
    }

    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parse_rejects_garbage() {
        assert!(parse("id", "01ARZ3NDEKTSV4RRFFQ69G5FAV").is_ok());
        assert!(parse("id", "not-a-ulid").is_err());
        assert!(parse("id", "01ARZ3NDEKTSV4RRFFQ69G5FA").is_err());
        assert!(parse("id", "01ARZ3NDEKTSV4RRFFQ69G5FAVX").is_err());
    }

    #[test]
    fn clock_going_back_still_increases() {
        let mut g = MonotonicUlids::default();
        let a = g.next(1000, 5);
        let b = g.next(999, 1);
        let c = g.next(1000, 0);
        assert!(a < b && b < c);
    }

    #[test]
    fn overflow_moves_to_next_ms() {
        let mut g = MonotonicUlids::new(Some(Ulid::from_parts(10, u128::MAX)));
        let id = g.next(10, 0);
        assert_eq!(id.timestamp_ms(), 11);
    }

    proptest! {
        #[test]
        fn always_strictly_increasing(steps in proptest::collection::vec((0u64..2000, any::<u128>()), 1..200)) {
            let mut g = MonotonicUlids::default();
            let mut prev: Option<Ulid> = None;
            for (t, r) in steps {
                let id = g.next(t, r);
                if let Some(p) = prev { prop_assert!(id > p); }
                prev = Some(id);
            }
        }
    }
}
