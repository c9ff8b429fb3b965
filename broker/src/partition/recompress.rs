//! A leader's recompression of a produced batch, as Kafka's `LogValidator` does when the topic's
//! `compression.type` names a codec other than the batch's: the records section is decompressed, its record
//! framing checked while it streams, and written again with the topic's codec and level behind a copy of the
//! original header, of which only batchLength, the codec bits and the CRC change. Base offset handling,
//! producer id/epoch/base sequence, the transactional flag, the timestamp type, base/max timestamps and every
//! record byte (offset and timestamp deltas, keys, values, headers) stay as the producer sent them.
//!
//! Owns the codec streams: gzip, snappy with Kafka's (xerial) framing (raw snappy is read too, as librdkafka
//! sends it), LZ4 frames with independent 64 KiB blocks as Kafka's `Lz4BlockOutputStream` writes them, and zstd.
//! Must never run on a follower's appends (they store the leader's bytes), never touch a control batch or a
//! batch whose codec already matches, and never hold more than the rebuilt batch (at most
//! `max.message.bytes`) plus the codecs' own buffers in memory, whatever the compression ratio: decompressed
//! records stream straight into the compressor, and at most `max.decompressed.message.bytes` are read. (Raw
//! snappy has no streaming form: a block is decompressed whole, after checking it declares no more than
//! snappy can expand its bytes to, about 22 times.)

use std::{
    io::{self, BufRead, BufReader, BufWriter, Read, Write},
    ops::ControlFlow,
};

use crate::log::{
    finish_rebuilt_batch, BatchHeader, LogConfig, TopicCompression, CONTROL_BIT, HEADER_LEN,
};

/// Java's `SnappyOutputStream` block size.
const SNAPPY_BLOCK: usize = 32 * 1024;
/// The header xerial's `SnappyOutputStream` starts with: magic, version 1, minimum compatible version 1.
const XERIAL_HEADER: &[u8; 16] = b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01";
/// No snappy element expands by more than this (a 3-byte copy yields at most 64 bytes); a block that
/// declares more is corrupt, and refusing it up front keeps its output buffer small.
const SNAPPY_MAX_EXPANSION: usize = 22;
/// Buffer between the record walk (small reads and writes) and the codecs.
const STREAM_BUFFER: usize = 32 * 1024;

/// Why a batch could not be stored with the topic's codec. Produce answers INVALID_RECORD for the records'
/// faults (Kafka's `InvalidRecordException`; Kafka itself answers UNKNOWN_SERVER_ERROR when the codec
/// stream is broken) and MESSAGE_TOO_LARGE for the limits.
#[derive(Debug, thiserror::Error)]
pub enum RecompressError {
    #[error("the batch's compression codec id {id} is unknown")]
    UnknownCodec { id: u8 },
    #[error("decompressing the {codec} records")]
    Decompress {
        codec: &'static str,
        source: io::Error,
    },
    #[error("the records are malformed: {reason}")]
    Records { reason: &'static str },
    #[error("the records decompress to more than max.decompressed.message.bytes ({max})")]
    DecompressedTooLarge { max: u32 },
    #[error("the batch recompressed with {codec} is larger than max.message.bytes ({max})")]
    RebuiltTooLarge { codec: &'static str, max: u32 },
    #[error("compressing the records with {codec}")]
    Compress {
        codec: &'static str,
        source: io::Error,
    },
}

/// A codec as batch attribute bits 0-2 name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Codec {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl Codec {
    fn from_id(id: u8) -> Result<Codec, RecompressError> {
        Ok(match id {
            0 => Codec::None,
            1 => Codec::Gzip,
            2 => Codec::Snappy,
            3 => Codec::Lz4,
            4 => Codec::Zstd,
            id => return Err(RecompressError::UnknownCodec { id }),
        })
    }

    fn name(self) -> &'static str {
        match self {
            Codec::None => "uncompressed",
            Codec::Gzip => "gzip",
            Codec::Snappy => "snappy",
            Codec::Lz4 => "lz4",
            Codec::Zstd => "zstd",
        }
    }
}

