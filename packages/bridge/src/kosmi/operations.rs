//! The GraphQL operations the relay runs: the message subscription, the join, a send.

use super::{RoomId, JOIN_ROOM, ON_NEW_MESSAGE, SEND_MESSAGE};
use crate::graphql_ws::Operation;
use serde_json::json;

pub fn on_new_message(room: &RoomId) -> Operation {
    Operation {
        query: ON_NEW_MESSAGE.into(),
        operation_name: Some("OnNewMessage".into()),
        variables: json!({"roomId": room.as_str()}),
    }
}

pub fn join_room(room: &RoomId) -> Operation {
    Operation {
        query: JOIN_ROOM.into(),
        operation_name: Some("JoinRoom".into()),
        variables: json!({"id": room.as_str()}),
    }
}

pub fn send_message(room: &RoomId, body: &str) -> Operation {
    Operation {
        query: SEND_MESSAGE.into(),
        operation_name: Some("SendMessage".into()),
        variables: json!({"body": body, "roomId": room.as_str()}),
    }
}
