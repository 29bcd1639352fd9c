//! Borrowed reads of the protobuf wire format, built on prost's encoding primitives.
//!
//! [`Reader`] walks a message's fields without allocating: strings and bytes come back as
//! slices of the input. [`super::validate`] uses it to check whole export requests.

use prost::encoding::{decode_varint, WireType};

pub use super::MAX_DEPTH;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("truncated {0}")]
    Truncated(&'static str),
    #[error("invalid varint in {0}")]
    Varint(&'static str),
    #[error("invalid field key in {0}")]
    Key(&'static str),
    #[error("field {field} of {message} has wire type {found:?}, expected {expected:?}")]
    WireType {
        message: &'static str,
        field: u32,
        found: WireType,
        expected: WireType,
    },
    #[error("field {field} of {message} is not valid UTF-8")]
    Utf8 { message: &'static str, field: u32 },
    #[error("values nested deeper than {MAX_DEPTH} levels")]
    TooDeep,
}

/// One field's value, borrowed from the input.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    Varint(u64),
    Fixed64(u64),
    Fixed32(u32),
    Bytes(&'a [u8]),
    /// A skipped group; only its field number is kept.
    Group,
}

impl Value<'_> {
    pub fn wire_type(&self) -> WireType {
        match self {
            Value::Varint(_) => WireType::Varint,
            Value::Fixed64(_) => WireType::SixtyFourBit,
            Value::Fixed32(_) => WireType::ThirtyTwoBit,
            Value::Bytes(_) => WireType::LengthDelimited,
            Value::Group => WireType::StartGroup,
        }
    }
}

enum Raw<'a> {
    Value(Value<'a>),
    StartGroup,
    EndGroup,
}

/// Iterates over the fields of one message.
pub struct Reader<'a> {
    buf: &'a [u8],
    message: &'static str,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8], message: &'static str) -> Reader<'a> {
        Reader { buf, message }
    }

    /// The next `(field number, value)`, or `None` at the end of the message. Groups (a
    /// proto2 relic OTLP never uses) are skipped whole and reported as [`Value::Group`].
    ///
    /// Inlined, with `next_raw`, into every walker: the caller's `match` then reads the field in
    /// place instead of through a returned three-level enum (a quarter of the borrowed decode's
    /// instructions, and 30% of the edge's check; BENCHMARKS.md, issue 13's second pass).
    #[inline(always)]
    pub fn next_field(&mut self) -> Result<Option<(u32, Value<'a>)>, WireError> {
        match self.next_raw()? {
            None => Ok(None),
            Some((field, Raw::Value(v))) => Ok(Some((field, v))),
            Some((field, Raw::StartGroup)) => {
                self.skip_group(field, 0)?;
                Ok(Some((field, Value::Group)))
            }
            Some((_, Raw::EndGroup)) => Err(WireError::Key(self.message)),
        }
    }

    fn skip_group(&mut self, field: u32, depth: u32) -> Result<(), WireError> {
        if depth > MAX_DEPTH {
            return Err(WireError::TooDeep);
        }
        loop {
            match self.next_raw()? {
                None => return Err(WireError::Truncated(self.message)),
                Some((f, Raw::EndGroup)) if f == field => return Ok(()),
                Some((_, Raw::EndGroup)) => return Err(WireError::Key(self.message)),
                Some((f, Raw::StartGroup)) => self.skip_group(f, depth + 1)?,
                Some((_, Raw::Value(_))) => {}
            }
        }
    }

    /// One varint. Keys and lengths below 128 (nearly all of them in OTLP) take one byte and no
    /// call; longer ones go through prost's decoder, so both accept exactly the same input.
    #[inline(always)]
    fn varint(&mut self) -> Result<u64, WireError> {
        if let Some((&first, rest)) = self.buf.split_first() {
            if first < 0x80 {
                self.buf = rest;
                return Ok(u64::from(first));
            }
        }
        decode_varint(&mut self.buf).map_err(|_| WireError::Varint(self.message))
    }

    #[inline(always)]
    fn next_raw(&mut self) -> Result<Option<(u32, Raw<'a>)>, WireError> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        let key = self.varint()?;
        if key > u64::from(u32::MAX) {
            return Err(WireError::Key(self.message));
        }
        let field = (key >> 3) as u32;
        if field == 0 {
            return Err(WireError::Key(self.message));
        }
        let raw = match key & 7 {
            0 => Raw::Value(Value::Varint(self.varint()?)),
            1 => Raw::Value(Value::Fixed64(u64::from_le_bytes(
                self.take(8)?.try_into().expect("8 bytes"),
            ))),
            2 => {
                let len = self.varint()?;
                let len = usize::try_from(len).map_err(|_| WireError::Truncated(self.message))?;
                Raw::Value(Value::Bytes(self.take(len)?))
            }
            3 => Raw::StartGroup,
            4 => Raw::EndGroup,
            5 => Raw::Value(Value::Fixed32(u32::from_le_bytes(
                self.take(4)?.try_into().expect("4 bytes"),
            ))),
            _ => return Err(WireError::Key(self.message)),
        };
        Ok(Some((field, raw)))
    }

    #[inline(always)]
    fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if self.buf.len() < n {
            return Err(WireError::Truncated(self.message));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }
}