/// The rebuild one produced batch needs under the topic's config at the time of the append.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Recompression {
    target: TopicCompression,
    target_id: u8,
    max_batch_bytes: u32,
    max_decompressed_bytes: u32,
}

impl Recompression {
    /// What a leader does with a batch of these `attributes` under `config`: `None` stores it as sent, as
    /// Kafka does for `producer`, for a batch already in the topic's codec, and for control batches.
    pub(crate) fn plan(config: &LogConfig, attributes: i16) -> Option<Recompression> {
        let target_id = config.compression.codec_id()?;
        if attributes & CONTROL_BIT != 0 || (attributes & 0x07) as u8 == target_id {
            return None;
        }
        Some(Recompression {
            target: config.compression,
            target_id,
            max_batch_bytes: config.max_message_bytes,
            max_decompressed_bytes: config.max_decompressed_bytes,
        })
    }

    /// `max.message.bytes` when the plan was made: the limit for the batch as sent and as rebuilt.
    pub(crate) fn max_batch_bytes(&self) -> u32 {
        self.max_batch_bytes
    }

    /// Rebuilds `batch`, whose `header` was validated (framing, CRC, size), with the target codec.
    pub(crate) fn rebuild(
        &self,
        batch: &[u8],
        header: &BatchHeader,
    ) -> Result<Vec<u8>, RecompressError> {
        let source = Codec::from_id(header.compression())?;
        let target = Codec::from_id(self.target_id)?;
        let mut out = Bounded {
            bytes: Vec::with_capacity(batch.len().min(self.max_batch_bytes as usize)),
            max: self.max_batch_bytes as usize,
        };
        out.bytes.extend_from_slice(&batch[..HEADER_LEN]);
        let compress = |source| RecompressError::Compress {
            codec: target.name(),
            source,
        };
        let too_large = RecompressError::RebuiltTooLarge {
            codec: target.name(),
            max: self.max_batch_bytes,
        };
        let encoder = Encoder::new(self.target, out).map_err(compress)?;
        let mut walk = RecordWalk::over(
            source,
            &batch[HEADER_LEN..],
            self.max_decompressed_bytes,
            BufWriter::with_capacity(STREAM_BUFFER, encoder),
        )?;
        let walked = walk.records(header.record_count);
        let RecordWalk {
            dst, write_error, ..
        } = walk;
        if let Some(e) = write_error {
            return Err(if is_full(&e) { too_large } else { compress(e) });
        }
        walked?;
        let finished = dst
            .into_inner()
            .map_err(io::IntoInnerError::into_error)
            .and_then(Encoder::finish);
        let mut rebuilt = match finished {
            Ok(out) => out.bytes,
            Err(e) if is_full(&e) => return Err(too_large),
            Err(e) => return Err(compress(e)),
        };
        finish_rebuilt_batch(&mut rebuilt, self.target_id);
        Ok(rebuilt)
    }
}

/// What a scan of a batch sees of one record: enough for the checks the broker makes of records, without
/// holding any record's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ScannedRecord {
    /// The record's position in the batch (its offset delta).
    pub index: i32,
    /// The batch's base offset plus the record's offset delta.
    pub offset: i64,
    /// The batch's base timestamp plus the record's timestamp delta: its own (CreateTime) stamp, which a
    /// reader of a LogAppendTime batch replaces with the batch's max timestamp.
    pub timestamp: i64,
    /// -1 for a null key.
    pub key_len: i32,
    /// -1 for a null value.
    pub value_len: i32,
}

