//! The lake's `scoring` records to wave fans, compiled (docs/wave-prep.md, "Reading the lake").
//!
//! `ScoringPlan` decodes one Avro container block (already decompressed) under the file's
//! writer schema, compiled by adapters/avro_fans.py into nested tuples: it reads the fields a
//! wave needs and skips every other field by its type, then applies
//! adapters/aws/lake_fans.py's `fan_from_scoring` (the reference) to each record of the
//! campaign: the same fans and the same Failure texts, held to it by
//! tests/property/test_avro_fans.py. Damaged data is a ValueError saying which record of the
//! block and at which byte, never a crash.

use crate::is_py_space;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyList, PySet, PyString, PyTuple};

// A field's slot in the record as the wave reads it (adapters/avro_fans.py's SLOTS order).
const CAMPAIGN: usize = 0;
const GID: usize = 1;
const BAND_SCORE: usize = 2;
const SCORE: usize = 3;
const MARKET: usize = 4;
const MEMBER: usize = 5;
const FIRST: usize = 6;
const LAST: usize = 7;
const EMAIL: usize = 8;
const PHONE: usize = 9;
const LOCALE: usize = 10;
const VERDICT: usize = 11;
const SLOTS: usize = 12;

/// An Avro type as the plan gives it: (tag, argument). Tags in adapters/avro_fans.py.
enum Ty {
    Null,
    Bool,
    Int,
    Long,
    Float,
    Double,
    Bytes,
    Str,
    Fixed(usize),
    Enum(i64),
    Array(Box<Ty>),
    Map(Box<Ty>),
    Union(Vec<Ty>),
    Record(Vec<Ty>),
}

fn ty_of(obj: &Bound<'_, PyAny>) -> PyResult<Ty> {
    let (tag, arg): (u8, Bound<'_, PyAny>) = obj.extract()?;
    let list = |arg: &Bound<'_, PyAny>| -> PyResult<Vec<Ty>> {
        arg.try_iter()?.map(|item| ty_of(&item?)).collect()
    };
    Ok(match tag {
        0 => Ty::Null,
        1 => Ty::Bool,
        2 => Ty::Int,
        3 => Ty::Long,
        4 => Ty::Float,
        5 => Ty::Double,
        6 => Ty::Bytes,
        7 => Ty::Str,
        8 => Ty::Fixed(arg.extract()?),
        9 => Ty::Enum(arg.extract()?),
        10 => Ty::Array(Box::new(ty_of(&arg)?)),
        11 => Ty::Map(Box::new(ty_of(&arg)?)),
        12 => Ty::Union(list(&arg)?),
        13 => Ty::Record(list(&arg)?),
        _ => {
            return Err(PyValueError::new_err(format!(
                "unknown Avro type tag {tag}"
            )))
        }
    })
}

/// The fewest bytes a value of `ty` takes.
fn least_bytes(ty: &Ty) -> usize {
    match ty {
        Ty::Null => 0,
        Ty::Float => 4,
        Ty::Double => 8,
        Ty::Fixed(size) => *size,
        Ty::Record(fields) => fields
            .iter()
            .map(least_bytes)
            .fold(0, usize::saturating_add),
        _ => 1, // a boolean, a number, a length, a count or a branch: at least one byte
    }
}

/// A needed field's value, as fastavro would give it to `fan_from_scoring`.
#[derive(Clone, Copy)]
enum Value<'a> {
    Missing, // null, or not in the writer schema: record.get gives None
    Bool(bool),
    Num(f64), // int, long, float, double: `isinstance(x, int | float)`
    Str(&'a str),
    Other, // bytes, fixed, array, map, record: neither text, number nor False
}

struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
}

type Decoded<T> = Result<T, String>;

