//! A protobuf wire-format decoder: just enough to walk an ONNX model.
//!
//! A message is a sequence of fields, each a varint key `(number << 3) | wire_type`
//! followed by a varint (type 0), 8 bytes (type 1), a varint length and that
//! many bytes (type 2: strings, sub-messages, packed repeated numbers) or 4
//! bytes (type 5). Groups (types 3 and 4) are long deprecated and ONNX never
//! uses them; they are refused. Every length is checked against the bytes
//! left, so a corrupt file gets an error naming the byte offset, never a panic
//! or an allocation sized by the file.

use std::fmt;

/// What is wrong with the bytes, and where (offset from the start of the file).
#[derive(Debug, Clone, PartialEq)]
pub struct DecodeError {
    pub offset: usize,
    pub message: String,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "protobuf byte {}: {}", self.offset, self.message)
    }
}

impl std::error::Error for DecodeError {}

/// The payload of one field.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    Varint(u64),
    Fixed64(u64),
    Bytes(&'a [u8]),
    Fixed32(u32),
}

/// One field of a message.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Field<'a> {
    pub number: u32,
    pub value: Value<'a>,
    /// Offset of the field's key in the whole file, for errors.
    pub offset: usize,
}

impl<'a> Field<'a> {
    fn wrong(&self, expected: &str) -> DecodeError {
        DecodeError { offset: self.offset, message: format!("field {} is not {expected}", self.number) }
    }

    /// A varint field as an integer (`int32`, `int64`, `uint64`, `bool`, `enum`).
    pub fn varint(&self) -> Result<u64, DecodeError> {
        match self.value {
            Value::Varint(v) => Ok(v),
            _ => Err(self.wrong("a varint")),
        }
    }

    /// A varint field as a signed 64-bit integer (two's complement, as `int64` is encoded).
    pub fn int64(&self) -> Result<i64, DecodeError> {
        self.varint().map(|v| v as i64)
    }

    /// A length-delimited field (bytes, string or sub-message).
    pub fn bytes(&self) -> Result<&'a [u8], DecodeError> {
        match self.value {
            Value::Bytes(b) => Ok(b),
            _ => Err(self.wrong("length-delimited")),
        }
    }

    /// A sub-message, to be read with its own [`Reader`].
    pub fn message(&self) -> Result<Reader<'a>, DecodeError> {
        Ok(Reader { data: self.bytes()?, pos: 0, base: self.payload_offset() })
    }

    /// A string field (UTF-8).
    pub fn string(&self) -> Result<String, DecodeError> {
        let b = self.bytes()?;
        std::str::from_utf8(b).map(str::to_owned).map_err(|_| self.wrong("a UTF-8 string"))
    }

    /// A `float` field.
    pub fn float(&self) -> Result<f32, DecodeError> {
        match self.value {
            Value::Fixed32(v) => Ok(f32::from_bits(v)),
            _ => Err(self.wrong("a 32-bit float")),
        }
    }

    /// Offset of the payload of a length-delimited field (its key and length
    /// come before it); for other fields, of the key.
    fn payload_offset(&self) -> usize {
        match self.value {
            Value::Bytes(b) => self.offset + key_and_length_size(self.number, b.len()),
            _ => self.offset,
        }
    }

    /// Appends the values of a repeated `float` field, packed or not.
    pub fn push_floats(&self, out: &mut Vec<f32>) -> Result<(), DecodeError> {
        match self.value {
            Value::Fixed32(v) => out.push(f32::from_bits(v)),
            Value::Bytes(b) if b.len() % 4 == 0 => {
                out.extend(b.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes"))))
            }
            _ => return Err(self.wrong("packed floats")),
        }
        Ok(())
    }

    /// Appends the values of a repeated `double` field, packed or not.
    pub fn push_doubles(&self, out: &mut Vec<f64>) -> Result<(), DecodeError> {
        match self.value {
            Value::Fixed64(v) => out.push(f64::from_bits(v)),
            Value::Bytes(b) if b.len() % 8 == 0 => {
                out.extend(b.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes"))))
            }
            _ => return Err(self.wrong("packed doubles")),
        }
        Ok(())
    }

    /// Appends the values of a repeated varint field (`int32`, `int64`), packed or not.
    pub fn push_varints(&self, out: &mut Vec<i64>) -> Result<(), DecodeError> {
        match self.value {
            Value::Varint(v) => out.push(v as i64),
            Value::Bytes(b) => {
                let mut r = Reader { data: b, pos: 0, base: self.payload_offset() };
                while r.pos < b.len() {
                    out.push(r.varint()? as i64);
                }
            }
            _ => return Err(self.wrong("varints")),
        }
        Ok(())
    }
}

/// Bytes taken by the key and length prefix of a length-delimited field.
fn key_and_length_size(number: u32, len: usize) -> usize {
    varint_size(((number as u64) << 3) | 2) + varint_size(len as u64)
}

fn varint_size(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

/// Iterates over the fields of one message.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    /// Offset of `data` in the whole file.
    base: usize,
}

impl<'a> Reader<'a> {
    /// A reader over a whole top-level message.
    pub fn new(data: &'a [u8]) -> Self {
        Reader { data, pos: 0, base: 0 }
    }

    fn fail<T>(&self, message: impl Into<String>) -> Result<T, DecodeError> {
        Err(DecodeError { offset: self.base + self.pos, message: message.into() })
    }

    fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut v = 0u64;
        for i in 0..10 {
            let Some(&b) = self.data.get(self.pos) else { return self.fail("truncated varint") };
            self.pos += 1;
            if i == 9 && b > 1 {
                return self.fail("varint longer than 64 bits");
            }
            v |= ((b & 0x7f) as u64) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        self.fail("varint longer than 10 bytes")
    }

    fn fixed<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        match self.data.get(self.pos..self.pos + N) {
            Some(b) => {
                self.pos += N;
                Ok(b.try_into().expect("N bytes"))
            }
            None => self.fail(format!("truncated {N}-byte field")),
        }
    }

    /// The next field, `None` at the end of the message.
    pub fn next_field(&mut self) -> Result<Option<Field<'a>>, DecodeError> {
        if self.pos >= self.data.len() {
            return Ok(None);
        }
        let offset = self.base + self.pos;
        let key = self.varint()?;
        let number = key >> 3;
        if number == 0 || number > (1 << 29) - 1 {
            return Err(DecodeError { offset, message: format!("invalid field number {number}") });
        }
        let value = match key & 7 {
            0 => Value::Varint(self.varint()?),
            1 => Value::Fixed64(u64::from_le_bytes(self.fixed::<8>()?)),
            2 => {
                let len = self.varint()?;
                let left = (self.data.len() - self.pos) as u64;
                if len > left {
                    return self.fail(format!("field {number} has length {len}, only {left} bytes left"));
                }
                let b = &self.data[self.pos..self.pos + len as usize];
                self.pos += len as usize;
                Value::Bytes(b)
            }
            5 => Value::Fixed32(u32::from_le_bytes(self.fixed::<4>()?)),
            t => {
                return Err(DecodeError { offset, message: format!("field {number} has unsupported wire type {t}") });
            }
        };
        Ok(Some(Field { number: number as u32, value, offset }))
    }
}

