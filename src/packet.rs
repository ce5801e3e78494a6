//! Payload and output packets: their type, where their bytes come from
//! (memory, a deterministic generator of any size, or a file next to the
//! scenario), and reading any byte range of them without holding the whole
//! packet in memory.

use bytes::{Bytes, BytesMut};
use serde_json::Value;
use std::path::PathBuf;

/// The packet's data type, as the API stores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Deserialize)]
pub enum PacketType {
    #[serde(rename = "application/json")]
    Json,
    #[serde(rename = "application/super+json")]
    SuperJson,
    #[serde(rename = "text/plain")]
    Text,
}

impl PacketType {
    /// The `Content-Type` it is served with.
    pub fn content_type(self) -> &'static str {
        match self {
            PacketType::Json => "application/json",
            PacketType::SuperJson => "application/super+json",
            PacketType::Text => "text/plain",
        }
    }

    /// The file extension of its object key.
    pub fn extension(self) -> &'static str {
        match self {
            PacketType::Json | PacketType::SuperJson => "json",
            PacketType::Text => "txt",
        }
    }
}

/// Whether a packet is offloaded behind a presigned URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Offload {
    /// Offloaded at or above the threshold (512 KiB unless configured).
    #[default]
    Auto,
    Always,
    Never,
}

/// What the presigned URL of an offloaded packet does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum UrlBehaviour {
    /// Serves the packet until it expires, 300 s after it was signed.
    #[default]
    Valid,
    /// Signed already expired: 403 AccessDenied.
    Expired,
    /// The object is missing: 404 NoSuchKey.
    NotFound,
    /// A complete response with only the first half of the packet.
    Truncated,
}

/// Where a packet's bytes come from.
#[derive(Debug, Clone, PartialEq)]
pub enum Content {
    /// Held in memory.
    Bytes(Bytes),
    /// Generated on demand, deterministically, of exactly this size.
    Generated(Generated),
    /// A file next to the scenario file (checked at load).
    File { path: PathBuf, size: u64 },
}

/// A packet.
#[derive(Debug, Clone, PartialEq)]
pub struct Packet {
    pub kind: PacketType,
    pub content: Content,
    pub offload: Offload,
    pub url: UrlBehaviour,
}

impl Packet {
    /// A JSON packet of a value.
    pub fn json(value: &Value) -> Packet {
        Packet {
            kind: PacketType::Json,
            content: Content::Bytes(Bytes::from(value.to_string())),
            offload: Offload::Auto,
            url: UrlBehaviour::Valid,
        }
    }

    /// Its size in bytes.
    pub fn size(&self) -> u64 {
        match &self.content {
            Content::Bytes(b) => b.len() as u64,
            Content::Generated(g) => g.size,
            Content::File { size, .. } => *size,
        }
    }

    /// True when the API sends a presigned URL instead of the packet.
    pub fn offloaded(&self, threshold: u64) -> bool {
        match self.offload {
            Offload::Always => true,
            Offload::Never => false,
            Offload::Auto => self.size() >= threshold,
        }
    }

    /// All the bytes (for inline packets, which are small; read at start-up).
    pub fn read_all(&self) -> std::io::Result<Bytes> {
        match &self.content {
            Content::Bytes(b) => Ok(b.clone()),
            Content::Generated(g) => Ok(g.range(0, g.size)),
            Content::File { path, .. } => std::fs::read(path).map(Bytes::from),
        }
    }

    /// The value the API shows inline, as the server's `parsePacketAsJson`
    /// does: JSON parsed, SuperJSON flattened to its `json` part, text as a
    /// string. Empty data is no value.
    pub fn inline_value(&self) -> Result<Option<Value>, String> {
        let bytes = self.read_all().map_err(|e| format!("cannot read the packet: {e}"))?;
        if bytes.is_empty() {
            return Ok(None);
        }
        let parse = || serde_json::from_slice::<Value>(&bytes).map_err(|e| format!("the packet is not JSON: {e}"));
        Ok(Some(match self.kind {
            PacketType::Json => parse()?,
            PacketType::SuperJson => match parse()? {
                Value::Object(mut m) => m.remove("json").unwrap_or(Value::Null),
                _ => return Err("a super+json packet is an object with `json` (and `meta`)".into()),
            },
            PacketType::Text => Value::String(String::from_utf8_lossy(&bytes).into_owned()),
        }))
    }
}

/// A generated packet: valid JSON (or text) of exactly `size` bytes, made of
/// fixed-width records, so any range is computed without the rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generated {
    pub size: u64,
    pub kind: PacketType,
    header: Vec<u8>,
    footer_head: Vec<u8>,
    footer_tail: Vec<u8>,
    records: u64,
    pad: u64,
}

