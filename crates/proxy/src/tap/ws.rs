//! The WebSocket tap: records each message of one direction of an
//! upgraded tunnel as its bytes pass, without touching them.

use std::sync::Arc;

use base64::Engine;
use moat_recording::Event;

use super::Exchange;
use crate::recorder::Active;

/// Watches one direction of a WebSocket tunnel and records each message
/// (RFC 6455 frames: client frames are masked, messages may be split into
/// frames, control frames may come between them). It only reads what
/// passes; the bytes themselves go through untouched.
pub struct WsTap {
    rec: Arc<Active>,
    conn: u64,
    req: u64,
    dir: &'static str,
    limit: u64,
    state: WsState,
    /// The data message being assembled: opcode, kept bytes, total length.
    data: Option<(u8, Vec<u8>, u64)>,
    /// The control frame being read.
    control: Option<(u8, Vec<u8>, u64)>,
    /// Per kind (ping, pong): the last one recorded (payload, when), and
    /// how many identical ones since were coalesced into a count.
    coalesced: [Coalesced; 2],
    /// The recording was closed (queue full): the tunnel must close.
    stopped: bool,
}

#[derive(Default)]
struct Coalesced {
    last: Option<(Vec<u8>, std::time::Instant)>,
    repeated: u64,
}

impl Drop for WsTap {
    fn drop(&mut self) {
        self.flush_coalesced();
    }
}

impl WsTap {
    /// Writes the control messages still only counted: the last one
    /// counted stands for itself and those before it. Called before any
    /// other message, so the recording keeps the order of events.
    fn flush_coalesced(&mut self) {
        for (i, opcode) in [(0, 9u8), (1, 10u8)] {
            let c = &mut self.coalesced[i];
            if c.repeated > 0 {
                let repeated = c.repeated - 1;
                c.repeated = 0;
                if let Some((data, _)) = c.last.take() {
                    let n = data.len() as u64;
                    self.emit((opcode, data, n), repeated);
                }
            }
        }
    }
}

enum WsState {
    Header(Vec<u8>),
    Payload {
        fin: bool,
        opcode: u8,
        mask: Option<[u8; 4]>,
        remaining: u64,
        offset: u64,
    },
    /// The stream stopped making sense: record nothing more.
    Lost,
}

impl Exchange {
    /// A tap for one direction of the WebSocket this exchange upgraded to:
    /// `client` (to the app) or `server` (to the client).
    pub fn ws_tap(&self, dir: &'static str) -> WsTap {
        WsTap {
            rec: self.rec.clone(),
            conn: self.conn,
            req: self.req,
            dir,
            limit: self.policy.body_limit,
            state: WsState::Header(Vec::new()),
            data: None,
            control: None,
            coalesced: Default::default(),
            stopped: false,
        }
    }
}

fn opcode_name(op: u8) -> &'static str {
    match op {
        1 => "text",
        2 => "binary",
        8 => "close",
        9 => "ping",
        10 => "pong",
        _ => "other",
    }
}

impl WsTap {
    /// Waits while the recorder is behind (backpressure on the side that
    /// sends); `false` if it stayed behind for long.
    pub async fn room(&self) -> bool {
        self.rec
            .queue()
            .room(std::time::Duration::from_secs(30))
            .await
    }

    /// Reads bytes passing one way; `false` once the recording has been
    /// closed (the recorder's queue was full): the caller closes the
    /// tunnel, so nothing passes unrecorded.
    pub fn feed(&mut self, mut bytes: &[u8]) -> bool {
        // A live WebSocket keeps its recording open.
        self.rec.touch();
        while !bytes.is_empty() && !self.stopped {
            match &mut self.state {
                WsState::Lost => return true,
                WsState::Header(h) => {
                    h.push(bytes[0]);
                    bytes = &bytes[1..];
                    if let Some(state) = parse_header(h) {
                        self.begin_frame(&state);
                        self.state = state;
                        self.maybe_end_frame();
                    } else if h.len() >= 14 {
                        self.state = WsState::Lost;
                    }
                }
                WsState::Payload {
                    mask,
                    remaining,
                    offset,
                    opcode,
                    ..
                } => {
                    let n = (*remaining).min(bytes.len() as u64) as usize;
                    let mut piece = bytes[..n].to_vec();
                    if let Some(m) = mask {
                        for (i, b) in piece.iter_mut().enumerate() {
                            *b ^= m[((*offset + i as u64) % 4) as usize];
                        }
                    }
                    *remaining -= n as u64;
                    *offset += n as u64;
                    let control = *opcode >= 8;
                    let limit = self.limit;
                    let target = if control {
                        &mut self.control
                    } else {
                        &mut self.data
                    };
                    if let Some((_, kept, total)) = target {
                        let room = limit.saturating_sub(kept.len() as u64) as usize;
                        kept.extend_from_slice(&piece[..piece.len().min(room)]);
                        *total += n as u64;
                    }
                    bytes = &bytes[n..];
                    self.maybe_end_frame();
                }
            }
        }
        !self.stopped
    }

