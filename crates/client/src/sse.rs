//! An incremental parser for server-sent events (the WHATWG `text/event-stream` format).
//!
//! Bytes arrive in chunks that may split a line, a CRLF pair or a UTF-8 sequence anywhere;
//! [`SseParser::feed`] buffers the unfinished line and returns every frame completed so far.

/// One dispatched event: the fields collected up to a blank line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field; `"message"` when the event named none.
    pub event: String,
    /// The `id:` field of this event, if it carried one.
    pub id: Option<String>,
    /// The `data:` lines joined with `\n`.
    pub data: String,
}

/// What the parser recognised in the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SseFrame {
    Event(SseEvent),
    /// A comment line (`: ping`), without the colon and one leading space. Servers use them as
    /// heartbeats, so a client counts them as a sign of life.
    Comment(String),
}

#[derive(Debug, Default)]
pub struct SseParser {
    /// Bytes of the line not yet terminated.
    line: Vec<u8>,
    /// The previous chunk ended in `\r`: a `\n` starting the next chunk belongs to that line end.
    after_cr: bool,
    event: Option<String>,
    id: Option<String>,
    data: Vec<String>,
}

impl SseParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Consumes a chunk and returns the frames it completed, in order.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<SseFrame> {
        let mut frames = Vec::new();
        for &byte in chunk {
            let after_cr = std::mem::replace(&mut self.after_cr, false);
            match byte {
                b'\n' if after_cr => {}
                b'\n' | b'\r' => {
                    self.after_cr = byte == b'\r';
                    let line = std::mem::take(&mut self.line);
                    if let Some(frame) = self.line_end(&line) {
                        frames.push(frame);
                    }
                }
                _ => self.line.push(byte),
            }
        }
        frames
    }

    fn line_end(&mut self, line: &[u8]) -> Option<SseFrame> {
        // Lines end only at CR/LF bytes, which never occur inside a UTF-8 sequence, so a
        // complete line is a complete string (invalid bytes become U+FFFD).
        let line = String::from_utf8_lossy(line);
        if line.is_empty() {
            return self.dispatch();
        }
        if let Some(comment) = line.strip_prefix(':') {
            return Some(SseFrame::Comment(
                comment.strip_prefix(' ').unwrap_or(comment).to_string(),
            ));
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line.as_ref(), ""),
        };
        match field {
            "event" => self.event = Some(value.to_string()),
            "data" => self.data.push(value.to_string()),
            // An id containing NUL is ignored, as the standard says.
            "id" if !value.contains('\0') => self.id = Some(value.to_string()),
            // `retry` and unknown fields: the client keeps its own backoff.
            _ => {}
        }
        None
    }

    fn dispatch(&mut self) -> Option<SseFrame> {
        let event = self.event.take();
        let id = self.id.take();
        // An event without data lines is not dispatched (as in browsers).
        if self.data.is_empty() {
            return None;
        }
        let data = std::mem::take(&mut self.data).join("\n");
        Some(SseFrame::Event(SseEvent {
            event: event.unwrap_or_else(|| "message".to_string()),
            id,
            data,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STREAM: &str = ": ping\r\n\
        event: config\r\n\
        id: 7\r\n\
        data: {\"key\":\"app.json\",\r\n\
        data: \"content\":\"héllo\"}\r\n\
        \r\n\
        :ping\n\
        \n\
        event: deleted\rid: 8\rdata: {\"key\":\"old\"}\r\r\
        data\n\
        data:  two spaces\n\
        \n\
        id: 9\n\
        \n\
        data: plain\n\n";

    fn expected() -> Vec<SseFrame> {
        vec![
            SseFrame::Comment("ping".into()),
            SseFrame::Event(SseEvent {
                event: "config".into(),
                id: Some("7".into()),
                data: "{\"key\":\"app.json\",\n\"content\":\"héllo\"}".into(),
            }),
            SseFrame::Comment("ping".into()),
            SseFrame::Event(SseEvent {
                event: "deleted".into(),
                id: Some("8".into()),
                data: "{\"key\":\"old\"}".into(),
            }),
            SseFrame::Event(SseEvent {
                event: "message".into(),
                id: None,
                data: "\n two spaces".into(),
            }),
            // `id: 9` alone has no data, so nothing is dispatched for it.
            SseFrame::Event(SseEvent {
                event: "message".into(),
                id: None,
                data: "plain".into(),
            }),
        ]
    }

    #[test]
    fn parses_a_whole_stream() {
        assert_eq!(SseParser::new().feed(STREAM.as_bytes()), expected());
    }

    #[test]
    fn any_single_split_gives_the_same_frames() {
        let bytes = STREAM.as_bytes();
        for at in 0..=bytes.len() {
            let mut parser = SseParser::new();
            let mut frames = parser.feed(&bytes[..at]);
            frames.extend(parser.feed(&bytes[at..]));
            assert_eq!(frames, expected(), "split at byte {at}");
        }
    }

    #[test]
    fn byte_by_byte_gives_the_same_frames() {
        let mut parser = SseParser::new();
        let frames: Vec<SseFrame> = STREAM
            .as_bytes()
            .iter()
            .flat_map(|b| parser.feed(std::slice::from_ref(b)))
            .collect();
        assert_eq!(frames, expected());
    }

    #[test]
    fn unfinished_event_waits_for_the_blank_line() {
        let mut parser = SseParser::new();
        assert!(parser.feed(b"event: config\nid: 1\ndata: x\n").is_empty());
        assert_eq!(parser.feed(b"\n").len(), 1);
    }

    #[test]
    fn a_cr_at_a_chunk_end_does_not_swallow_a_real_blank_line() {
        let mut parser = SseParser::new();
        assert!(parser.feed(b"data: a\r").is_empty());
        // LF right after CR is the same line end; the following CR is the blank line.
        assert_eq!(
            parser.feed(b"\n\r"),
            vec![SseFrame::Event(SseEvent {
                event: "message".into(),
                id: None,
                data: "a".into()
            })]
        );
    }
}
