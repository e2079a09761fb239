//! The scored-file transform's common case, compiled (docs/kernel.md).
//!
//! `Kernel::run` reads a chunk's lines and decides the rows it can decide exactly as the Python
//! transform (domain/scoring/transform.py) would: rows whose phone is empty, a NANP shape, a
//! '+' number it can validate from phonenumbers' tables, or surely invalid; whose email is
//! empty, plain ASCII or surely invalid; whose cells need no CSV quoting; accepted, or rejected
//! for a blocked domain, the blacklist or an international phone. It writes their CSV lines and
//! stream records (orjson's bytes) and hands every other row back, as runs of consecutive lines,
//! for the Python transform to do. A differential property test
//! (tests/property/test_row_kernel.py) holds the two to the same bytes.

// Index loops mirror the shape regex's fixed digit positions; the NANP table's type is spelled
// out where Python hands it over.
#![allow(clippy::needless_range_loop, clippy::type_complexity)]

use std::collections::HashSet;
use std::fmt::Write as _;
use std::sync::OnceLock;

use blake2b_simd::{Params, State};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString};
use regex::Regex;

mod avro_fans;

const INTL: usize = 1;
const INVALID_PHONE: usize = 2;
const UNCONFIRMED: usize = 4;
const INVALID_EMAIL: usize = 8;
const CONFIRMED_VALUES: [&str; 5] = ["true", "1", "yes", "y", "t"];
const LOCAL_MAX: usize = 64;
const ADDRESS_MAX: usize = 254;
const LABEL_MAX: usize = 63;
const U_SCALE: f64 = 1.0 / 9007199254740992.0; // 2**-53

struct Tier {
    name: String,
    low: f64,
    high: f64,
}

/// Python's str.isspace (what str.strip removes): a test compares the two over every code point.
/// The lake decoder (avro_fans.rs) strips with it too.
pub(crate) fn is_py_space(c: char) -> bool {
    matches!(
        c,
        '\t'..='\r'
            | '\u{1c}'..='\u{20}'
            | '\u{85}'
            | '\u{a0}'
            | '\u{1680}'
            | '\u{2000}'..='\u{200a}'
            | '\u{2028}'
            | '\u{2029}'
            | '\u{202f}'
            | '\u{205f}'
            | '\u{3000}'
    )
}

fn py_strip(s: &str) -> &str {
    s.trim_matches(is_py_space)
}

/// A stack buffer for `{:e}`: formatting a float allocates nothing (a String per float was a
/// measurable share of the row).
struct StackText {
    bytes: [u8; 40],
    len: usize,
}

impl std::fmt::Write for StackText {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let end = self.len + s.len();
        if end > self.bytes.len() {
            return Err(std::fmt::Error);
        }
        self.bytes[self.len..end].copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// A finite float's sign and shortest round-trip digits with the decimal exponent of the
/// first, computed once and written in Python's and orjson's notations.
struct Float {
    negative: bool,
    zero: bool,
    digits: [u8; 24],
    len: usize,
    exp: i32,
}

impl Float {
    fn of(x: f64) -> Float {
        let mut f = Float {
            negative: x.is_sign_negative(),
            zero: x == 0.0,
            digits: [0; 24],
            len: 0,
            exp: 0,
        };
        if f.zero {
            return f;
        }
        let mut text = StackText {
            bytes: [0; 40],
            len: 0,
        };
        write!(text, "{:e}", x.abs()).expect("a float's {:e} fits 40 bytes");
        let text = &text.bytes[..text.len];
        let e = text
            .iter()
            .position(|b| *b == b'e')
            .expect("LowerExp writes an exponent");
        for b in &text[..e] {
            if *b != b'.' {
                f.digits[f.len] = *b;
                f.len += 1;
            }
        }
        let (negative_exp, magnitude) = match text[e + 1] {
            b'-' => (true, &text[e + 2..]),
            _ => (false, &text[e + 1..]),
        };
        let magnitude = magnitude
            .iter()
            .fold(0i32, |n, b| n * 10 + i32::from(b - b'0'));
        f.exp = if negative_exp { -magnitude } else { magnitude };
        f
    }

    /// Fixed notation when `low <= exponent < 16`, else scientific; `pad` is the exponent's
    /// minimum digits.
    fn write(&self, low: i32, pad: usize, out: &mut Vec<u8>) {
        if self.negative {
            out.push(b'-');
        }
        if self.zero {
            out.extend_from_slice(b"0.0");
            return;
        }
        let digits = &self.digits[..self.len];
        let exp = self.exp;
        if (low..16).contains(&exp) {
            if exp >= 0 {
                let int_len = exp as usize + 1;
                if digits.len() <= int_len {
                    out.extend_from_slice(digits);
                    out.extend(std::iter::repeat_n(b'0', int_len - digits.len()));
                    out.extend_from_slice(b".0");
                } else {
                    out.extend_from_slice(&digits[..int_len]);
                    out.push(b'.');
                    out.extend_from_slice(&digits[int_len..]);
                }
            } else {
                out.extend_from_slice(b"0.");
                out.extend(std::iter::repeat_n(b'0', (-exp - 1) as usize));
                out.extend_from_slice(digits);
            }
        } else {
            out.push(digits[0]);
            if digits.len() > 1 {
                out.push(b'.');
                out.extend_from_slice(&digits[1..]);
            }
            out.push(b'e');
            out.push(if exp < 0 { b'-' } else { b'+' });
            let magnitude = exp.unsigned_abs();
            if pad == 2 && magnitude < 10 {
                out.push(b'0');
            }
            push_int(u64::from(magnitude), out);
        }
    }