    fn begin_frame(&mut self, state: &WsState) {
        if let WsState::Payload { opcode, .. } = state {
            if *opcode >= 8 {
                self.control = Some((*opcode, Vec::new(), 0));
            } else if *opcode != 0 || self.data.is_none() {
                // A new data message (opcode 0 continues the current one).
                self.data = Some((*opcode, Vec::new(), 0));
            }
        }
    }

    fn maybe_end_frame(&mut self) {
        let WsState::Payload {
            fin,
            opcode,
            remaining: 0,
            ..
        } = self.state
        else {
            return;
        };
        if opcode >= 8 {
            if let Some(m) = self.control.take() {
                self.control_message(m);
            }
        } else if fin {
            if let Some(m) = self.data.take() {
                self.flush_coalesced();
                self.emit(m, 0);
            }
        }
        self.state = WsState::Header(Vec::new());
    }

    /// A ping or pong identical to the last one recorded within a second
    /// is counted, not recorded (a flood of tiny pings is a cheap way to
    /// make a recorder work); others are recorded with the count.
    fn control_message(&mut self, m: (u8, Vec<u8>, u64)) {
        let slot = match m.0 {
            9 => 0,
            10 => 1,
            // A close is recorded as it is, after what it follows.
            _ => {
                self.flush_coalesced();
                return self.emit(m, 0);
            }
        };
        let now = std::time::Instant::now();
        let c = &mut self.coalesced[slot];
        if let Some((data, at)) = &c.last {
            if *data == m.1 && now.duration_since(*at) < std::time::Duration::from_secs(1) {
                c.repeated += 1;
                return;
            }
        }
        c.last = Some((m.1.clone(), now));
        let repeated = std::mem::take(&mut c.repeated);
        self.emit(m, repeated);
    }

    fn emit(&mut self, (opcode, kept, total): (u8, Vec<u8>, u64), repeated: u64) {
        let accepted = self.rec.record(Event::WsMessage {
            conn: self.conn,
            req: self.req,
            dir: self.dir.to_owned(),
            opcode: opcode_name(opcode).to_owned(),
            data: base64::engine::general_purpose::STANDARD.encode(&kept),
            len: total,
            truncated: (kept.len() as u64) < total,
            repeated,
        });
        if !accepted {
            self.stopped = true;
        }
    }
}

/// A complete frame header → the payload state; `None` while incomplete.
fn parse_header(h: &[u8]) -> Option<WsState> {
    if h.len() < 2 {
        return None;
    }
    let fin = h[0] & 0x80 != 0;
    let opcode = h[0] & 0x0f;
    let masked = h[1] & 0x80 != 0;
    let (len, mut at) = match h[1] & 0x7f {
        126 if h.len() >= 4 => (u64::from(u16::from_be_bytes([h[2], h[3]])), 4),
        127 if h.len() >= 10 => (u64::from_be_bytes(h[2..10].try_into().ok()?), 10),
        126 | 127 => return None,
        n => (u64::from(n), 2),
    };
    let mask = if masked {
        if h.len() < at + 4 {
            return None;
        }
        let m = [h[at], h[at + 1], h[at + 2], h[at + 3]];
        at += 4;
        Some(m)
    } else {
        None
    };
    (h.len() == at).then_some(WsState::Payload {
        fin,
        opcode,
        mask,
        remaining: len,
        offset: 0,
    })
}
