//! Opaque paging cursors for conversation lists: `<sortKey>.<conversationId>`, the last item of a page.

use crate::error::ApiError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListCursor {
    pub sort_key: i64,
    pub conversation_id: String,
}

impl ListCursor {
    pub fn encode(&self) -> String {
        format!("{}.{}", self.sort_key, self.conversation_id)
    }

    pub fn decode(s: &str) -> Result<Self, ApiError> {
        let bad = || ApiError::invalid("cursor: not a cursor this service gave out");
        let (key, id) = s.split_once('.').ok_or_else(bad)?;
        let sort_key = key.parse::<i64>().map_err(|_| bad())?;
        if sort_key.unsigned_abs() > crate::limits::MAX_SAFE_INTEGER as u64 {
            return Err(bad());
        }
        crate::ids::parse("cursor", id).map_err(|_| bad())?;
        Ok(ListCursor { sort_key, conversation_id: id.to_string() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_garbage() {
        let c = ListCursor { sort_key: 1_700_000_000_000, conversation_id: "01ARZ3NDEKTSV4RRFFQ69G5FAV".into() };
        assert_eq!(ListCursor::decode(&c.encode()).unwrap(), c);
        for bad in [
            "",
            "x",
            "1.",
            ".01ARZ3NDEKTSV4RRFFQ69G5FAV",
            "a.01ARZ3NDEKTSV4RRFFQ69G5FAV",
            "1.nope",
            "9007199254740992.01ARZ3NDEKTSV4RRFFQ69G5FAV",
        ] {
            assert!(ListCursor::decode(bad).is_err(), "{bad}");
        }
    }
}