    /// Python's repr(float).
    fn py_repr(&self, out: &mut Vec<u8>) {
        self.write(-4, 2, out);
    }

    /// orjson's bytes for a float.
    fn json(&self, out: &mut Vec<u8>) {
        self.write(-5, 1, out);
    }
}

fn push_int(mut n: u64, out: &mut Vec<u8>) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

fn push_i64(n: i64, out: &mut Vec<u8>) {
    if n < 0 {
        out.push(b'-');
    }
    push_int(n.unsigned_abs(), out);
}

/// A JSON string as orjson writes it: only '"', '\\' and control characters escaped.
fn json_str(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\x08' => b"\\b",
            b'\t' => b"\\t",
            b'\n' => b"\\n",
            b'\x0c' => b"\\f",
            b'\r' => b"\\r",
            0..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if escape.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 15)]);
        } else {
            out.extend_from_slice(escape);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// `[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?`, whole (spreadsheet.py's
/// _PLAIN_NUMBER on ASCII; parse_score's text without the sign).
fn is_plain_number(s: &[u8], signed: bool) -> bool {
    let mut i = 0;
    let digits = |i: &mut usize| {
        let from = *i;
        while s.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i - from
    };
    if signed && matches!(s.first(), Some(b'+' | b'-')) {
        i = 1;
    }
    let whole = digits(&mut i);
    if s.get(i) == Some(&b'.') {
        i += 1;
        let fraction = digits(&mut i);
        if whole == 0 && fraction == 0 {
            return false;
        }
    } else if whole == 0 {
        return false;
    }
    if matches!(s.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(s.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == s.len()
}

/// One handed-back run of lines: where its CSV goes in the kernel's CSV, its lines
/// [start, end) and its bytes [from, to) in the chunk's data.
type Cut = (usize, usize, usize, usize, usize);

/// One run's output; records are written back to back into `records` (one allocation per
/// chunk, not per row) and cut into bytes objects at the end.
#[derive(Default)]
struct Out<'a> {
    csv: Vec<u8>,
    cuts: Vec<Cut>,
    keys: Vec<&'a str>,
    records: Vec<u8>,
    record_ends: Vec<usize>,
    rows: Vec<i64>,
    tags: [u64; 4],
    tagged: u64,
    bands: Vec<u64>,
    // Rows rejected for a blocked domain, a blacklisted address, an international phone.
    rejected: [u64; 3],
    // Calling codes seen in '+' numbers whose tables the kernel has not been given yet.
    wanted: Vec<u16>,
    lower: String, // scratch: the lowercased email
}

/// A row the kernel decided: everything its CSV line and record need besides the cells.
struct Row<'a> {
    tier: usize,
    band_score: Float,
    score: Float,
    e164: Option<E164>,
    region: &'a str, // of a valid international number (the reason names it)
    confirmed: bool,
    bits: usize,
    cells: &'a [&'a str],
}

/// A valid number in E.164 ("+", calling code, national number: at most 21 bytes).
#[derive(Clone, Copy)]
struct E164 {
    bytes: [u8; 24],
    len: usize,
}

