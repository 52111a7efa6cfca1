//! The events of a recorded session. Bodies are kept up to the policy's
//! limit per message (the rest is counted, not kept), base64-encoded.

use serde::{Deserialize, Serialize};

/// An event and when it happened, in microseconds since the recording
/// started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recorded {
    pub t_us: u64,
    #[serde(flatten)]
    pub event: Event,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// A client connection (TCP/TLS) carried requests of this session.
    ConnOpen {
        conn: u64,
        client: String,
        tls: bool,
    },
    ConnClose {
        conn: u64,
    },
    /// `req` numbers exchanges within the recording.
    RequestHead {
        conn: u64,
        req: u64,
        method: String,
        uri: String,
        version: String,
        headers: Vec<(String, String)>,
    },
    RequestBody {
        conn: u64,
        req: u64,
        /// base64 of the kept bytes.
        data: String,
        /// Bytes in this piece, kept or not.
        len: u64,
        /// True when some of this piece was not kept (over the limit).
        truncated: bool,
    },
    ResponseHead {
        conn: u64,
        req: u64,
        status: u16,
        headers: Vec<(String, String)>,
    },
    ResponseBody {
        conn: u64,
        req: u64,
        data: String,
        len: u64,
        truncated: bool,
    },
    /// The exchange is complete (both bodies ended).
    ExchangeEnd {
        conn: u64,
        req: u64,
    },
    WsMessage {
        conn: u64,
        req: u64,
        /// `client` (to the app) or `server` (to the client).
        dir: String,
        /// `text`, `binary`, `close`, `ping`, `pong`.
        opcode: String,
        data: String,
        len: u64,
        truncated: bool,
        /// Identical control messages (pings, pongs) before this one that
        /// were coalesced into it rather than recorded one by one.
        #[serde(default, skip_serializing_if = "is_zero")]
        repeated: u64,
    },
    Error {
        conn: u64,
        req: u64,
        message: String,
    },
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}