const RECORD_PREFIX: &[u8] = b"{\"i\":\"";
const RECORD_SUFFIX: &[u8] = b"\",\"text\":\"Lorem ipsum dolor sit amet, consectetur adipiscing elit.\"}";
const TEXT_PREFIX: &[u8] = b"line ";
const TEXT_SUFFIX: &[u8] = b" lorem ipsum dolor sit amet, consectetur adipiscing elit\n";
const DIGITS: usize = 10;

impl Generated {
    /// The smallest size a generated packet of `kind` can have.
    pub fn min_size(kind: PacketType, created_at: &str) -> u64 {
        let g = Generated::layout(kind, created_at, 0);
        (g.header.len() + g.footer_head.len() + g.footer_tail.len()) as u64
    }

    fn layout(kind: PacketType, created_at: &str, size: u64) -> Generated {
        let (header, footer_head, footer_tail): (&[u8], Vec<u8>, Vec<u8>) = match kind {
            PacketType::Json => (b"{\"generated\":true,\"items\":[", b"],\"pad\":\"".to_vec(), b"\"}".to_vec()),
            PacketType::SuperJson => {
                (b"", b"],\"pad\":\"".to_vec(), b"\"},\"meta\":{\"values\":{\"createdAt\":[\"Date\"]}}}".to_vec())
            }
            PacketType::Text => (b"", Vec::new(), Vec::new()),
        };
        let header = match kind {
            PacketType::SuperJson => format!("{{\"json\":{{\"createdAt\":\"{created_at}\",\"items\":[").into_bytes(),
            _ => header.to_vec(),
        };
        Generated { size, kind, header, footer_head, footer_tail, records: 0, pad: 0 }
    }

    /// A packet of exactly `size` bytes; `None` below [`Generated::min_size`].
    pub fn new(kind: PacketType, size: u64, created_at: &str) -> Option<Generated> {
        let mut g = Generated::layout(kind, created_at, size);
        let fixed = (g.header.len() + g.footer_head.len() + g.footer_tail.len()) as u64;
        let room = size.checked_sub(fixed)?;
        let width = g.record_width();
        // Records are separated by commas in JSON; text lines carry their newline.
        let stride = if kind == PacketType::Text { width } else { width + 1 };
        g.records = if kind == PacketType::Text { room / stride } else { (room + 1) / stride };
        let used = if g.records == 0 {
            0
        } else if kind == PacketType::Text {
            g.records * width
        } else {
            g.records * stride - 1
        };
        g.pad = room - used;
        Some(g)
    }

    fn record_width(&self) -> u64 {
        match self.kind {
            PacketType::Text => (TEXT_PREFIX.len() + DIGITS + TEXT_SUFFIX.len()) as u64,
            _ => (RECORD_PREFIX.len() + DIGITS + RECORD_SUFFIX.len()) as u64,
        }
    }

    /// Appends record `i` (with its separator) to `out`.
    fn record(&self, i: u64, out: &mut impl Extend<u8>) {
        let (prefix, suffix) = match self.kind {
            PacketType::Text => (TEXT_PREFIX, TEXT_SUFFIX),
            _ => (RECORD_PREFIX, RECORD_SUFFIX),
        };
        let mut digits = [b'0'; DIGITS];
        let mut n = i % 10_000_000_000;
        for d in digits.iter_mut().rev() {
            *d = b'0' + (n % 10) as u8;
            n /= 10;
        }
        out.extend(prefix.iter().copied());
        out.extend(digits);
        out.extend(suffix.iter().copied());
        if self.kind != PacketType::Text && i + 1 < self.records {
            out.extend([b',']);
        }
    }