impl E164 {
    fn new(calling_code: &[u8], nsn: &[u8]) -> E164 {
        let mut e = E164 {
            bytes: [0; 24],
            len: 1 + calling_code.len() + nsn.len(),
        };
        e.bytes[0] = b'+';
        e.bytes[1..1 + calling_code.len()].copy_from_slice(calling_code);
        e.bytes[1 + calling_code.len()..e.len].copy_from_slice(nsn);
        e
    }

    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// A number description: phonenumbers' national number pattern (whole) and possible lengths
/// (none: any length).
struct Desc {
    pattern: Regex,
    lengths: Vec<usize>,
}

impl Desc {
    /// phonenumbers' _is_number_matching_desc.
    fn matches(&self, nsn: &str) -> bool {
        (self.lengths.is_empty() || self.lengths.contains(&nsn.len())) && self.pattern.is_match(nsn)
    }
}

/// One region of a calling code, as phonenumbers' validity reads it.
struct Region {
    code: String,
    leading: Option<Regex>,
    general: Option<Desc>,
    types: Vec<Desc>,
}

impl Region {
    /// phonenumbers' `_number_type_helper(nsn) != UNKNOWN`.
    fn valid(&self, nsn: &str) -> bool {
        self.general.as_ref().is_some_and(|g| g.matches(nsn))
            && self.types.iter().any(|t| t.matches(nsn))
    }
}

/// A calling code's regions in phonenumbers' order, and its main region's national prefix
/// for parsing (a number it matches at the start is handed back: phonenumbers may strip it).
struct Country {
    prefix: Option<Regex>,
    regions: Vec<Region>,
}

/// What the kernel says of a phone written with '+'.
enum Plus<'k> {
    Valid(u16, &'k str, E164), // calling code, region, E.164
    Invalid,
    Unknown(Option<u16>), // hand back; Some: the calling code whose table the kernel lacks
}

/// What the rules say of an email the kernel reads.
enum EmailVerdict {
    Valid,
    Invalid,
}

/// Why the kernel rejects a row (the Python transform's reason codes and texts).
enum Rejection {
    Blocked(usize, usize), // the lowercased domain's span in `Out::lower`
    Blacklisted,
    Intl,
}

#[pyclass(frozen)]
struct Kernel {
    width: usize,
    i_gid: usize,
    i_email: usize,
    i_phone: usize,
    i_score: usize,
    i_confirmed: Option<usize>,
    present: Vec<(Vec<u8>, usize)>, // `,"name":` of the optional columns present, and position
    extras: Vec<(Vec<u8>, usize)>,  // the same of the pass-through columns
    absent: Vec<u8>,                // `,"name":null` of the absent optional columns
    head: Vec<u8>,                  // `{"type":...,"campaignId":...,"globalUserId":`
    meta: Vec<u8>,                  // `,"__meta":{"source":...,"row":`
    tiers: Vec<Tier>,
    tier_names_json: Vec<Vec<u8>>,
    // Per band: its name as a CSV cell (quoted when it holds a comma, quote or line break).
    band_cells: Vec<String>,
    // Per band: its name needs CSV quoting (a rejected row's line goes through the csv module).
    band_needs_quoting: Vec<bool>,
    band_state: State,
    dedupe_state: State,
    // Per NANP region, in phonenumbers' order: leading digits, (general, number types).
    nanp: Option<Vec<(Option<Regex>, Option<(Regex, Regex)>)>>,
    // Every national number length a NANP number type takes (None: the kernel leaves phones
    // outside the NANP shapes to phonenumbers).
    nanp_lengths: Option<Vec<usize>>,
    // Per calling code (index): known to phonenumbers; its table once Python has given it.
    calling_codes: Vec<bool>,
    countries: Vec<OnceLock<Option<Country>>>,
    home_calling_code: u16,
    allow_intl: bool,
    special_tlds: HashSet<String>,
    special_dotted: Vec<String>,
    blocked: HashSet<String>,
    allowed: HashSet<String>,
    blacklist: HashSet<String>,
    tag_texts: Vec<String>,
    tag_lists: Vec<Vec<u8>>,
    max_record_bytes: usize,
}

fn compile(pattern: &str) -> PyResult<Regex> {
    Regex::new(pattern).map_err(|e| PyValueError::new_err(format!("pattern {pattern:?}: {e}")))
}

#[pymethods]
impl Kernel {
    #[new]
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (
        width, i_gid, i_email, i_phone, i_score, i_confirmed, optional, extras, record_type,
        campaign_id, source_uri, tiers, no_band, band_key, dedupe_prefix, nanp, nanp_lengths,
        calling_codes, home_calling_code, allow_intl,
        special_tlds, special_dotted, blocked, allowed, blacklist, tag_names, max_record_bytes
    ))]
    fn new(
        width: usize,
        i_gid: usize,
        i_email: usize,
        i_phone: usize,
        i_score: usize,
        i_confirmed: Option<usize>,
        optional: Vec<(String, Option<usize>)>,
        extras: Vec<(String, usize)>,
        record_type: &str,
        campaign_id: &str,
        source_uri: &str,
        tiers: Vec<(String, f64, f64)>,
        no_band: String,
        band_key: &[u8],
        dedupe_prefix: &[u8],
        nanp: Option<Vec<(Option<String>, Option<(String, String)>)>>,
        nanp_lengths: Option<Vec<usize>>,
        calling_codes: Vec<u16>,
        home_calling_code: u16,
        allow_intl: bool,
        special_tlds: HashSet<String>,
        special_dotted: Vec<String>,
        blocked: HashSet<String>,
        allowed: HashSet<String>,
        blacklist: HashSet<String>,
        tag_names: Vec<String>,
        max_record_bytes: usize,
    ) -> PyResult<Self> {
        if tag_names.len() != 4 {
            return Err(PyValueError::new_err("tag_names: four tags expected"));
        }
        if band_key.is_empty() || band_key.len() > 64 {
            return Err(PyValueError::new_err("band_key: 1 to 64 bytes expected"));
        }
        let key = |name: &str| {
            let mut s = vec![b','];
            json_str(name, &mut s);
            s.push(b':');
            s
        };
        let mut present = Vec::new();
        let mut absent = Vec::new();
        for (name, position) in &optional {
            if let Some(p) = position {
                present.push((key(name), *p));
            }
        }
        for (name, position) in &optional {
            if position.is_none() {
                absent.extend_from_slice(&key(name));
                absent.extend_from_slice(b"null");
            }
        }
        let extras: Vec<(Vec<u8>, usize)> = extras
            .iter()
            .map(|(name, position)| (key(name), *position))
            .collect();
        let mut head = b"{\"type\":".to_vec();
        json_str(record_type, &mut head);
        head.extend_from_slice(b",\"campaignId\":");
        json_str(campaign_id, &mut head);
        head.extend_from_slice(b",\"globalUserId\":");
        let mut meta = b",\"__meta\":{\"source\":".to_vec();
        json_str(source_uri, &mut meta);
        meta.extend_from_slice(b",\"row\":");
        let tiers: Vec<Tier> = tiers
            .into_iter()
            .map(|(name, low, high)| Tier { name, low, high })
            .collect();
        let mut band_names: Vec<String> = tiers.iter().map(|t| t.name.clone()).collect();
        band_names.push(no_band);
        let tier_names_json = band_names
            .iter()
            .map(|n| {
                let mut s = Vec::new();
                json_str(n, &mut s);
                s
            })
            .collect();
        let band_needs_quoting: Vec<bool> = band_names
            .iter()
            .map(|n| n.bytes().any(|b| matches!(b, b'"' | b',' | b'\r' | b'\n')))
            .collect();
        let band_cells = band_names
            .iter()
            .zip(&band_needs_quoting)
            .map(|(n, &quote)| {
                if quote {
                    format!("\"{}\"", n.replace('"', "\"\""))
                } else {
                    n.clone()
                }
            })
            .collect();
        let nanp = match nanp {
            None => None,
            Some(regions) => {
                let mut compiled = Vec::with_capacity(regions.len());
                for (leading, valid) in regions {
                    let leading = match leading {
                        Some(p) => Some(compile(&format!("^(?:{p})"))?),
                        None => None,
                    };
                    let valid = match valid {
                        Some((general, types)) => Some((
                            compile(&format!("^(?:{general})$"))?,
                            compile(&format!("^(?:{types})$"))?,
                        )),
                        None => None,
                    };
                    compiled.push((leading, valid));
                }
                Some(compiled)
            }
        };
        let tag_texts = (0..16)
            .map(|m| selected(&tag_names, m).join("|"))
            .collect::<Vec<String>>();
        let tag_lists = (0..16)
            .map(|m| {
                let mut s = vec![b'['];
                for (i, tag) in selected(&tag_names, m).iter().enumerate() {
                    if i > 0 {
                        s.push(b',');
                    }
                    json_str(tag, &mut s);
                }
                s.push(b']');
                s
            })
            .collect();
        Ok(Kernel {
            width,
            i_gid,
            i_email,
            i_phone,
            i_score,
            i_confirmed,
            present,
            extras,
            absent,
            head,
            meta,
            tiers,
            tier_names_json,
            band_cells,
            band_needs_quoting,
            band_state: Params::new().hash_length(8).key(band_key).to_state(),
            dedupe_state: {
                let mut state = Params::new().hash_length(16).to_state();
                state.update(dedupe_prefix);
                state
            },
            nanp,
            nanp_lengths,
            calling_codes: {
                let mut known = vec![false; 1000];
                for code in calling_codes {
                    if let Some(slot) = known.get_mut(usize::from(code)) {
                        *slot = true;
                    }
                }
                known
            },
            countries: (0..1000).map(|_| OnceLock::new()).collect(),
            home_calling_code,
            allow_intl,
            special_tlds,
            special_dotted,
            blocked,
            allowed,
            blacklist,
            tag_texts,
            tag_lists,
            max_record_bytes,
        })
    }

    /// The chunk's lines (`data`, joined with '\n'; the lines at `overlong` offsets are handed
    /// back): (csv, cuts, keys, payloads, record rows, tag counts, tagged, band counts,
    /// [rows rejected for a blocked domain, for a blacklisted address]).
    #[allow(clippy::type_complexity)]
    fn run<'py>(
        &self,
        py: Python<'py>,
        data: &[u8],
        first_row: i64,
        overlong: Vec<usize>,
    ) -> PyResult<(
        Bound<'py, PyBytes>,
        Vec<Cut>,
        Bound<'py, PyList>,
        Bound<'py, PyList>,
        Vec<i64>,
        [u64; 4],
        u64,
        Vec<u64>,
        [u64; 3],
        Vec<u16>,
    )> {
        let mut out = Out {
            bands: vec![0; self.band_cells.len()],
            csv: Vec::with_capacity(data.len() + data.len() / 2),
            records: Vec::with_capacity(data.len() * 4),
            ..Out::default()
        };
        let mut run_start: Option<(usize, usize)> = None; // (line, byte) of the open handback
        let mut offset = 0usize;
        let mut position = 0usize;
        let mut cells: Vec<&str> = Vec::with_capacity(self.width);
        for raw in data.split(|b| *b == b'\n') {
            let before = out.csv.len();
            let decided = !overlong.contains(&offset)
                && match std::str::from_utf8(raw) {
                    Ok(line) => self.row(line, first_row + offset as i64, &mut cells, &mut out),
                    Err(_) => false,
                };
            match (decided, run_start) {
                (false, None) => run_start = Some((offset, position)),
                (true, Some((line, byte))) => {
                    out.cuts.push((before, line, offset, byte, position - 1));
                    run_start = None;
                }
                _ => {}
            }
            offset += 1;
            position += raw.len() + 1;
        }
        if let Some((line, byte)) = run_start {
            out.cuts
                .push((out.csv.len(), line, offset, byte, position - 1));
        }
        let keys = PyList::new(py, out.keys.iter().map(|k| PyString::new(py, k)))?;
        let mut start = 0;
        let payloads = PyList::new(
            py,
            out.record_ends.iter().map(|end| {
                let payload = PyBytes::new(py, &out.records[start..*end]);
                start = *end;
                payload
            }),
        )?;
        Ok((
            PyBytes::new(py, &out.csv),
            out.cuts,
            keys,
            payloads,
            out.rows,
            out.tags,
            out.tagged,
            out.bands,
            out.rejected,
            out.wanted,
        ))
    }

    /// Gives the kernel a calling code's table (None: it hands such numbers back for good):
    /// the main region's national prefix for parsing, then per region in phonenumbers'
    /// order its code, leading digits, general description and number types, each a
    /// (national number pattern, possible lengths).
    #[allow(clippy::type_complexity)]
    fn add_country(
        &self,
        calling_code: u16,
        table: Option<(
            Option<String>,
            Vec<(
                String,
                Option<String>,
                Option<(String, Vec<usize>)>,
                Vec<(String, Vec<usize>)>,
            )>,
        )>,
    ) {
        let Some(slot) = self.countries.get(usize::from(calling_code)) else {
            return;
        };
        let country = table.and_then(|(prefix, regions)| {
            let desc = |(pattern, lengths): (String, Vec<usize>)| -> Option<Desc> {
                Some(Desc {
                    pattern: Regex::new(&format!("^(?:{pattern})$")).ok()?,
                    lengths,
                })
            };
            let prefix = match prefix {
                Some(p) => Some(Regex::new(&format!("^(?:{p})")).ok()?),
                None => None,
            };
            let mut compiled = Vec::with_capacity(regions.len());
            for (code, leading, general, types) in regions {
                compiled.push(Region {
                    code,
                    leading: match leading {
                        Some(p) => Some(Regex::new(&format!("^(?:{p})")).ok()?),
                        None => None,
                    },
                    general: match general {
                        Some(g) => Some(desc(g)?),
                        None => None,
                    },
                    types: types.into_iter().map(desc).collect::<Option<Vec<Desc>>>()?,
                });
            }
            Some(Country {
                prefix,
                regions: compiled,
            })
        });
        let _ = slot.set(country);
    }
}