impl<'a> Iterator for Reader<'a> {
    type Item = Result<Field<'a>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.next_field() {
            Ok(Some(f)) => Some(Ok(f)),
            Ok(None) => None,
            Err(e) => {
                // Stop after an error: the rest cannot be framed.
                self.pos = self.data.len();
                Some(Err(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_each_wire_type() {
        // 1: varint 150; 2: "hi"; 3: fixed32 1.5f; 4: fixed64 7
        let mut data = vec![0x08, 0x96, 0x01, 0x12, 2, b'h', b'i', 0x1d];
        data.extend(1.5f32.to_le_bytes());
        data.push(0x21);
        data.extend(7u64.to_le_bytes());
        let fields: Vec<Field> = Reader::new(&data).collect::<Result<_, _>>().unwrap();
        assert_eq!(fields[0].varint().unwrap(), 150);
        assert_eq!(fields[1].string().unwrap(), "hi");
        assert_eq!(fields[1].offset, 3);
        assert_eq!(fields[2].float().unwrap(), 1.5);
        assert_eq!(fields[3].value, Value::Fixed64(7));
    }

    #[test]
    fn reads_packed_and_unpacked_repeated_fields() {
        let mut v = Vec::new();
        let packed = [0x96, 0x01, 0x03, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        Field { number: 1, value: Value::Bytes(&packed), offset: 0 }.push_varints(&mut v).unwrap();
        Field { number: 1, value: Value::Varint(5), offset: 0 }.push_varints(&mut v).unwrap();
        assert_eq!(v, [150, 3, -1, 5]);
        let mut f = Vec::new();
        let bytes: Vec<u8> = [1.0f32, -2.0].iter().flat_map(|x| x.to_le_bytes()).collect();
        Field { number: 4, value: Value::Bytes(&bytes), offset: 0 }.push_floats(&mut f).unwrap();
        assert_eq!(f, [1.0, -2.0]);
    }

    #[test]
    fn sub_message_offsets_are_absolute() {
        // field 7 { field 1: varint, field 2: (length 200, truncated) }
        let data = [0x3a, 4, 0x08, 0x01, 0x12, 0xc8];
        let outer = Reader::new(&data).next().unwrap().unwrap();
        let mut inner = outer.message().unwrap();
        assert_eq!(inner.next().unwrap().unwrap().offset, 2);
        let e = inner.next().unwrap().unwrap_err();
        assert_eq!(e.offset, 6);
        assert!(e.message.contains("truncated varint"), "{e}");
    }

    #[test]
    fn rejects_lengths_past_the_end_and_groups() {
        let e = Reader::new(&[0x12, 0x05, b'a']).next().unwrap().unwrap_err();
        assert!(e.message.contains("length 5, only 1 bytes left"), "{e}");
        let e = Reader::new(&[0x0b]).next().unwrap().unwrap_err();
        assert!(e.message.contains("wire type 3"), "{e}");
        let e = Reader::new(&[0x00]).next().unwrap().unwrap_err();
        assert!(e.message.contains("field number 0"), "{e}");
        let e = Reader::new(&[0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f])
            .next()
            .unwrap()
            .unwrap_err();
        assert!(e.message.contains("64 bits"), "{e}");
    }

    #[test]
    fn wrong_wire_type_for_an_accessor_is_an_error() {
        let f = Field { number: 2, value: Value::Varint(1), offset: 9 };
        assert_eq!(f.bytes().unwrap_err().offset, 9);
        assert!(f.float().is_err());
    }
}