/// Visits the records of the single `batch` (framed as `header` says) in order, decompressing them as a
/// stream with their framing checked as [`Recompression::rebuild`] checks it, until `visit` breaks or the
/// records end. Memory stays at the stream buffers whatever the compression ratio, which decoding the batch
/// whole (as a client library does) would not: a small compressed batch can expand to gigabytes. At most
/// `max_decompressed` bytes are read.
pub(crate) fn scan_records(
    batch: &[u8],
    header: &BatchHeader,
    max_decompressed: u32,
    mut visit: impl FnMut(&ScannedRecord) -> ControlFlow<()>,
) -> Result<(), RecompressError> {
    let end = usize::try_from(header.size)
        .unwrap_or(usize::MAX)
        .min(batch.len());
    let payload = batch.get(HEADER_LEN..end).unwrap_or_default();
    let codec = Codec::from_id(header.compression())?;
    let mut walk = RecordWalk::over(codec, payload, max_decompressed, io::sink())?;
    for expected_delta in 0..header.record_count {
        let fields = walk.record(expected_delta)?;
        let record = ScannedRecord {
            index: expected_delta,
            offset: header.base_offset.wrapping_add(i64::from(expected_delta)),
            timestamp: header.base_timestamp.wrapping_add(fields.timestamp_delta),
            key_len: fields.key_len,
            value_len: fields.value_len,
        };
        if visit(&record).is_break() {
            return Ok(());
        }
    }
    Ok(())
}

/// The rebuilt batch, refusing to grow past `max.message.bytes`.
struct Bounded {
    bytes: Vec<u8>,
    max: usize,
}

/// The error a full [`Bounded`] writes with, told apart from codec errors by its payload.
#[derive(Debug, thiserror::Error)]
#[error("the rebuilt batch is full")]
struct Full;

fn is_full(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<Full>())
}

impl Write for Bounded {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.bytes.len().saturating_add(buf.len()) > self.max {
            return Err(io::Error::other(Full));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The target codec's compressing writer.
enum Encoder<W: Write> {
    None(W),
    Gzip(flate2::write::GzEncoder<W>),
    Snappy(XerialWriter<W>),
    Lz4(lz4::Encoder<W>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
}

impl<W: Write> Encoder<W> {
    fn new(target: TopicCompression, out: W) -> io::Result<Encoder<W>> {
        Ok(match target {
            TopicCompression::Producer | TopicCompression::Uncompressed => Encoder::None(out),
            TopicCompression::Gzip { level } => {
                let level = u32::try_from(level)
                    .ok()
                    .filter(|l| (1..=9).contains(l))
                    .map_or_else(flate2::Compression::default, flate2::Compression::new);
                Encoder::Gzip(flate2::write::GzEncoder::new(out, level))
            }
            TopicCompression::Snappy => Encoder::Snappy(XerialWriter::new(out)?),
            TopicCompression::Lz4 { level } => {
                // Kafka compresses its default level 9 with lz4-java's fast compressor, any other with the
                // high-compression one; LZ4F's level 0 is its fast mode, 3 and up high compression (capped
                // at 12).
                let level = if level == 9 {
                    0
                } else {
                    u32::try_from(level).unwrap_or(0)
                };
                Encoder::Lz4(
                    lz4::EncoderBuilder::new()
                        .block_size(lz4::BlockSize::Max64KB)
                        .block_mode(lz4::BlockMode::Independent)
                        .checksum(lz4::ContentChecksum::NoChecksum)
                        .level(level)
                        .build(out)?,
                )
            }
            TopicCompression::Zstd { level } => {
                Encoder::Zstd(zstd::stream::write::Encoder::new(out, level)?)
            }
        })
    }