    /// Bytes `[start, end)` of the packet.
    pub fn range(&self, start: u64, end: u64) -> Bytes {
        let end = end.min(self.size);
        let mut out = BytesMut::with_capacity(end.saturating_sub(start) as usize);
        let mut pos = start;
        let header = self.header.len() as u64;
        let stride = if self.kind == PacketType::Text { self.record_width() } else { self.record_width() + 1 };
        let records_end = header
            + if self.records == 0 {
                0
            } else if self.kind == PacketType::Text {
                self.records * stride
            } else {
                self.records * stride - 1
            };
        let pad_start = records_end + self.footer_head.len() as u64;
        let tail_start = pad_start + self.pad;
        let mut scratch = Vec::with_capacity(stride as usize + 1);
        while pos < end {
            if pos < header {
                let to = end.min(header);
                out.extend_from_slice(&self.header[pos as usize..to as usize]);
                pos = to;
            } else if pos < records_end {
                let i = (pos - header) / stride;
                let at = (pos - header) % stride;
                let last_json = self.kind != PacketType::Text && i + 1 == self.records;
                let len = if last_json { stride - 1 } else { stride };
                if at == 0 && pos + len <= end {
                    // A whole record: written straight into the output.
                    let before = out.len();
                    self.record(i, &mut out);
                    pos += (out.len() - before) as u64;
                } else {
                    scratch.clear();
                    self.record(i, &mut scratch);
                    let take = (scratch.len() as u64 - at).min(end - pos);
                    out.extend_from_slice(&scratch[at as usize..(at + take) as usize]);
                    pos += take;
                }
            } else if pos < pad_start {
                let off = (pos - records_end) as usize;
                let to = end.min(pad_start);
                out.extend_from_slice(&self.footer_head[off..off + (to - pos) as usize]);
                pos = to;
            } else if pos < tail_start {
                let to = end.min(tail_start);
                let filler = if self.kind == PacketType::Text { b' ' } else { b'x' };
                out.resize(out.len() + (to - pos) as usize, filler);
                pos = to;
            } else {
                let off = (pos - tail_start) as usize;
                let to = end.min(self.size);
                out.extend_from_slice(&self.footer_tail[off..off + (to - pos) as usize]);
                pos = to;
            }
        }
        out.freeze()
    }
}

/// Parses a size such as `5MiB`, `512KiB`, `1GiB`, `1000` (bytes) or `2MB`.
pub fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().ok()?;
    let factor: u64 = match unit.trim() {
        "" | "B" => 1,
        "KB" => 1000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    const AT: &str = "2026-01-01T00:00:00.000Z";

    #[test]
    fn generated_packets_have_the_exact_size_and_parse() {
        for kind in [PacketType::Json, PacketType::SuperJson, PacketType::Text] {
            let min = Generated::min_size(kind, AT);
            for size in [min, min + 1, min + 40, min + 123, 4096, 65_537, 1 << 20] {
                let g = Generated::new(kind, size, AT).unwrap();
                let all = g.range(0, size);
                assert_eq!(all.len() as u64, size, "{kind:?} {size}");
                if kind != PacketType::Text {
                    let v: Value = serde_json::from_slice(&all).unwrap_or_else(|e| panic!("{kind:?} {size}: {e}"));
                    if kind == PacketType::SuperJson {
                        assert_eq!(v["json"]["createdAt"], AT);
                        assert_eq!(v["meta"]["values"]["createdAt"][0], "Date");
                    }
                } else {
                    assert!(std::str::from_utf8(&all).is_ok());
                }
            }
            assert!(Generated::new(kind, min.saturating_sub(1), AT).is_none() || min == 0);
        }
    }

    #[test]
    fn any_range_matches_the_whole() {
        for kind in [PacketType::Json, PacketType::SuperJson, PacketType::Text] {
            let g = Generated::new(kind, 10_000, AT).unwrap();
            let all: Vec<u8> = (0..10_000).flat_map(|i| g.range(i, i + 1).to_vec()).collect();
            assert_eq!(g.range(0, 10_000).as_ref(), all.as_slice(), "{kind:?} byte by byte");
            for (a, b) in [(0, 1), (5, 500), (27, 28), (9_990, 10_000), (1234, 5678), (0, 20_000), (9_000, 9_999)] {
                assert_eq!(g.range(a, b).as_ref(), &all[a as usize..(b.min(10_000)) as usize], "{kind:?} {a}..{b}");
            }
        }
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("5MiB"), Some(5 << 20));
        assert_eq!(parse_size("512KiB"), Some(512 << 10));
        assert_eq!(parse_size("1000"), Some(1000));
        assert_eq!(parse_size("2MB"), Some(2_000_000));
        assert_eq!(parse_size("3 GiB"), Some(3 << 30));
        assert_eq!(parse_size("lots"), None);
        assert_eq!(parse_size("5TiB"), None);
    }

    #[test]
    fn inline_values_follow_parse_packet_as_json() {
        let sj = Packet {
            kind: PacketType::SuperJson,
            content: Content::Bytes(Bytes::from_static(
                br#"{"json":{"when":"2025-01-01T00:00:00.000Z"},"meta":{"values":{"when":["Date"]}}}"#,
            )),
            offload: Offload::Auto,
            url: UrlBehaviour::Valid,
        };
        assert_eq!(sj.inline_value().unwrap(), Some(serde_json::json!({"when": "2025-01-01T00:00:00.000Z"})));
        let text = Packet { kind: PacketType::Text, content: Content::Bytes(Bytes::from_static(b"hi")), ..sj.clone() };
        assert_eq!(text.inline_value().unwrap(), Some(Value::String("hi".into())));
        let empty = Packet { content: Content::Bytes(Bytes::new()), ..text };
        assert_eq!(empty.inline_value().unwrap(), None);
    }
}