fn is_sep(b: u8) -> bool {
    matches!(b, b' ' | b'.' | b'-')
}

/// The NANP shapes of domain/scoring/phones.py's _NANP_SHAPE (ASCII digits only: Python's \d
/// also takes other digits, which are handed back), as the 10-digit number. Deterministic:
/// the prefix starts with '+' or '1', the area code with '(' or 2-9, so no backtracking.
fn nanp_shape(s: &[u8]) -> Option<[u8; 10]> {
    let mut i = 0;
    let at = |i: usize| s.get(i).copied();
    match at(0) {
        Some(b'+') => {
            if at(1) != Some(b'1') {
                return None;
            }
            i = 2;
            if at(i).is_some_and(is_sep) {
                i += 1;
            }
        }
        Some(b'1') => {
            i = 1;
            if at(i).is_some_and(is_sep) {
                i += 1;
            }
        }
        _ => {}
    }
    let mut out = [0u8; 10];
    let parens = at(i) == Some(b'(');
    if parens {
        i += 1;
    }
    for k in 0..3 {
        let d = at(i + k)?;
        if !(d.is_ascii_digit() && (k > 0 || d >= b'2')) {
            return None;
        }
        out[k] = d;
    }
    i += 3;
    if parens {
        if at(i) != Some(b')') {
            return None;
        }
        i += 1;
    }
    if at(i).is_some_and(is_sep) {
        i += 1;
    }
    for k in 3..6 {
        out[k] = at(i).filter(u8::is_ascii_digit)?;
        i += 1;
    }
    if at(i).is_some_and(is_sep) {
        i += 1;
    }
    for k in 6..10 {
        out[k] = at(i).filter(u8::is_ascii_digit)?;
        i += 1;
    }
    (i == s.len()).then_some(out)
}