    fn finish(self) -> io::Result<W> {
        match self {
            Encoder::None(out) => Ok(out),
            Encoder::Gzip(e) => e.finish(),
            Encoder::Snappy(e) => e.finish(),
            Encoder::Lz4(e) => {
                let (out, result) = e.finish();
                result.map(|()| out)
            }
            Encoder::Zstd(e) => e.finish(),
        }
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::None(w) => w.write(buf),
            Encoder::Gzip(w) => w.write(buf),
            Encoder::Snappy(w) => w.write(buf),
            Encoder::Lz4(w) => w.write(buf),
            Encoder::Zstd(w) => w.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        // The codecs' own flush would end a block early; everything is written out by `finish`.
        Ok(())
    }
}

/// Snappy as Java's `SnappyOutputStream` writes it: [`XERIAL_HEADER`], then per 32 KiB of input a big-endian
/// length and one raw snappy block.
struct XerialWriter<W> {
    out: W,
    block: Vec<u8>,
    /// Boxed: it carries its hash table inline.
    encoder: Box<snap::raw::Encoder>,
    compressed: Vec<u8>,
}

impl<W: Write> XerialWriter<W> {
    fn new(mut out: W) -> io::Result<Self> {
        out.write_all(XERIAL_HEADER)?;
        Ok(Self {
            out,
            block: Vec::with_capacity(SNAPPY_BLOCK),
            encoder: Box::new(snap::raw::Encoder::new()),
            compressed: vec![0; snap::raw::max_compress_len(SNAPPY_BLOCK)],
        })
    }

    fn write_block(&mut self) -> io::Result<()> {
        if self.block.is_empty() {
            return Ok(());
        }
        let n = self
            .encoder
            .compress(&self.block, &mut self.compressed)
            .map_err(io::Error::other)?;
        let len = u32::try_from(n).map_err(io::Error::other)?;
        self.out.write_all(&len.to_be_bytes())?;
        self.out.write_all(&self.compressed[..n])?;
        self.block.clear();
        Ok(())
    }

    fn finish(mut self) -> io::Result<W> {
        self.write_block()?;
        Ok(self.out)
    }
}

impl<W: Write> Write for XerialWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len().min(SNAPPY_BLOCK - self.block.len());
        self.block.extend_from_slice(&buf[..n]);
        if self.block.len() == SNAPPY_BLOCK {
            self.write_block()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The source codec's decompressing reader over a records section.
fn decoder<'a>(
    codec: Codec,
    payload: &'a [u8],
    max_decompressed: u32,
) -> io::Result<Box<dyn Read + 'a>> {
    Ok(match codec {
        Codec::None => Box::new(payload),
        Codec::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(payload)),
        Codec::Snappy => Box::new(SnappyReader {
            rest: payload,
            framed: payload.starts_with(&XERIAL_HEADER[..8]),
            started: false,
            block: Vec::new(),
            pos: 0,
            max_block: max_decompressed as usize,
        }),
        Codec::Lz4 => Box::new(Lz4Reader(Some(lz4::Decoder::new(payload)?))),
        Codec::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(payload)?),
    })
}

/// Snappy in Kafka's xerial framing, or raw snappy when the payload does not start with its magic (as Java's
/// `SnappyInputStream` falls back to). Each block is decompressed whole, after checking that what it
/// declares is within what snappy can expand its bytes to and within `max_block`.
struct SnappyReader<'a> {
    rest: &'a [u8],
    framed: bool,
    started: bool,
    block: Vec<u8>,
    pos: usize,
    max_block: usize,
}

impl SnappyReader<'_> {
    /// Decompresses the next block; false at the end of the payload.
    fn next_block(&mut self) -> io::Result<bool> {
        let invalid = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_owned());
        let compressed = if !self.framed {
            if self.started {
                return Ok(false);
            }
            std::mem::take(&mut self.rest)
        } else {
            if !self.started {
                if self.rest.len() < XERIAL_HEADER.len() {
                    return Err(invalid("snappy stream header is truncated"));
                }
                self.rest = &self.rest[XERIAL_HEADER.len()..];
                self.started = true;
            }
            if self.rest.is_empty() {
                return Ok(false);
            }
            let Some((len, rest)) = self.rest.split_first_chunk::<4>() else {
                return Err(invalid("snappy block length is truncated"));
            };
            let len = u32::from_be_bytes(*len) as usize;
            if len > rest.len() {
                return Err(invalid("snappy block is truncated"));
            }
            let (block, rest) = rest.split_at(len);
            self.rest = rest;
            block
        };
        self.started = true;
        let declared = snap::raw::decompress_len(compressed).map_err(io::Error::other)?;
        if declared > compressed.len().saturating_mul(SNAPPY_MAX_EXPANSION) {
            return Err(invalid(
                "snappy block declares more than its bytes can expand to",
            ));
        }
        if declared > self.max_block {
            return Err(invalid(
                "snappy block declares more than max.decompressed.message.bytes",
            ));
        }
        self.block.resize(declared, 0);
        let n = snap::raw::Decoder::new()
            .decompress(compressed, &mut self.block)
            .map_err(io::Error::other)?;
        self.block.truncate(n);
        self.pos = 0;
        Ok(true)
    }
}

