//! NumPy `.npy` layout: the magic string, the format version, the header dict in Python
//! literal syntax (`{'descr': '<f4', 'fortran_order': False, 'shape': (1000, 128), }`), then
//! the raw C-order data. Owns parsing and validating that header against the file's length,
//! and writing the version 1.0 header plus data for `write_npy_f32`.

use std::fmt;
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::Path;

use super::texmex::LeValue;
use super::{check_input, io_error, Elem, VecIoError, IO_BUFFER, MAX_FILE_DIM};

const MAGIC: &[u8; 6] = b"\x93NUMPY";

/// NumPy itself refuses headers over 10 000 bytes unless told otherwise; this allows far more
/// (padded or hand-written headers) while still bounding what a hostile file makes us read.
const MAX_HEADER_LEN: u64 = 1 << 20;

/// Real headers nest at most a few levels (structured dtypes); the bound keeps a hostile
/// header of nested brackets from overflowing the parser's stack.
const MAX_DEPTH: usize = 32;

/// NumPy pads the header so the data starts on this boundary.
const ALIGN: usize = 64;

/// What an `.npy` header says about the array, validated against the file's length.
#[derive(Debug)]
pub(super) struct NpyLayout {
    pub(super) dim: usize,
    pub(super) rows: u64,
    pub(super) elem: Elem,
}

/// Reads and validates the preamble and header of an `.npy` file of `len` bytes, leaving
/// `reader` at the first data byte.
pub(super) fn read_layout<R: Read>(reader: &mut R, path: &Path, len: u64) -> Result<NpyLayout, VecIoError> {
    let header_error = |reason: String| VecIoError::NpyHeader { path: path.to_path_buf(), reason };
    let truncated = |expected_bytes: u64| VecIoError::Truncated {
        path: path.to_path_buf(),
        expected_bytes,
        actual_bytes: len,
    };
    if len == 0 {
        return Err(VecIoError::Empty { path: path.to_path_buf() });
    }

    let mut start = [0u8; 8];
    // At most 8 bytes, so the cast is lossless.
    let available = len.min(8) as usize;
    let start = start.get_mut(..available).unwrap_or_default();
    reader.read_exact(start).map_err(io_error(path))?;
    // A file shorter than the magic is only "truncated" if what it has matches the magic.
    if !start.iter().zip(MAGIC).all(|(a, b)| a == b) {
        return Err(VecIoError::NpyBadMagic { path: path.to_path_buf() });
    }
    let &mut [_, _, _, _, _, _, major, minor] = start else {
        return Err(truncated(10));
    };
    let len_field = match (major, minor) {
        (1, 0) => 2,
        (2, 0) | (3, 0) => 4,
        _ => return Err(VecIoError::NpyUnsupportedVersion { path: path.to_path_buf(), major, minor }),
    };
    let preamble = 8 + len_field;
    if len < preamble {
        return Err(truncated(preamble));
    }
    let header_len = if len_field == 2 {
        let mut field = [0u8; 2];
        reader.read_exact(&mut field).map_err(io_error(path))?;
        u64::from(u16::from_le_bytes(field))
    } else {
        let mut field = [0u8; 4];
        reader.read_exact(&mut field).map_err(io_error(path))?;
        u64::from(u32::from_le_bytes(field))
    };
    if header_len > MAX_HEADER_LEN {
        return Err(header_error(format!("its length {header_len} exceeds the {MAX_HEADER_LEN}-byte limit")));
    }
    let data_start = preamble + header_len;
    if len < data_start {
        return Err(truncated(data_start));
    }
    // Bounded by MAX_HEADER_LEN and by the file's length.
    let mut raw = vec![0u8; header_len as usize];
    reader.read_exact(&mut raw).map_err(io_error(path))?;
    // Versions 1 and 2 store the header as latin-1, version 3 as UTF-8.
    let text = if major == 3 {
        String::from_utf8(raw).map_err(|_| header_error("it is not valid UTF-8".into()))?
    } else {
        raw.iter().map(|&b| char::from(b)).collect()
    };
    let dict = Parser::parse(&text).map_err(header_error)?;
    let Fields { descr, fortran_order, shape } = Fields::from_dict(dict).map_err(header_error)?;

    let elem = match &descr {
        PyValue::Str(s) if s == "<f4" => Elem::F32,
        PyValue::Str(s) if s == "<f8" => Elem::F64,
        PyValue::Str(s) if s == "|u1" => Elem::U8,
        // A plain string is reported as written; anything else (a structured dtype's list)
        // in Python syntax.
        PyValue::Str(s) => {
            return Err(VecIoError::NpyUnsupportedDtype { path: path.to_path_buf(), descr: s.clone() })
        }
        other => {
            return Err(VecIoError::NpyUnsupportedDtype {
                path: path.to_path_buf(),
                descr: other.to_string(),
            })
        }
    };
    match fortran_order {
        PyValue::Bool(false) => {}
        PyValue::Bool(true) => return Err(VecIoError::NpyFortranOrder { path: path.to_path_buf() }),
        other => return Err(header_error(format!("'fortran_order' is {other}, not True or False"))),
    }
    let not_a_shape = || header_error(format!("'shape' is {shape}, not a tuple of sizes"));
    let PyValue::Tuple(sizes) = &shape else {
        return Err(not_a_shape());
    };
    let sizes = sizes
        .iter()
        .map(|size| match size {
            PyValue::Int(n) => u64::try_from(*n).ok(),
            _ => None,
        })
        .collect::<Option<Vec<u64>>>()
        .ok_or_else(not_a_shape)?;
    let &[rows, cols] = sizes.as_slice() else {
        return Err(VecIoError::NpyNotTwoDimensional { path: path.to_path_buf(), shape: shape.to_string() });
    };
    let dim = usize::try_from(cols).ok().filter(|dim| (1..=MAX_FILE_DIM).contains(dim)).ok_or_else(|| {
        VecIoError::BadDimension {
            path: path.to_path_buf(),
            vector: 0,
            dim: i64::try_from(cols).unwrap_or(i64::MAX),
        }
    })?;
    let expected = rows
        .checked_mul(cols)
        .and_then(|values| values.checked_mul(elem.size() as u64))
        .and_then(|bytes| bytes.checked_add(data_start))
        .ok_or_else(|| header_error(format!("shape {shape} describes more bytes than a file holds")))?;
    if len < expected {
        return Err(truncated(expected));
    }
    if len > expected {
        return Err(VecIoError::TrailingBytes {
            path: path.to_path_buf(),
            expected_bytes: expected,
            actual_bytes: len,
        });
    }
    Ok(NpyLayout { dim, rows, elem })
}

