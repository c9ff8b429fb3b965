//! Zero-copy fetch responses: the response is encoded by the `kafka-protocol` codec as usual, but each
//! partition's record bytes are left in the segment file and sent with `sendfile(2)` between the encoded pieces.
//!
//! How: a fetch handler puts a *placeholder* `Bytes` of the right length in each `records` field (a slice of
//! one large zeroed allocation whose pages are never touched) and passes the matching [`SendfileSlice`]s in
//! the same order. The codec writes a field's length prefix and then calls `put_slice` with the placeholder;
//! [`SpliceBuf`] recognises the placeholder by address, closes the current inline chunk and records the file
//! slice instead of copying. Owns the only `unsafe` in the crate: `BufMut` is an unsafe trait, and the impl
//! only forwards to `BytesMut`.

use std::{
    collections::VecDeque,
    fs::File,
    ops::Range,
    sync::{Arc, OnceLock},
};

use bytes::{buf::UninitSlice, BufMut, Bytes, BytesMut};
use kafka_protocol::protocol::buf::ByteBufMut;
use tokio::{
    io::AsyncWriteExt,
    net::{tcp::OwnedWriteHalf, TcpStream},
};

/// Larger than any fetch response the broker builds (`fetch.max.bytes` is clamped below it).
pub const MAX_PLACEHOLDER_BYTES: usize = 256 << 20;

fn placeholder_region() -> &'static Bytes {
    static REGION: OnceLock<Bytes> = OnceLock::new();
    // calloc-backed: the kernel maps zero pages lazily and nothing ever reads or writes this memory, so it
    // costs address space only.
    REGION.get_or_init(|| Bytes::from(vec![0u8; MAX_PLACEHOLDER_BYTES]))
}

/// A placeholder of `len` bytes for a `records` field whose bytes will be sent from a file.
pub fn placeholder(len: usize) -> Bytes {
    placeholder_region().slice(0..len.min(MAX_PLACEHOLDER_BYTES))
}

/// Bytes of a segment file to send as part of a response. Holding the `Arc<File>` keeps the data readable
/// even if retention deletes the segment before the response is written.
#[derive(Debug, Clone)]
pub struct SendfileSlice {
    pub file: Arc<File>,
    pub position: u64,
    pub len: usize,
}

#[derive(Debug)]
enum Chunk {
    Inline(Bytes),
    File(SendfileSlice),
}

/// An encoded response ready to be written: its size prefix is included.
#[derive(Debug)]
pub struct ResponseFrame {
    chunks: Vec<Chunk>,
}

impl ResponseFrame {
    /// Writes the frame; inline chunks with `write_all`, file chunks with `sendfile`.
    pub async fn write_to(&self, stream: &mut OwnedWriteHalf) -> std::io::Result<()> {
        for chunk in &self.chunks {
            match chunk {
                Chunk::Inline(bytes) => stream.write_all(bytes).await?,
                Chunk::File(slice) => sendfile_all(stream.as_ref(), slice).await?,
            }
        }
        Ok(())
    }

