//! The server half of WebSocket (RFC 6455) as `kubectl exec` needs it: the opening handshake's
//! accept key, subprotocol choice between `v5.channel.k8s.io` and `v4.channel.k8s.io`, and a
//! sans-IO frame codec (masked client frames in, unmasked server frames out, fragmented
//! messages reassembled, control frames passed through).
//!
//! Written here rather than pulled in (tokio-tungstenite) because the subset is small: one
//! binary message type, no extensions, no client role, and it keeps the agent's dependency
//! tree as it was. One thing to know before editing: control frames may arrive between the
//! fragments of a data message (RFC 6455 §5.4), so the decoder keeps the partial message
//! while it hands control frames out.

use thiserror::Error;

/// RFC 6455 §1.3: appended to the client's key before hashing.
const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Refuses messages larger than this (kubectl sends stdin in 32 KiB chunks).
pub const MAX_MESSAGE: usize = 16 << 20;

/// Subprotocols we speak, best first.
pub const PROTOCOLS: [&str; 2] = ["v5.channel.k8s.io", "v4.channel.k8s.io"];

/// `Sec-WebSocket-Accept` for a client's `Sec-WebSocket-Key`: base64(SHA-1(key + GUID)).
pub fn accept_key(key: &str) -> String {
    use base64::Engine as _;
    let digest = ring::digest::digest(
        &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
        format!("{}{GUID}", key.trim()).as_bytes(),
    );
    base64::engine::general_purpose::STANDARD.encode(digest.as_ref())
}

/// The subprotocol to answer with, from the values of every `Sec-WebSocket-Protocol` header.
pub fn pick_protocol<'a>(offered: impl IntoIterator<Item = &'a str>) -> Option<&'static str> {
    let offered: Vec<&str> = offered
        .into_iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    PROTOCOLS.into_iter().find(|p| offered.contains(p))
}

/// Frame opcodes (RFC 6455 §5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opcode {
    Continuation,
    Text,
    Binary,
    Close,
    Ping,
    Pong,
}

impl Opcode {
    fn from_bits(bits: u8) -> Option<Opcode> {
        Some(match bits {
            0x0 => Opcode::Continuation,
            0x1 => Opcode::Text,
            0x2 => Opcode::Binary,
            0x8 => Opcode::Close,
            0x9 => Opcode::Ping,
            0xA => Opcode::Pong,
            _ => return None,
        })
    }

    fn bits(self) -> u8 {
        match self {
            Opcode::Continuation => 0x0,
            Opcode::Text => 0x1,
            Opcode::Binary => 0x2,
            Opcode::Close => 0x8,
            Opcode::Ping => 0x9,
            Opcode::Pong => 0xA,
        }
    }

    fn is_control(self) -> bool {
        matches!(self, Opcode::Close | Opcode::Ping | Opcode::Pong)
    }
}