impl<'a> Cursor<'a> {
    fn long(&mut self) -> Decoded<i64> {
        let mut result: u64 = 0;
        let mut shift = 0;
        loop {
            let Some(&byte) = self.data.get(self.pos) else {
                return Err(format!(
                    "the data ends at byte {}, inside a number",
                    self.pos
                ));
            };
            self.pos += 1;
            result |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                return Ok((result >> 1) as i64 ^ -((result & 1) as i64));
            }
            shift += 7;
            if shift > 63 {
                return Err(format!(
                    "a number longer than 10 bytes at byte {}",
                    self.pos
                ));
            }
        }
    }

    fn take(&mut self, size: usize) -> Decoded<&'a [u8]> {
        let end = self
            .pos
            .checked_add(size)
            .filter(|&end| end <= self.data.len());
        let Some(end) = end else {
            return Err(format!(
                "a value of {size} bytes at byte {} runs past the block's end ({})",
                self.pos,
                self.data.len()
            ));
        };
        let out = &self.data[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn length(&mut self) -> Decoded<usize> {
        let at = self.pos;
        let n = self.long()?;
        usize::try_from(n).map_err(|_| format!("a negative length ({n}) at byte {at}"))
    }

    fn bytes(&mut self) -> Decoded<&'a [u8]> {
        let size = self.length()?;
        self.take(size)
    }

    fn text(&mut self) -> Decoded<&'a str> {
        let at = self.pos;
        let raw = self.bytes()?;
        // Strict, as fastavro's default: a string that is not UTF-8 is damage, not a value.
        std::str::from_utf8(raw).map_err(|_| format!("a string that is not UTF-8 at byte {at}"))
    }

    fn branch<'t>(&mut self, branches: &'t [Ty]) -> Decoded<&'t Ty> {
        let at = self.pos;
        let index = self.long()?;
        usize::try_from(index)
            .ok()
            .and_then(|i| branches.get(i))
            .ok_or_else(|| format!("union branch {index} of {} at byte {at}", branches.len()))
    }

    /// An array's or map's items, block by block (a negative count carries the block's size).
    /// `item_bytes`: the fewest bytes an item takes. Items of none (nulls) are not walked, and
    /// a count the rest of the block cannot hold is damage: a damaged count never spins.
    fn items(
        &mut self,
        item_bytes: usize,
        each: &mut dyn FnMut(&mut Self) -> Decoded<()>,
    ) -> Decoded<()> {
        loop {
            let at = self.pos;
            let count = self.long()?;
            if count == 0 {
                return Ok(());
            }
            if count < 0 {
                self.long()?;
            }
            let count = count.unsigned_abs();
            if item_bytes == 0 {
                continue;
            }
            let room = (self.data.len() - self.pos) / item_bytes;
            if count > room as u64 {
                return Err(format!(
                    "{count} items at byte {at}, more than the rest of the block holds"
                ));
            }
            for _ in 0..count {
                each(self)?;
            }
        }
    }

    fn skip(&mut self, ty: &Ty) -> Decoded<()> {
        match ty {
            Ty::Null => {}
            Ty::Bool => {
                self.bool()?;
            }
            Ty::Int | Ty::Long => {
                self.long()?;
            }
            Ty::Float => {
                self.take(4)?;
            }
            Ty::Double => {
                self.take(8)?;
            }
            Ty::Bytes => {
                self.bytes()?;
            }
            Ty::Str => {
                self.text()?;
            }
            Ty::Fixed(size) => {
                self.take(*size)?;
            }
            Ty::Enum(symbols) => {
                let at = self.pos;
                let index = self.long()?;
                if index < 0 || index >= *symbols {
                    return Err(format!("enum symbol {index} of {symbols} at byte {at}"));
                }
            }
            Ty::Array(item) => self.items(least_bytes(item), &mut |c| c.skip(item))?,
            Ty::Map(values) => self.items(1 + least_bytes(values), &mut |c| {
                c.text()?;
                c.skip(values)
            })?,
            Ty::Union(branches) => {
                let branch = self.branch(branches)?;
                self.skip(branch)?;
            }
            Ty::Record(fields) => {
                for field in fields {
                    self.skip(field)?;
                }
            }
        }
        Ok(())
    }

    fn bool(&mut self) -> Decoded<bool> {
        Ok(self.take(1)?[0] != 0)
    }

    fn value(&mut self, ty: &Ty) -> Decoded<Value<'a>> {
        Ok(match ty {
            Ty::Null => Value::Missing,
            Ty::Bool => Value::Bool(self.bool()?),
            Ty::Int | Ty::Long => Value::Num(self.long()? as f64),
            Ty::Float => {
                let raw = self.take(4)?;
                Value::Num(f64::from(f32::from_le_bytes(
                    raw.try_into().expect("4 bytes"),
                )))
            }
            Ty::Double => Value::Num(f64::from_le_bytes(self.take(8)?.try_into().expect("8"))),
            Ty::Str => Value::Str(self.text()?),
            Ty::Union(branches) => {
                let branch = self.branch(branches)?;
                self.value(branch)?
            }
            // The plan never gives an enum to a needed field (fastavro reads it as text: the
            // plan leaves such a schema to fastavro).
            other => {
                self.skip(other)?;
                Value::Other
            }
        })
    }
}

/// `x.strip() if isinstance(x, str) else ""`
fn text_of<'a>(value: Value<'a>) -> &'a str {
    match value {
        Value::Str(s) => s.trim_matches(is_py_space),
        _ => "",
    }
}