    /// Bytes on the wire, size prefix included.
    pub fn len(&self) -> usize {
        self.chunks
            .iter()
            .map(|chunk| match chunk {
                Chunk::Inline(bytes) => bytes.len(),
                Chunk::File(slice) => slice.len,
            })
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The whole frame as one buffer (reads file slices). For tests and for transports without sendfile.
    pub fn to_vec(&self) -> std::io::Result<Vec<u8>> {
        use std::os::unix::fs::FileExt;
        let mut out = Vec::new();
        for chunk in &self.chunks {
            match chunk {
                Chunk::Inline(bytes) => out.extend_from_slice(bytes),
                Chunk::File(slice) => {
                    let start = out.len();
                    out.resize(start + slice.len, 0);
                    slice
                        .file
                        .read_exact_at(&mut out[start..], slice.position)?;
                }
            }
        }
        Ok(out)
    }
}

async fn sendfile_all(stream: &TcpStream, slice: &SendfileSlice) -> std::io::Result<()> {
    let mut offset = slice.position as i64;
    let end = offset + slice.len as i64;
    while offset < end {
        stream.writable().await?;
        let remaining = (end - offset) as usize;
        let result = stream.try_io(tokio::io::Interest::WRITABLE, || {
            nix::sys::sendfile::sendfile(
                stream_fd(stream),
                slice.file.as_ref(),
                Some(&mut offset),
                remaining,
            )
            .map_err(std::io::Error::from)
        });
        match result {
            Ok(0) => {
                // The file is shorter than the index said: the segment was truncated under us. Failing the
                // connection is the only safe choice; the client refetches.
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "segment file ended early",
                ));
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn stream_fd(stream: &TcpStream) -> std::os::fd::BorrowedFd<'_> {
    use std::os::fd::AsFd;
    stream.as_fd()
}

/// The encoder's output buffer; see the module docs.
#[derive(Debug)]
pub struct SpliceBuf {
    chunks: Vec<Chunk>,
    current: BytesMut,
    /// Bytes in `chunks` (inline and file), i.e. the logical offset where `current` starts.
    flushed_len: usize,
    pending: VecDeque<SendfileSlice>,
    mismatch: Option<String>,
}

impl SpliceBuf {
    /// A buffer for a response of `body_size` bytes; the 4-byte size prefix is written first.
    pub fn new(body_size: usize, slices: Vec<SendfileSlice>) -> Self {
        let inline_guess = body_size.saturating_sub(slices.iter().map(|s| s.len).sum()) + 4;
        let mut current = BytesMut::with_capacity(inline_guess.min(1 << 20));
        current.put_i32(body_size as i32);
        Self {
            chunks: Vec::new(),
            current,
            flushed_len: 0,
            pending: slices.into(),
            mismatch: None,
        }
    }

    pub fn finish(mut self, body_size: usize) -> anyhow::Result<ResponseFrame> {
        if let Some(problem) = self.mismatch {
            anyhow::bail!("zero-copy splice mismatch: {problem}");
        }
        if !self.pending.is_empty() {
            anyhow::bail!(
                "{} log slices were never placed in the response",
                self.pending.len()
            );
        }
        self.close_inline();
        if self.flushed_len != body_size + 4 {
            anyhow::bail!(
                "encoded {} bytes but computed a size of {}",
                self.flushed_len,
                body_size + 4
            );
        }
        Ok(ResponseFrame {
            chunks: self.chunks,
        })
    }

    fn close_inline(&mut self) {
        if !self.current.is_empty() {
            let inline = self.current.split().freeze();
            self.flushed_len += inline.len();
            self.chunks.push(Chunk::Inline(inline));
        }
    }

    fn is_placeholder(src: &[u8]) -> bool {
        let region = placeholder_region();
        !src.is_empty() && src.as_ptr() == region.as_ptr()
    }
}

#[allow(unsafe_code)]
// SAFETY: every method forwards to the inner `BytesMut`, which upholds `BufMut`'s contract; `put_slice` only
// adds bookkeeping around the forwarded call.
unsafe impl BufMut for SpliceBuf {
    fn remaining_mut(&self) -> usize {
        self.current.remaining_mut()
    }

    unsafe fn advance_mut(&mut self, cnt: usize) {
        // SAFETY: the caller guarantees `cnt` bytes of `chunk_mut()` (the inner buffer's) were initialised.
        unsafe { self.current.advance_mut(cnt) }
    }

    fn chunk_mut(&mut self) -> &mut UninitSlice {
        self.current.chunk_mut()
    }

    fn put_slice(&mut self, src: &[u8]) {
        if !Self::is_placeholder(src) {
            self.current.put_slice(src);
            return;
        }
        match self.pending.pop_front() {
            Some(slice) if slice.len == src.len() => {
                self.close_inline();
                self.flushed_len += slice.len;
                self.chunks.push(Chunk::File(slice));
            }
            other => {
                self.mismatch = Some(format!(
                    "placeholder of {} bytes met log slice {:?}",
                    src.len(),
                    other.map(|s| s.len)
                ));
                self.current.put_slice(src);
            }
        }
    }
}

impl ByteBufMut for SpliceBuf {
    fn offset(&self) -> usize {
        self.flushed_len + self.current.len()
    }

    /// Only within the inline chunk being written; message encoding never seeks (it computes sizes first).
    fn seek(&mut self, offset: usize) {
        self.current
            .resize(offset.saturating_sub(self.flushed_len), 0);
    }

    fn range(&mut self, r: Range<usize>) -> &mut [u8] {
        let start = r.start.saturating_sub(self.flushed_len);
        let end = r.end.saturating_sub(self.flushed_len);
        &mut self.current[start..end]
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::io::Write;

    use kafka_protocol::{messages::fetch_response::*, protocol::Encodable};

    use super::*;

    fn file_with(bytes: &[u8]) -> Arc<File> {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(bytes).unwrap();
        Arc::new(f)
    }

    #[test]
    fn spliced_response_equals_a_normally_encoded_one() {
        let log_bytes = b"0123456789abcdefghij".to_vec();
        let file = file_with(&log_bytes);
        for version in [4i16, 11, 12, 16] {
            let build = |records_a: Bytes, records_b: Bytes| {
                FetchResponse::default().with_responses(vec![FetchableTopicResponse::default()
                    .with_topic(kafka_protocol::messages::TopicName("t".into()))
                    .with_partitions(vec![
                        PartitionData::default()
                            .with_partition_index(0)
                            .with_records(Some(records_a)),
                        PartitionData::default()
                            .with_partition_index(1)
                            .with_records(Some(Bytes::new())),
                        PartitionData::default()
                            .with_partition_index(2)
                            .with_records(Some(records_b)),
                    ])])
            };
            let expected = build(
                Bytes::copy_from_slice(&log_bytes[2..7]),
                Bytes::copy_from_slice(&log_bytes[10..20]),
            );
            let mut plain = BytesMut::new();
            plain.put_i32(expected.compute_size(version).unwrap() as i32);
            expected.encode(&mut plain, version).unwrap();

            let spliced = build(placeholder(5), placeholder(10));
            let size = spliced.compute_size(version).unwrap();
            let slices = vec![
                SendfileSlice {
                    file: Arc::clone(&file),
                    position: 2,
                    len: 5,
                },
                SendfileSlice {
                    file: Arc::clone(&file),
                    position: 10,
                    len: 10,
                },
            ];
            let mut buf = SpliceBuf::new(size, slices);
            spliced.encode(&mut buf, version).unwrap();
            let frame = buf.finish(size).unwrap();
            assert_eq!(
                frame
                    .chunks
                    .iter()
                    .filter(|c| matches!(c, Chunk::File(_)))
                    .count(),
                2
            );
            assert_eq!(frame.to_vec().unwrap(), plain.to_vec(), "version {version}");
        }
    }

    #[test]
    fn a_slice_that_does_not_match_its_placeholder_is_an_error() {
        let file = file_with(b"abc");
        let response =
            FetchResponse::default()
                .with_responses(vec![FetchableTopicResponse::default().with_partitions(
                    vec![PartitionData::default().with_records(Some(placeholder(3)))],
                )]);
        let size = response.compute_size(12).unwrap();
        let mut buf = SpliceBuf::new(
            size,
            vec![SendfileSlice {
                file,
                position: 0,
                len: 2,
            }],
        );
        response.encode(&mut buf, 12).unwrap();
        assert!(buf.finish(size).is_err());
    }
}