/// Writes `data` as a version 1.0 `.npy` file of dtype `<f4` and shape `(len / dim, dim)`.
pub(super) fn write_f32(path: &Path, data: &[f32], dim: usize) -> Result<(), VecIoError> {
    check_input(data.len(), dim)?;
    let header = encode_header("<f4", data.len() / dim, dim);
    let file = File::create(path).map_err(io_error(path))?;
    let mut writer = BufWriter::with_capacity(IO_BUFFER, file);
    writer.write_all(&header).map_err(io_error(path))?;
    let mut scratch = Vec::new();
    for values in data.chunks(IO_BUFFER / 4) {
        scratch.clear();
        f32::put_all(values, &mut scratch);
        writer.write_all(&scratch).map_err(io_error(path))?;
    }
    writer.into_inner().map_err(|e| VecIoError::Io { path: path.to_path_buf(), source: e.into_error() })?;
    Ok(())
}

/// The preamble and header NumPy would write for a C-order `(rows, dim)` array of `descr`:
/// the dict padded with spaces and ended by `'\n'` so the data starts on a 64-byte boundary.
pub(super) fn encode_header(descr: &str, rows: usize, dim: usize) -> Vec<u8> {
    let dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': ({rows}, {dim}), }}");
    let padded = |preamble: usize| (preamble + dict.len() + 1).div_ceil(ALIGN) * ALIGN;
    let mut out = Vec::with_capacity(padded(12));
    out.extend_from_slice(MAGIC);
    // Version 1.0 stores the header length in a u16, which every 2-D shape fits (the dict is
    // about a hundred bytes); version 2.0's u32 is only a guard.
    let total = match u16::try_from(padded(10) - 10) {
        Ok(header_len) => {
            out.extend_from_slice(&[1, 0]);
            out.extend_from_slice(&header_len.to_le_bytes());
            padded(10)
        }
        Err(_) => {
            out.extend_from_slice(&[2, 0]);
            out.extend_from_slice(&((padded(12) - 12) as u32).to_le_bytes());
            padded(12)
        }
    };
    out.extend_from_slice(dict.as_bytes());
    out.resize(total - 1, b' ');
    out.push(b'\n');
    out
}