/// A few recent strings as Python objects: markets and locales repeat across a wave, and one
/// object per distinct value saves an allocation a fan (and the selection's memory).
struct Recent {
    slots: Vec<(String, Py<PyString>)>,
    next: usize,
}

impl Recent {
    const SIZE: usize = 64;

    fn new() -> Self {
        Recent {
            slots: Vec::with_capacity(Self::SIZE),
            next: 0,
        }
    }

    fn get<'py>(&mut self, py: Python<'py>, s: &str) -> Bound<'py, PyString> {
        if let Some((_, obj)) = self.slots.iter().find(|(k, _)| k == s) {
            return obj.bind(py).clone();
        }
        let obj = PyString::new(py, s);
        let entry = (s.to_owned(), obj.clone().unbind());
        if self.slots.len() < Self::SIZE {
            self.slots.push(entry);
        } else {
            self.slots[self.next] = entry;
            self.next = (self.next + 1) % Self::SIZE;
        }
        obj
    }
}

/// A writer schema's plan: each top-level field's slot (or none: skipped) and type.
#[pyclass(frozen)]
pub struct ScoringPlan {
    fields: Vec<(Option<usize>, Ty)>,
}

#[pymethods]
impl ScoringPlan {
    #[new]
    fn new(fields: Vec<(i64, Bound<'_, PyAny>)>) -> PyResult<Self> {
        let fields = fields
            .iter()
            .map(|(slot, ty)| {
                let slot = usize::try_from(*slot).ok().filter(|&s| s < SLOTS);
                Ok((slot, ty_of(ty)?))
            })
            .collect::<PyResult<Vec<_>>>()?;
        Ok(ScoringPlan { fields })
    }

    /// The block's `count` records (`data` decompressed): for each record of `campaign_id`,
    /// `success(fan(...))` or `failure(reason)` exactly as `fan_from_scoring` gives them.
    /// Damaged data: ValueError naming the record of the block and the byte.
    #[allow(clippy::too_many_arguments)]
    fn fans<'py>(
        &self,
        py: Python<'py>,
        data: &[u8],
        count: i64,
        campaign_id: &str,
        coded: &Bound<'py, PySet>,
        fan: &Bound<'py, PyAny>,
        success: &Bound<'py, PyAny>,
        failure: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyList>> {
        let out = PyList::empty(py);
        let mut cursor = Cursor { data, pos: 0 };
        let empty = PyString::intern(py, "");
        let no_markets = PyTuple::empty(py);
        let mut recent = Recent::new();
        let mut values = [Value::Missing; SLOTS];
        for record in 0..count.max(0) {
            values.fill(Value::Missing);
            for (slot, ty) in &self.fields {
                let decoded = match slot {
                    Some(slot) => cursor.value(ty).map(|v| values[*slot] = v),
                    None => cursor.skip(ty),
                };
                decoded
                    .map_err(|what| PyValueError::new_err(format!("record {record}: {what}")))?;
            }
            if !matches!(values[CAMPAIGN], Value::Str(c) if c == campaign_id) {
                continue;
            }
            let gid = text_of(values[GID]);
            if gid.is_empty() {
                out.append(failure.call1(("scoring record without globalUserId",))?)?;
                continue;
            }
            let score = match values[BAND_SCORE] {
                Value::Missing => values[SCORE],
                band => band,
            };
            let Value::Num(score) = score else {
                let reason =
                    format!("scoring record {gid}: neither band_score nor score is a number");
                out.append(failure.call1((reason,))?)?;
                continue;
            };
            let gid = PyString::new(py, gid);
            let mut text = |slot: usize, cache: bool| {
                let s = text_of(values[slot]);
                match (s.is_empty(), cache) {
                    (true, _) => empty.clone(),
                    (false, true) => recent.get(py, s),
                    (false, false) => PyString::new(py, s),
                }
            };
            let markets = if text_of(values[MARKET]).is_empty() {
                no_markets.clone()
            } else {
                PyTuple::new(py, [text(MARKET, true)])?
            };
            let has_codes = coded.contains(&gid)?;
            let args = (
                gid,
                score,
                markets,
                !matches!(values[VERDICT], Value::Bool(false)),
                has_codes,
                text(MEMBER, false),
                text(FIRST, false),
                text(LAST, false),
                text(EMAIL, false),
                text(PHONE, false),
                text(LOCALE, true),
            );
            out.append(success.call1((fan.call1(args)?,))?)?;
        }
        if cursor.pos != data.len() {
            return Err(PyValueError::new_err(format!(
                "{} bytes after the block's {count} records, from byte {}",
                data.len() - cursor.pos,
                cursor.pos
            )));
        }
        Ok(out)
    }
}