impl Read for SnappyReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.block.len() {
            if buf.is_empty() || !self.next_block()? {
                return Ok(0);
            }
        }
        let n = buf.len().min(self.block.len() - self.pos);
        buf[..n].copy_from_slice(&self.block[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// An LZ4 frame reader that reports a frame cut short as an error instead of a short stream.
struct Lz4Reader<'a>(Option<lz4::Decoder<&'a [u8]>>);

impl Read for Lz4Reader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(decoder) = self.0.as_mut() else {
            return Ok(0);
        };
        let n = decoder.read(buf)?;
        if n == 0 && !buf.is_empty() {
            if let Some(decoder) = self.0.take() {
                decoder.finish().1.map_err(|_| {
                    io::Error::new(io::ErrorKind::UnexpectedEof, "lz4 frame ends early")
                })?;
            }
        }
        Ok(n)
    }
}

/// Walks exactly `recordCount` v2 records through from the decompressed stream to the compressor, checking
/// their framing as Kafka's record reader does (lengths, field sizes, offset deltas 0, 1, 2, ... as the log
/// requires of uncompressed batches) and that nothing follows the last one. Counts the bytes read against
/// `max.decompressed.message.bytes`.
struct RecordWalk<R, W> {
    src: R,
    dst: W,
    codec: Codec,
    read: u64,
    max: u64,
    /// The first error writing to the compressor; the walk stops at it.
    write_error: Option<io::Error>,
}

type Walked<T> = Result<T, RecompressError>;

/// What the walk read of one record's fields, for [`scan_records`].
struct RecordFields {
    timestamp_delta: i64,
    key_len: i32,
    value_len: i32,
}

impl<'a, W: Write> RecordWalk<BufReader<Box<dyn Read + 'a>>, W> {
    /// A walk over the records section `payload` in `codec`, reading at most `max_decompressed` bytes of it
    /// and passing them to `dst`.
    fn over(codec: Codec, payload: &'a [u8], max_decompressed: u32, dst: W) -> Walked<Self> {
        let reader = decoder(codec, payload, max_decompressed).map_err(|source| {
            RecompressError::Decompress {
                codec: codec.name(),
                source,
            }
        })?;
        Ok(RecordWalk {
            src: BufReader::with_capacity(STREAM_BUFFER, reader),
            dst,
            codec,
            read: 0,
            max: u64::from(max_decompressed),
            write_error: None,
        })
    }
}

fn malformed<T>(reason: &'static str) -> Walked<T> {
    Err(RecompressError::Records { reason })
}

impl<R: BufRead, W: Write> RecordWalk<R, W> {
    fn records(&mut self, count: i32) -> Walked<()> {
        for expected_delta in 0..count {
            self.record(expected_delta)?;
        }
        if !self.fill()?.is_empty() {
            return malformed("bytes are left after the last record");
        }
        Ok(())
    }