/// A Python literal, as far as `.npy` headers use them.
#[derive(Clone, Debug, PartialEq)]
enum PyValue {
    Str(String),
    Int(i128),
    Bool(bool),
    None,
    Tuple(Vec<PyValue>),
    List(Vec<PyValue>),
    Dict(Vec<(PyValue, PyValue)>),
}

/// Python's `repr`, so error messages quote the header the way the user would see it.
impl fmt::Display for PyValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn items(f: &mut fmt::Formatter<'_>, values: &[PyValue]) -> fmt::Result {
            for (i, value) in values.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{value}")?;
            }
            Ok(())
        }
        match self {
            Self::Str(s) => write!(f, "'{s}'"),
            Self::Int(n) => write!(f, "{n}"),
            Self::Bool(true) => f.write_str("True"),
            Self::Bool(false) => f.write_str("False"),
            Self::None => f.write_str("None"),
            Self::Tuple(values) => {
                f.write_str("(")?;
                items(f, values)?;
                f.write_str(if values.len() == 1 { ",)" } else { ")" })
            }
            Self::List(values) => {
                f.write_str("[")?;
                items(f, values)?;
                f.write_str("]")
            }
            Self::Dict(entries) => {
                f.write_str("{")?;
                for (i, (key, value)) in entries.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{key}: {value}")?;
                }
                f.write_str("}")
            }
        }
    }
}

/// The three entries of an `.npy` header dict, not yet interpreted.
struct Fields {
    descr: PyValue,
    fortran_order: PyValue,
    shape: PyValue,
}

impl Fields {
    /// Like NumPy, demands exactly the keys `descr`, `fortran_order` and `shape`: an unknown
    /// key could change what the data means.
    fn from_dict(value: PyValue) -> Result<Self, String> {
        let PyValue::Dict(entries) = value else {
            return Err(format!("it is {value}, not a dict"));
        };
        let (mut descr, mut fortran_order, mut shape) = (None, None, None);
        for (key, value) in entries {
            let slot = match &key {
                PyValue::Str(name) if name == "descr" => &mut descr,
                PyValue::Str(name) if name == "fortran_order" => &mut fortran_order,
                PyValue::Str(name) if name == "shape" => &mut shape,
                other => return Err(format!("unexpected key {other}")),
            };
            if slot.replace(value).is_some() {
                return Err(format!("duplicate key {key}"));
            }
        }
        let missing = |name: &str| format!("missing key '{name}'");
        Ok(Self {
            descr: descr.ok_or_else(|| missing("descr"))?,
            fortran_order: fortran_order.ok_or_else(|| missing("fortran_order"))?,
            shape: shape.ok_or_else(|| missing("shape"))?,
        })
    }
}