fn is_atext(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+/=?^_`{|}~-".contains(&b)
}

/// The '@' position when `s` matches domain/scoring/emails.py's _FAST_EMAIL: a dot-atom local
/// part, labels of letters and digits joined by single dashes, an alphabetic TLD of 2-63.
fn plain_email(s: &[u8]) -> Option<usize> {
    let at = s.iter().position(|b| *b == b'@')?;
    let local = &s[..at];
    if local
        .split(|b| *b == b'.')
        .any(|atom| atom.is_empty() || !atom.iter().all(|b| is_atext(*b)))
    {
        return None;
    }
    let domain = &s[at + 1..];
    let dot = domain.iter().rposition(|b| *b == b'.')?;
    let tld = &domain[dot + 1..];
    if !(2..=63).contains(&tld.len()) || !tld.iter().all(u8::is_ascii_alphabetic) {
        return None;
    }
    let mut rest = domain[..dot].split(|b| *b == b'.');
    let label_ok = |l: &[u8]| {
        !l.is_empty()
            && l.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'-')
            && l[0] != b'-'
            && l[l.len() - 1] != b'-'
            && !l.windows(2).any(|w| w == b"--")
    };
    rest.all(label_ok).then_some(at)
}

fn selected(tag_names: &[String], mask: usize) -> Vec<&str> {
    [INTL, INVALID_PHONE, UNCONFIRMED, INVALID_EMAIL]
        .iter()
        .zip(tag_names)
        .filter(|(bit, _)| mask & **bit != 0)
        .map(|(_, name)| name.as_str())
        .collect()
}

impl Kernel {
    /// Decides one line (its CSV line, and its record when accepted, into `out`), or false:
    /// hand it back.
    fn row<'a>(
        &self,
        line: &'a str,
        row: i64,
        cells: &mut Vec<&'a str>,
        out: &mut Out<'a>,
    ) -> bool {
        let line = line.strip_suffix('\r').unwrap_or(line);
        // A quote, comma or CR in a cell needs the csv module's quoting.
        if line.bytes().any(|b| b == b'"' || b == b',' || b == b'\r') {
            return false;
        }
        cells.clear();
        // Split on the tab byte (an ASCII byte is never inside a UTF-8 sequence).
        let mut start = 0;
        for (i, b) in line.bytes().enumerate() {
            if b == b'\t' {
                cells.push(py_strip(&line[start..i]));
                start = i + 1;
            }
        }
        cells.push(py_strip(&line[start..]));
        if cells.len() != self.width {
            return false;
        }
        let gid = cells[self.i_gid];
        if gid.is_empty() {
            return false;
        }
        let score_text = cells[self.i_score];
        if !is_plain_number(score_text.as_bytes(), false) {
            return false;
        }
        let score = match score_text.parse::<f64>() {
            Ok(s) if (0.0..=1.0).contains(&s) => s + 0.0,
            _ => return false,
        };
        let mut bits = 0;
        let mut region = "";
        let phone = cells[self.i_phone];
        let e164 = if phone.is_empty() {
            bits |= INVALID_PHONE;
            None
        } else {
            match self.nanp_phone(phone) {
                Some(e164) => {
                    if e164.is_none() {
                        bits |= INVALID_PHONE;
                    }
                    e164
                }
                None if phone.starts_with('+') => match self.plus_phone(phone) {
                    Plus::Valid(code, found, e164) => {
                        if code != self.home_calling_code {
                            bits |= INTL;
                            region = found;
                        }
                        Some(e164)
                    }
                    Plus::Invalid => {
                        bits |= INVALID_PHONE;
                        None
                    }
                    Plus::Unknown(wanted) => {
                        if let Some(code) = wanted {
                            if !out.wanted.contains(&code) {
                                out.wanted.push(code);
                            }
                        }
                        return false;
                    }
                },
                None if self.surely_invalid_phone(phone) => {
                    bits |= INVALID_PHONE;
                    None
                }
                None => return false,
            }
        };
        let confirmed = match self.i_confirmed {
            None => false,
            Some(i) => {
                let cell = cells[i];
                if !cell.is_ascii() {
                    return false;
                }
                CONFIRMED_VALUES
                    .iter()
                    .any(|v| cell.eq_ignore_ascii_case(v))
            }
        };
        if !phone.is_empty() && !confirmed {
            bits |= UNCONFIRMED;
        }
        let email = cells[self.i_email];
        let rejection = if email.is_empty() {
            bits |= INVALID_EMAIL;
            None
        } else {
            match self.email(email, &mut out.lower) {
                Some((verdict, rejection)) => {
                    if let EmailVerdict::Invalid = verdict {
                        bits |= INVALID_EMAIL;
                    }
                    rejection
                }
                None => return false,
            }
        };
        let rejection =
            rejection.or_else(|| (bits & INTL != 0 && !self.allow_intl).then_some(Rejection::Intl));
        let (tier, band_score) = self.band(score, gid);
        let r = Row {
            tier,
            band_score: Float::of(band_score),
            score: Float::of(score),
            e164,
            region,
            confirmed,
            bits,
            cells,
        };
        let csv_start = out.csv.len();
        if let Some(rejection) = rejection {
            if self.band_needs_quoting[tier] {
                return false; // the rejected line goes through the csv module
            }
            let index = match rejection {
                Rejection::Blocked(from, to) => {
                    let reason = format!(
                        "blocked_domain: email domain {} is blocked",
                        &out.lower[from..to]
                    );
                    self.csv_line(&r, row, Some(&reason), &mut out.csv);
                    0
                }
                Rejection::Blacklisted => {
                    let reason = "blacklisted_email: email is on the blacklist";
                    self.csv_line(&r, row, Some(reason), &mut out.csv);
                    1
                }
                Rejection::Intl => {
                    let reason = format!("intl_phone: phone is international ({})", r.region);
                    self.csv_line(&r, row, Some(&reason), &mut out.csv);
                    2
                }
            };
            if out.csv.len() == csv_start {
                return false;
            }
            out.rejected[index] += 1;
            return true;
        }
        let record_start = out.records.len();
        self.record(&r, row, &mut out.records);
        if out.records.len() - record_start > self.max_record_bytes {
            out.records.truncate(record_start);
            return false;
        }
        self.csv_line(&r, row, None, &mut out.csv);
        if out.csv.len() == csv_start {
            out.records.truncate(record_start);
            return false;
        }
        out.record_ends.push(out.records.len());
        out.keys.push(gid);
        out.rows.push(row);
        for (i, bit) in [INTL, INVALID_PHONE, UNCONFIRMED, INVALID_EMAIL]
            .iter()
            .enumerate()
        {
            if bits & bit != 0 {
                out.tags[i] += 1;
            }
        }
        out.tagged += u64::from(bits != 0);
        out.bands[tier] += 1;
        true
    }

    /// (tier index, band score) as BandScale.band_for computes them; index len(tiers): none.
    fn band(&self, score: f64, gid: &str) -> (usize, f64) {
        for (index, tier) in self.tiers.iter().enumerate() {
            if score >= tier.low {
                let mut state = self.band_state.clone();
                state.update(gid.as_bytes());
                let digest = state.finalize();
                let draw = u64::from_be_bytes(digest.as_bytes().try_into().expect("8 bytes"));
                let unit = (draw >> 11) as f64 * U_SCALE;
                let mut value = tier.low + unit * (tier.high - tier.low);
                if value >= tier.high {
                    value = f64::from_bits(tier.high.to_bits() - 1); // nextafter toward low
                }
                return (index, value);
            }
        }
        (self.tiers.len(), score)
    }

    /// For a NANP shape (a domestic number where the home region parses like the US):
    /// Some("+1" and the number) when valid, Some(None) when not, as
    /// phones.nanp_region_and_validity decides; None: ask phonenumbers (through Python).
    fn nanp_phone(&self, phone: &str) -> Option<Option<E164>> {
        let regions = self.nanp.as_ref()?;
        let digits = nanp_shape(phone.as_bytes())?;
        let nsn = std::str::from_utf8(&digits).ok()?;
        let valid_in = |v: &Option<(Regex, Regex)>| {
            v.as_ref()
                .is_some_and(|(general, types)| general.is_match(nsn) && types.is_match(nsn))
        };
        let mut valid = false;
        for (leading, patterns) in regions {
            match leading {
                Some(leading) if leading.is_match(nsn) => {
                    valid = valid_in(patterns);
                    break;
                }
                Some(_) => {}
                None if valid_in(patterns) => {
                    valid = true;
                    break;
                }
                None => {}
            }
        }
        Some(valid.then(|| E164::new(b"1", &digits)))
    }

    /// A phone written '+', digits, single spaces or dashes between digits, as phonenumbers
    /// parses and validates it: the calling code is the first 1-3 digits phonenumbers knows
    /// (none, or a leading '0': not a number), the rest the national number (under 2 or over
    /// 17 digits: not a number); one its main region's national prefix could be stripped from
    /// is handed back; validity per region as `region_code_for_number` + `is_valid_number`.
    fn plus_phone(&self, phone: &str) -> Plus<'_> {
        let bytes = phone.as_bytes();
        let mut digits = [0u8; 24];
        let mut n = 0;
        let mut last_digit = true; // the '+' counts as a digit: no separator right after it
        for (i, b) in bytes.iter().enumerate().skip(1) {
            match b {
                b'0'..=b'9' => {
                    if n == digits.len() {
                        return Plus::Unknown(None);
                    }
                    digits[n] = *b;
                    n += 1;
                    last_digit = true;
                }
                b' ' | b'-' if last_digit && i > 1 => last_digit = false,
                _ => return Plus::Unknown(None),
            }
        }
        if !last_digit || n < 3 {
            return if last_digit {
                Plus::Invalid
            } else {
                Plus::Unknown(None)
            };
        }
        let digits = &digits[..n];
        if digits[0] == b'0' {
            return Plus::Invalid;
        }
        let Some(cc_len) = (1..=3).find(|&i| {
            let code = digits[..i]
                .iter()
                .fold(0usize, |c, d| c * 10 + usize::from(d - b'0'));
            self.calling_codes[code]
        }) else {
            return Plus::Invalid;
        };
        let code = digits[..cc_len]
            .iter()
            .fold(0u16, |c, d| c * 10 + u16::from(d - b'0'));
        let nsn = std::str::from_utf8(&digits[cc_len..]).expect("ASCII digits");
        if nsn.len() < 2 || nsn.len() > 17 {
            return Plus::Invalid;
        }
        let Some(country) = self.countries[usize::from(code)].get() else {
            return Plus::Unknown(Some(code));
        };
        let Some(country) = country else {
            return Plus::Unknown(None);
        };
        if country.prefix.as_ref().is_some_and(|p| p.is_match(nsn)) {
            return Plus::Unknown(None);
        }
        let region = if country.regions.len() == 1 {
            country.regions.first()
        } else {
            country.regions.iter().find(|r| match &r.leading {
                Some(leading) => leading.is_match(nsn),
                None => r.valid(nsn),
            })
        };
        match region {
            Some(region) if region.valid(nsn) => Plus::Valid(
                code,
                &region.code,
                E164::new(&digits[..cc_len], nsn.as_bytes()),
            ),
            _ => Plus::Invalid,
        }
    }

    /// True when phonenumbers surely finds `phone` (trimmed, not a NANP shape) no valid
    /// number: ASCII without a digit (not a number at all, in any region); or, where the home
    /// region parses like the US, only digits and ` .-()`, not starting with '0' (an
    /// international prefix) and neither its digit count nor that less a leading '1' (the
    /// national prefix) a length any NANP number type takes (`555-1234` is one: a Canadian
    /// UAN is 7 digits).
    fn surely_invalid_phone(&self, phone: &str) -> bool {
        let bytes = phone.as_bytes();
        if !phone.is_ascii() {
            return false;
        }
        let digits = bytes.iter().filter(|b| b.is_ascii_digit()).count();
        if digits == 0 {
            return true;
        }
        let Some(lengths) = &self.nanp_lengths else {
            return false;
        };
        if !bytes
            .iter()
            .all(|b| b.is_ascii_digit() || matches!(b, b' ' | b'.' | b'-' | b'(' | b')'))
        {
            return false;
        }
        let first = bytes.iter().find(|b| b.is_ascii_digit()).copied();
        if first == Some(b'0') {
            return false;
        }
        let stripped = if first == Some(b'1') {
            digits - 1
        } else {
            digits
        };
        !lengths.contains(&digits) && !lengths.contains(&stripped)
    }

    /// A non-empty email's verdict and the rejection its domain or the blacklist makes, or
    /// None: email-validator decides (through the Python transform). `lower` gets the address
    /// lowercased (what the blacklist and the blocked domains compare, for ASCII).
    fn email(&self, email: &str, lower: &mut String) -> Option<(EmailVerdict, Option<Rejection>)> {
        if !email.is_ascii() {
            return None;
        }
        lower.clear();
        lower.push_str(email);
        lower.make_ascii_lowercase();
        let verdict = match plain_email(email.as_bytes()) {
            Some(at) => {
                if email.len() > ADDRESS_MAX || at > LOCAL_MAX {
                    return None;
                }
                let domain = &lower[at + 1..];
                let tld = domain.rsplit('.').next().unwrap_or("");
                if self.special_tlds.contains(tld)
                    || (domain.len() > LABEL_MAX && domain.split('.').any(|l| l.len() > LABEL_MAX))
                    || self.special_dotted.iter().any(|d| {
                        domain == d
                            || (domain.len() > d.len()
                                && domain.ends_with(d.as_str())
                                && domain.as_bytes()[domain.len() - d.len() - 1] == b'.')
                    })
                {
                    return None;
                }
                EmailVerdict::Valid
            }
            None if surely_invalid_email(email.as_bytes()) => EmailVerdict::Invalid,
            None => return None,
        };
        let rejection = if self.blacklist.contains(lower.as_str()) {
            Some(Rejection::Blacklisted)
        } else {
            // domain_of: after the last '@'; none, or empty: no domain to block.
            let from = lower.rfind('@').map_or(lower.len(), |at| at + 1);
            let domain = &lower[from..];
            let blocked = !domain.is_empty() && {
                let mut suffixes = std::iter::once(domain)
                    .chain(domain.match_indices('.').map(|(i, _)| &domain[i + 1..]));
                let allowed = suffixes.clone().any(|s| self.allowed.contains(s));
                !allowed && suffixes.any(|s| self.blocked.contains(s))
            };
            blocked.then_some(Rejection::Blocked(from, lower.len()))
        };
        Some((verdict, rejection))
    }

    fn record(&self, r: &Row, row: i64, out: &mut Vec<u8>) {
        let cells = r.cells;
        out.extend_from_slice(&self.head);
        json_str(cells[self.i_gid], out);
        out.extend_from_slice(b",\"email\":");
        json_str(cells[self.i_email], out);
        out.extend_from_slice(b",\"phone\":");
        match &r.e164 {
            Some(e164) => {
                out.push(b'"');
                out.extend_from_slice(e164.as_bytes());
                out.push(b'"');
            }
            None => json_str(cells[self.i_phone], out),
        }
        out.extend_from_slice(if r.confirmed {
            b",\"phoneConfirmed\":true"
        } else {
            b",\"phoneConfirmed\":false"
        });
        out.extend_from_slice(b",\"score\":");
        r.score.json(out);
        out.extend_from_slice(b",\"band\":");
        out.extend_from_slice(&self.tier_names_json[r.tier]);
        out.extend_from_slice(b",\"band_score\":");
        r.band_score.json(out);
        out.extend_from_slice(b",\"tags\":");
        out.extend_from_slice(&self.tag_lists[r.bits]);
        out.extend_from_slice(b",\"verdict\":true,\"dedupeId\":\"");
        // BLAKE2b of gid, 0x1f, repr(score): fed in pieces, the same digest as one buffer.
        let mut state = self.dedupe_state.clone();
        state.update(cells[self.i_gid].as_bytes());
        state.update(b"\x1f");
        let repr_at = out.len(); // repr(score) written in place, hashed, then replaced
        r.score.py_repr(out);
        state.update(&out[repr_at..]);
        out.truncate(repr_at);
        out.extend_from_slice(state.finalize().to_hex().as_bytes());
        out.push(b'"');
        for (key, position) in &self.present {
            out.extend_from_slice(key);
            json_str(cells[*position], out);
        }
        out.extend_from_slice(&self.absent);
        for (key, position) in &self.extras {
            out.extend_from_slice(key);
            json_str(cells[*position], out);
        }
        out.extend_from_slice(&self.meta);
        push_i64(row, out);
        out.extend_from_slice(b"}}");
    }

    /// The row's CSV line (accepted when `reason` is None) appended to `csv`; nothing appended
    /// when a cell needs a decision left to Python.
    fn csv_line(&self, r: &Row, row: i64, reason: Option<&str>, csv: &mut Vec<u8>) {
        let start = csv.len();
        push_i64(row, csv);
        match reason {
            None => csv.extend_from_slice(b",true,,"),
            Some(reason) => {
                csv.extend_from_slice(b",false,");
                csv.extend_from_slice(reason.as_bytes());
                csv.push(b',');
            }
        }
        csv.extend_from_slice(self.tag_texts[r.bits].as_bytes());
        csv.push(b',');
        csv.extend_from_slice(self.band_cells[r.tier].as_bytes());
        csv.push(b',');
        r.band_score.py_repr(csv);
        csv.push(b',');
        if let Some(e164) = &r.e164 {
            csv.extend_from_slice(e164.as_bytes());
        }
        for cell in r.cells {
            csv.push(b',');
            match cell.as_bytes().first() {
                Some(b'=' | b'@') => csv.push(b'\''),
                Some(b'+' | b'-') => {
                    if !cell.is_ascii() {
                        csv.truncate(start); // Python's \d takes any Unicode digit
                        return;
                    }
                    if !is_plain_number(cell.as_bytes(), true) {
                        csv.push(b'\'');
                    }
                }
                _ => {}
            }
            csv.extend_from_slice(cell.as_bytes());
        }
        csv.extend_from_slice(b",\r\n");
    }
}

/// True when email-validator surely refuses `email` (ASCII, not empty, trimmed): no quote,
/// angle bracket or backslash (quoted local parts and display names are the library's), at
/// most one '@', and: no '@' at all, nothing before or after it, or a space before it.
fn surely_invalid_email(email: &[u8]) -> bool {
    if email
        .iter()
        .any(|b| matches!(b, b'"' | b'<' | b'>' | b'\\'))
    {
        return false;
    }
    let mut ats = email.iter().enumerate().filter(|(_, b)| **b == b'@');
    match (ats.next(), ats.next()) {
        (None, _) => true,
        (Some((at, _)), None) => at == 0 || at == email.len() - 1 || email[..at].contains(&b' '),
        _ => false,
    }
}

#[pyfunction]
fn py_float_repr(x: f64) -> String {
    let mut s = Vec::new();
    Float::of(x).py_repr(&mut s);
    String::from_utf8(s).expect("ASCII")
}

#[pyfunction]
fn orjson_float(x: f64) -> String {
    let mut s = Vec::new();
    Float::of(x).json(&mut s);
    String::from_utf8(s).expect("ASCII")
}

#[pyfunction]
fn json_string(s: &str) -> String {
    let mut out = Vec::new();
    json_str(s, &mut out);
    String::from_utf8(out).expect("JSON of a str is UTF-8")
}

#[pyfunction]
fn strip(s: &str) -> &str {
    py_strip(s)
}

#[pymodule]
fn scoring_kernel(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Kernel>()?;
    m.add_class::<avro_fans::ScoringPlan>()?;
    m.add_function(wrap_pyfunction!(py_float_repr, m)?)?;
    m.add_function(wrap_pyfunction!(orjson_float, m)?)?;
    m.add_function(wrap_pyfunction!(json_string, m)?)?;
    m.add_function(wrap_pyfunction!(strip, m)?)?;
    Ok(())
}