    fn record(&mut self, expected_delta: i32) -> Walked<RecordFields> {
        let len = self.varint()?;
        let Ok(len) = u64::try_from(len) else {
            return malformed("a record has a negative length");
        };
        let end = self.read + len;
        if end > self.max {
            return Err(self.too_large());
        }
        self.copy(1, end)?; // attributes
        let timestamp_delta = self.varlong()?;
        if self.varint()? != expected_delta {
            return malformed("offset deltas are not 0, 1, 2, ...");
        }
        self.within(end)?;
        let key_len = self.bytes_field(end, "a record key has a negative length")?;
        let value_len = self.bytes_field(end, "a record value has a negative length")?;
        let headers = self.varint()?;
        if headers < 0 {
            return malformed("a record has a negative header count");
        }
        for _ in 0..headers {
            let key = self.varint()?;
            let Ok(key) = u64::try_from(key) else {
                return malformed("a record header key has a negative length");
            };
            self.copy(key, end)?;
            self.bytes_field(end, "a record header value has a negative length")?;
        }
        if self.read != end {
            return malformed("a record's length does not match its fields");
        }
        Ok(RecordFields {
            timestamp_delta,
            key_len,
            value_len,
        })
    }

    /// A varint length (-1 for null) and that many bytes; the length.
    fn bytes_field(&mut self, end: u64, negative: &'static str) -> Walked<i32> {
        match self.varint()? {
            -1 => self.within(end).map(|()| -1),
            n if n < -1 => malformed(negative),
            n => self.copy(n as u64, end).map(|()| n),
        }
    }

    fn within(&self, end: u64) -> Walked<()> {
        if self.read > end {
            return malformed("a record's fields run past its length");
        }
        Ok(())
    }

    fn too_large(&self) -> RecompressError {
        RecompressError::DecompressedTooLarge {
            max: u32::try_from(self.max).unwrap_or(u32::MAX),
        }
    }

    /// The decompressed bytes available next; empty at the end of the stream.
    fn fill(&mut self) -> Walked<&[u8]> {
        let codec = self.codec.name();
        self.src
            .fill_buf()
            .map_err(|source| RecompressError::Decompress { codec, source })
    }

    /// Passes `n` bytes through, all within the record ending at `end`.
    fn copy(&mut self, mut n: u64, end: u64) -> Walked<()> {
        if self.read + n > end {
            return malformed("a record's fields run past its length");
        }
        let codec = self.codec.name();
        while n > 0 {
            // The fields are borrowed apart: the chunk is read from `src` while it is written to `dst`.
            let chunk = self
                .src
                .fill_buf()
                .map_err(|source| RecompressError::Decompress { codec, source })?;
            if chunk.is_empty() {
                return malformed("the records end before the batch's record count");
            }
            let k = chunk.len().min(usize::try_from(n).unwrap_or(usize::MAX));
            if let Err(e) = self.dst.write_all(&chunk[..k]) {
                self.write_error = Some(e);
                return malformed("the rebuilt batch could not be written");
            }
            self.src.consume(k);
            self.read += k as u64;
            n -= k as u64;
        }
        Ok(())
    }

    fn byte(&mut self) -> Walked<u8> {
        let chunk = self.fill()?;
        let Some(&b) = chunk.first() else {
            return malformed("the records end before the batch's record count");
        };
        if self.read >= self.max {
            return Err(self.too_large());
        }
        if let Err(e) = self.dst.write_all(&[b]) {
            self.write_error = Some(e);
            return malformed("the rebuilt batch could not be written");
        }
        self.src.consume(1);
        self.read += 1;
        Ok(b)
    }

    /// A zigzag varint of at most `max_bytes` bytes.
    fn zigzag(&mut self, max_bytes: u32) -> Walked<i64> {
        let mut raw = 0u64;
        for i in 0..max_bytes {
            let b = self.byte()?;
            raw |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok((raw >> 1) as i64 ^ -((raw & 1) as i64));
            }
        }
        malformed("a varint is longer than its type")
    }

    fn varint(&mut self) -> Walked<i32> {
        match i32::try_from(self.zigzag(5)?) {
            Ok(v) => Ok(v),
            Err(_) => malformed("a varint is out of the 32-bit range"),
        }
    }

    fn varlong(&mut self) -> Walked<i64> {
        self.zigzag(10)
    }
}