/// A whole message (data) or a control frame, as the peer sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Binary(Vec<u8>),
    Text(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    /// The close payload: status code (2 bytes) and reason, possibly empty.
    Close(Vec<u8>),
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum WebSocketError {
    #[error("reserved bits set in a frame header")]
    ReservedBits,
    #[error("unknown opcode {0:#x}")]
    UnknownOpcode(u8),
    #[error("client frames must be masked")]
    Unmasked,
    #[error("control frame is fragmented or longer than 125 bytes")]
    BadControlFrame,
    #[error("continuation frame without a message to continue")]
    UnexpectedContinuation,
    #[error("new data frame while a fragmented message is incomplete")]
    InterleavedMessage,
    #[error("message longer than {MAX_MESSAGE} bytes")]
    TooLarge,
}

/// Encodes one unmasked, final server frame.
pub fn encode(opcode: Opcode, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 10);
    out.push(0x80 | opcode.bits());
    match payload.len() {
        n @ 0..=125 => out.push(n as u8),
        n @ 126..=0xFFFF => {
            out.push(126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(payload);
    out
}

/// A close frame with a status code (1000: normal closure) and no reason.
pub fn close_frame(code: u16) -> Vec<u8> {
    encode(Opcode::Close, &code.to_be_bytes())
}

/// Turns bytes from the client into messages. Feed with [`Decoder::extend`], then call
/// [`Decoder::next_message`] until it returns `Ok(None)`.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: Vec<u8>,
    /// Opcode and payload so far of a fragmented data message.
    partial: Option<(Opcode, Vec<u8>)>,
}

impl Decoder {
    pub fn extend(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete message, or `None` until more bytes arrive.
    pub fn next_message(&mut self) -> Result<Option<Message>, WebSocketError> {
        loop {
            let Some((fin, opcode, payload)) = self.next_frame()? else {
                return Ok(None);
            };
            if opcode.is_control() {
                if !fin || payload.len() > 125 {
                    return Err(WebSocketError::BadControlFrame);
                }
                return Ok(Some(match opcode {
                    Opcode::Ping => Message::Ping(payload),
                    Opcode::Pong => Message::Pong(payload),
                    _ => Message::Close(payload),
                }));
            }
            let (kind, data) = match (opcode, self.partial.take()) {
                (Opcode::Continuation, None) => return Err(WebSocketError::UnexpectedContinuation),
                (Opcode::Continuation, Some((kind, mut data))) => {
                    data.extend_from_slice(&payload);
                    (kind, data)
                }
                (_, Some(_)) => return Err(WebSocketError::InterleavedMessage),
                (kind, None) => (kind, payload),
            };
            if data.len() > MAX_MESSAGE {
                return Err(WebSocketError::TooLarge);
            }
            if !fin {
                self.partial = Some((kind, data));
                continue;
            }
            return Ok(Some(match kind {
                Opcode::Text => Message::Text(data),
                _ => Message::Binary(data),
            }));
        }
    }

    /// One frame, unmasked, if the buffer holds all of it.
    fn next_frame(&mut self) -> Result<Option<(bool, Opcode, Vec<u8>)>, WebSocketError> {
        let b = &self.buf;
        if b.len() < 2 {
            return Ok(None);
        }
        if b[0] & 0x70 != 0 {
            return Err(WebSocketError::ReservedBits);
        }
        let fin = b[0] & 0x80 != 0;
        let opcode =
            Opcode::from_bits(b[0] & 0x0F).ok_or(WebSocketError::UnknownOpcode(b[0] & 0x0F))?;
        if b[1] & 0x80 == 0 {
            return Err(WebSocketError::Unmasked);
        }
        let (len, mut at) = match b[1] & 0x7F {
            126 => {
                if b.len() < 4 {
                    return Ok(None);
                }
                (u64::from(u16::from_be_bytes([b[2], b[3]])), 4)
            }
            127 => {
                if b.len() < 10 {
                    return Ok(None);
                }
                let mut n = [0u8; 8];
                n.copy_from_slice(&b[2..10]);
                (u64::from_be_bytes(n), 10)
            }
            n => (u64::from(n), 2),
        };
        let len = usize::try_from(len)
            .ok()
            .filter(|l| *l <= MAX_MESSAGE)
            .ok_or(WebSocketError::TooLarge)?;
        if b.len() < at + 4 + len {
            return Ok(None);
        }
        let mask = [b[at], b[at + 1], b[at + 2], b[at + 3]];
        at += 4;
        let payload: Vec<u8> = b[at..at + len]
            .iter()
            .enumerate()
            .map(|(i, byte)| byte ^ mask[i % 4])
            .collect();
        self.buf.drain(..at + len);
        Ok(Some((fin, opcode, payload)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client frame as a browser or client-go would send it.
    fn masked(first: u8, payload: &[u8]) -> Vec<u8> {
        let mask = [0x37, 0xfa, 0x21, 0x3d];
        let mut out = vec![first];
        match payload.len() {
            n @ 0..=125 => out.push(0x80 | n as u8),
            n @ 126..=0xFFFF => {
                out.push(0x80 | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(0x80 | 127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        out
    }

    #[test]
    fn accept_key_matches_rfc_6455_example() {
        // RFC 6455 §1.3 (the value is also what `sha1sum | base64` gives).
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn v5_is_preferred_and_unknown_protocols_are_refused() {
        assert_eq!(
            pick_protocol(["v4.channel.k8s.io, v5.channel.k8s.io"]),
            Some("v5.channel.k8s.io")
        );
        assert_eq!(
            pick_protocol(["channel.k8s.io", "v4.channel.k8s.io"]),
            Some("v4.channel.k8s.io")
        );
        assert_eq!(pick_protocol(["SPDY/3.1+portforward.k8s.io"]), None);
    }

    #[test]
    fn rfc_example_masked_hello_decodes() {
        // RFC 6455 §5.7: a single-frame masked text message containing "Hello".
        let bytes = [
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        let mut d = Decoder::default();
        d.extend(&bytes[..4]);
        assert_eq!(d.next_message(), Ok(None), "incomplete frame waits");
        d.extend(&bytes[4..]);
        assert_eq!(d.next_message(), Ok(Some(Message::Text(b"Hello".to_vec()))));
        assert_eq!(d.next_message(), Ok(None));
    }

    #[test]
    fn fragments_reassemble_around_a_ping() {
        let mut d = Decoder::default();
        d.extend(&masked(0x02, b"\x00he"));
        d.extend(&masked(0x89, b"p"));
        d.extend(&masked(0x80, b"llo"));
        assert_eq!(d.next_message(), Ok(Some(Message::Ping(b"p".to_vec()))));
        assert_eq!(
            d.next_message(),
            Ok(Some(Message::Binary(b"\x00hello".to_vec())))
        );
    }

    #[test]
    fn extended_lengths_round_trip_through_the_header() {
        for len in [0usize, 125, 126, 65535, 65536, 70000] {
            let payload = vec![7u8; len];
            let mut d = Decoder::default();
            d.extend(&masked(0x82, &payload));
            assert_eq!(d.next_message(), Ok(Some(Message::Binary(payload.clone()))));
            let frame = encode(Opcode::Binary, &payload);
            let header = frame.len() - len;
            assert_eq!(
                header,
                match len {
                    0..=125 => 2,
                    126..=65535 => 4,
                    _ => 10,
                }
            );
            assert_eq!(frame[0], 0x82);
        }
        assert_eq!(close_frame(1000), vec![0x88, 0x02, 0x03, 0xe8]);
    }

    #[test]
    fn protocol_violations_are_errors() {
        let mut d = Decoder::default();
        d.extend(&[0x82, 0x01, b'x']);
        assert_eq!(d.next_message(), Err(WebSocketError::Unmasked));
        let mut d = Decoder::default();
        d.extend(&masked(0x80, b"x"));
        assert_eq!(
            d.next_message(),
            Err(WebSocketError::UnexpectedContinuation)
        );
        let mut d = Decoder::default();
        d.extend(&masked(0x09, b"x"));
        assert_eq!(d.next_message(), Err(WebSocketError::BadControlFrame));
        let mut d = Decoder::default();
        d.extend(&masked(0x02, b"a"));
        d.extend(&masked(0x82, b"b"));
        assert_eq!(d.next_message(), Err(WebSocketError::InterleavedMessage));
    }
}