/// Recursive-descent parser for the Python literals `.npy` headers contain: strings, integers
/// (with Python 2's `L` suffix), `True`/`False`/`None`, tuples, lists and dicts.
struct Parser<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Parser<'a> {
    /// Parses `text` as one literal surrounded by optional whitespace.
    fn parse(text: &'a str) -> Result<PyValue, String> {
        let mut parser = Parser { text, pos: 0 };
        parser.skip_whitespace();
        let value = parser.value(0)?;
        parser.skip_whitespace();
        if parser.pos < text.len() {
            return Err(parser.unexpected());
        }
        Ok(value)
    }

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn skip_whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c) = self.peek() {
            self.pos += 1;
        }
    }

    fn unexpected(&self) -> String {
        match self.text.get(self.pos..).and_then(|rest| rest.chars().next()) {
            Some(c) => format!("unexpected {c:?} at byte {}", self.pos),
            None => "unexpected end of header".to_owned(),
        }
    }

    fn value(&mut self, depth: usize) -> Result<PyValue, String> {
        if depth > MAX_DEPTH {
            return Err(format!("literals nested deeper than {MAX_DEPTH} levels"));
        }
        match self.peek() {
            Some(b'\'' | b'"') => self.string(),
            Some(b'{') => self.dict(depth),
            Some(b'(') => self.sequence(depth, b')'),
            Some(b'[') => self.sequence(depth, b']'),
            Some(b'0'..=b'9' | b'-' | b'+') => self.int(),
            Some(c) if c.is_ascii_alphabetic() || c == b'_' => self.name(),
            _ => Err(self.unexpected()),
        }
    }

    /// A quoted string. Escapes are kept as written: the values this module accepts contain
    /// none, and rejected ones are only quoted back in error messages.
    fn string(&mut self) -> Result<PyValue, String> {
        let quote = self.peek();
        self.pos += 1;
        let start = self.pos;
        loop {
            match self.peek() {
                None | Some(b'\n') => return Err("unterminated string".to_owned()),
                Some(b'\\') => self.pos += 2,
                c if c == quote => break,
                Some(_) => self.pos += 1,
            }
        }
        // Both ends sit on ASCII bytes, hence on character boundaries.
        let content = self.text.get(start..self.pos).ok_or_else(|| "malformed string".to_owned())?;
        self.pos += 1;
        Ok(PyValue::Str(content.to_owned()))
    }

    fn int(&mut self) -> Result<PyValue, String> {
        let negative = self.peek() == Some(b'-');
        if matches!(self.peek(), Some(b'-' | b'+')) {
            self.pos += 1;
        }
        let start = self.pos;
        let mut n: i128 = 0;
        while let Some(digit @ b'0'..=b'9') = self.peek() {
            n = n
                .checked_mul(10)
                .and_then(|n| n.checked_add(i128::from(digit - b'0')))
                .ok_or_else(|| format!("integer too large at byte {start}"))?;
            self.pos += 1;
        }
        if self.pos == start {
            return Err(self.unexpected());
        }
        // Python 2 NumPy wrote shapes as (1000L, 128L).
        if let Some(b'L' | b'l') = self.peek() {
            self.pos += 1;
        }
        if let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || c == b'.' || c == b'_' {
                return Err(format!("unsupported number literal at byte {start}"));
            }
        }
        Ok(PyValue::Int(if negative { -n } else { n }))
    }

    fn name(&mut self) -> Result<PyValue, String> {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if !(c.is_ascii_alphanumeric() || c == b'_') {
                break;
            }
            self.pos += 1;
        }
        let name = self.text.get(start..self.pos).unwrap_or_default();
        match name {
            "True" => Ok(PyValue::Bool(true)),
            "False" => Ok(PyValue::Bool(false)),
            "None" => Ok(PyValue::None),
            // String prefixes, e.g. u'<f4' from Python 2.
            "u" | "U" | "b" | "B" | "r" | "R" if matches!(self.peek(), Some(b'\'' | b'"')) => self.string(),
            _ => Err(format!("unsupported name '{name}' at byte {start}")),
        }
    }

    /// A tuple (`close` is `)`) or list (`]`). As in Python, `(x)` is just `x`; only a comma
    /// makes a one-element tuple.
    fn sequence(&mut self, depth: usize, close: u8) -> Result<PyValue, String> {
        self.pos += 1;
        let mut values = Vec::new();
        let mut comma = false;
        loop {
            self.skip_whitespace();
            if self.peek() == Some(close) {
                self.pos += 1;
                break;
            }
            values.push(self.value(depth + 1)?);
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => {
                    self.pos += 1;
                    comma = true;
                }
                Some(c) if c == close => {
                    self.pos += 1;
                    break;
                }
                _ => return Err(self.unexpected()),
            }
        }
        if close == b']' {
            return Ok(PyValue::List(values));
        }
        match values.pop() {
            Some(only) if values.is_empty() && !comma => Ok(only),
            Some(last) => {
                values.push(last);
                Ok(PyValue::Tuple(values))
            }
            None => Ok(PyValue::Tuple(values)),
        }
    }

    fn dict(&mut self, depth: usize) -> Result<PyValue, String> {
        self.pos += 1;
        let mut entries = Vec::new();
        loop {
            self.skip_whitespace();
            if self.peek() == Some(b'}') {
                self.pos += 1;
                break;
            }
            let key = self.value(depth + 1)?;
            self.skip_whitespace();
            if self.peek() != Some(b':') {
                return Err(self.unexpected());
            }
            self.pos += 1;
            self.skip_whitespace();
            let value = self.value(depth + 1)?;
            entries.push((key, value));
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    break;
                }
                _ => return Err(self.unexpected()),
            }
        }
        Ok(PyValue::Dict(entries))
    }
}
