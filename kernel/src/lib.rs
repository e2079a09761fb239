//! The scored-file transform's common case, compiled (docs/kernel.md).
//!
//! `Kernel::run` reads a chunk's lines and decides the rows it can decide exactly as the Python
//! transform (domain/scoring/transform.py) would: accepted rows whose phone is empty or a valid
//! number of the first NANP region, whose email is empty or plain ASCII, whose cells need no CSV
//! quoting. It writes their CSV lines and stream records (orjson's bytes) and hands every other
//! row back, as runs of consecutive lines, for the Python transform to do. A differential
//! property test (tests/property/test_row_kernel.py) holds the two to the same bytes.

// Index loops mirror the shape regex's fixed digit positions; the NANP table's type is spelled
// out where Python hands it over.
#![allow(clippy::needless_range_loop, clippy::type_complexity)]

use std::collections::HashSet;
use std::fmt::Write as _;

use blake2b_simd::{Params, State};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use regex::Regex;

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
fn is_py_space(c: char) -> bool {
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

/// The shortest round-trip digits of a finite `x >= 0` and the decimal exponent of the first.
fn shortest(x: f64) -> (String, i32) {
    let text = format!("{:e}", x);
    let (mantissa, exponent) = text.split_once('e').expect("LowerExp writes an exponent");
    (
        mantissa.replace('.', ""),
        exponent.parse().expect("an integer exponent"),
    )
}

/// `x` written in fixed or scientific notation from its shortest digits: fixed when
/// `low <= exponent < 16`; `pad` is the exponent's minimum digits.
fn float_text(x: f64, low: i32, pad: usize, out: &mut String) {
    if x.is_sign_negative() {
        out.push('-');
    }
    let x = x.abs();
    if x == 0.0 {
        out.push_str("0.0");
        return;
    }
    let (digits, exp) = shortest(x);
    if (low..16).contains(&exp) {
        if exp >= 0 {
            let int_len = exp as usize + 1;
            if digits.len() <= int_len {
                out.push_str(&digits);
                out.extend(std::iter::repeat_n('0', int_len - digits.len()));
                out.push_str(".0");
            } else {
                out.push_str(&digits[..int_len]);
                out.push('.');
                out.push_str(&digits[int_len..]);
            }
        } else {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', (-exp - 1) as usize));
            out.push_str(&digits);
        }
    } else {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        let _ = write!(out, "{:0width$}", exp.unsigned_abs(), width = pad);
    }
}

/// Python's repr(float).
fn py_repr(x: f64, out: &mut String) {
    float_text(x, -4, 2, out);
}

/// orjson's bytes for a float.
fn json_float(x: f64, out: &mut String) {
    float_text(x, -5, 1, out);
}

/// A JSON string as orjson writes it: only '"', '\\' and control characters escaped.
fn json_str(s: &str, out: &mut String) {
    out.push('"');
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let escape = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\x08' => "\\b",
            b'\t' => "\\t",
            b'\n' => "\\n",
            b'\x0c' => "\\f",
            b'\r' => "\\r",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if escape.is_empty() {
            let _ = write!(out, "\\u{:04x}", b);
        } else {
            out.push_str(escape);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// One handed-back run of lines: where its CSV goes in the kernel's CSV, its lines
/// [start, end) and its bytes [from, to) in the chunk's data.
type Cut = (usize, usize, usize, usize, usize);

#[derive(Default)]
struct Out {
    csv: Vec<u8>,
    cuts: Vec<Cut>,
    keys: Vec<String>,
    payloads: Vec<Vec<u8>>,
    rows: Vec<i64>,
    tags: [u64; 4],
    tagged: u64,
    bands: Vec<u64>,
}

/// A row the kernel decided: everything its CSV line and record need besides the cells.
struct Row<'a> {
    tier: usize,
    band_score: f64,
    score: f64,
    e164: String,
    confirmed: bool,
    bits: usize,
    cells: &'a [&'a str],
}

#[pyclass(frozen)]
struct Kernel {
    width: usize,
    i_gid: usize,
    i_email: usize,
    i_phone: usize,
    i_score: usize,
    i_confirmed: Option<usize>,
    present: Vec<(String, usize)>, // `,"name":` of the optional columns present, and position
    extras: Vec<(String, usize)>,  // the same of the pass-through columns
    absent: String,                // `,"name":null` of the absent optional columns
    head: String,                  // `{"type":...,"campaignId":...,"globalUserId":`
    meta: String,                  // `,"__meta":{"source":...,"row":`
    tiers: Vec<Tier>,
    tier_names_json: Vec<String>,
    band_names: Vec<String>,
    band_state: State,
    dedupe_state: State,
    // Per NANP region, in phonenumbers' order: leading digits, (general, number types).
    nanp: Option<Vec<(Option<Regex>, Option<(Regex, Regex)>)>>,
    plain_number: Regex,
    score_text: Regex,
    special_tlds: HashSet<String>,
    special_dotted: Vec<String>,
    blocked: HashSet<String>,
    allowed: HashSet<String>,
    blacklist: HashSet<String>,
    tag_texts: Vec<String>,
    tag_lists: Vec<String>,
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
        campaign_id, source_uri, tiers, no_band, band_key, dedupe_prefix, nanp,
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
            let mut s = String::from(",");
            json_str(name, &mut s);
            s.push(':');
            s
        };
        let mut present = Vec::new();
        let mut absent = String::new();
        for (name, position) in &optional {
            if let Some(p) = position {
                present.push((key(name), *p));
            }
        }
        for (name, position) in &optional {
            if position.is_none() {
                absent.push_str(&key(name));
                absent.push_str("null");
            }
        }
        let extras: Vec<(String, usize)> = extras
            .iter()
            .map(|(name, position)| (key(name), *position))
            .collect();
        let mut head = String::from("{\"type\":");
        json_str(record_type, &mut head);
        head.push_str(",\"campaignId\":");
        json_str(campaign_id, &mut head);
        head.push_str(",\"globalUserId\":");
        let mut meta = String::from(",\"__meta\":{\"source\":");
        json_str(source_uri, &mut meta);
        meta.push_str(",\"row\":");
        let tiers: Vec<Tier> = tiers
            .into_iter()
            .map(|(name, low, high)| Tier { name, low, high })
            .collect();
        let mut band_names: Vec<String> = tiers.iter().map(|t| t.name.clone()).collect();
        band_names.push(no_band);
        let tier_names_json = band_names
            .iter()
            .map(|n| {
                let mut s = String::new();
                json_str(n, &mut s);
                s
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
                let mut s = String::from("[");
                for (i, tag) in selected(&tag_names, m).iter().enumerate() {
                    if i > 0 {
                        s.push(',');
                    }
                    json_str(tag, &mut s);
                }
                s.push(']');
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
            band_names,
            band_state: Params::new().hash_length(8).key(band_key).to_state(),
            dedupe_state: {
                let mut state = Params::new().hash_length(16).to_state();
                state.update(dedupe_prefix);
                state
            },
            nanp,
            plain_number: compile(r"^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$")?,
            score_text: compile(r"^(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$")?,
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
    /// back): (csv, cuts, keys, payloads, record rows, tag counts, tagged, band counts).
    #[allow(clippy::type_complexity)]
    fn run<'py>(
        &self,
        py: Python<'py>,
        data: &[u8],
        first_row: i64,
        overlong: Vec<usize>,
    ) -> (
        Bound<'py, PyBytes>,
        Vec<Cut>,
        Vec<String>,
        Vec<Bound<'py, PyBytes>>,
        Vec<i64>,
        [u64; 4],
        u64,
        Vec<u64>,
    ) {
        let mut out = Out {
            bands: vec![0; self.band_names.len()],
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
        (
            PyBytes::new(py, &out.csv),
            out.cuts,
            out.keys,
            out.payloads.iter().map(|p| PyBytes::new(py, p)).collect(),
            out.rows,
            out.tags,
            out.tagged,
            out.bands,
        )
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
    /// Decides one line (its CSV line and record into `out`), or false: hand it back.
    fn row<'a>(&self, line: &'a str, row: i64, cells: &mut Vec<&'a str>, out: &mut Out) -> bool {
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
        if !self.score_text.is_match(score_text) {
            return false;
        }
        let score = match score_text.parse::<f64>() {
            Ok(s) if (0.0..=1.0).contains(&s) => s + 0.0,
            _ => return false,
        };
        let (tier, band_score) = self.band(score, gid);
        let mut bits = 0;
        let phone = cells[self.i_phone];
        let e164 = if phone.is_empty() {
            bits |= INVALID_PHONE;
            String::new()
        } else {
            match self.nanp_phone(phone) {
                Some(e164) => {
                    if e164.is_empty() {
                        bits |= INVALID_PHONE;
                    }
                    e164
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
        if email.is_empty() {
            bits |= INVALID_EMAIL;
        } else if !self.email_ok(email) {
            return false;
        }
        let row_facts = Row {
            tier,
            band_score,
            score,
            e164,
            confirmed,
            bits,
            cells,
        };
        let mut record = String::with_capacity(512);
        self.record(&row_facts, row, &mut record);
        if record.len() > self.max_record_bytes {
            return false;
        }
        let csv_start = out.csv.len();
        if !self.csv_line(&row_facts, row, &mut out.csv) {
            out.csv.truncate(csv_start);
            return false;
        }
        out.keys.push(gid.to_owned());
        out.payloads.push(record.into_bytes());
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

    /// For a NANP shape (a domestic number where the home region parses like the US): "+1" and
    /// the number when valid, "" when not, as phones.nanp_region_and_validity decides; None:
    /// ask phonenumbers (through the Python transform).
    fn nanp_phone(&self, phone: &str) -> Option<String> {
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
        Some(if valid {
            format!("+1{nsn}")
        } else {
            String::new()
        })
    }

    /// True when the fast path accepts `email` and no block or blacklist applies to it.
    fn email_ok(&self, email: &str) -> bool {
        let Some(at) = plain_email(email.as_bytes()) else {
            return false;
        };
        if email.len() > ADDRESS_MAX || at > LOCAL_MAX {
            return false;
        }
        let domain = email[at + 1..].to_ascii_lowercase();
        let tld = domain.rsplit('.').next().unwrap_or("");
        if self.special_tlds.contains(tld) {
            return false;
        }
        if domain.len() > LABEL_MAX && domain.split('.').any(|l| l.len() > LABEL_MAX) {
            return false;
        }
        if self
            .special_dotted
            .iter()
            .any(|d| domain == *d || domain.ends_with(&format!(".{d}")))
        {
            return false;
        }
        // Blocked domains and the blacklist reject the row: the Python transform writes those.
        let suffixes: Vec<&str> = std::iter::once(domain.as_str())
            .chain(domain.match_indices('.').map(|(i, _)| &domain[i + 1..]))
            .collect();
        let allowed = suffixes.iter().any(|s| self.allowed.contains(*s));
        if !allowed && suffixes.iter().any(|s| self.blocked.contains(*s)) {
            return false;
        }
        !self.blacklist.contains(&email.to_ascii_lowercase())
    }

    fn record(&self, r: &Row, row: i64, out: &mut String) {
        let cells = r.cells;
        out.push_str(&self.head);
        json_str(cells[self.i_gid], out);
        out.push_str(",\"email\":");
        json_str(cells[self.i_email], out);
        out.push_str(",\"phone\":");
        json_str(
            if r.e164.is_empty() {
                cells[self.i_phone]
            } else {
                &r.e164
            },
            out,
        );
        out.push_str(if r.confirmed {
            ",\"phoneConfirmed\":true"
        } else {
            ",\"phoneConfirmed\":false"
        });
        out.push_str(",\"score\":");
        json_float(r.score, out);
        out.push_str(",\"band\":");
        out.push_str(&self.tier_names_json[r.tier]);
        out.push_str(",\"band_score\":");
        json_float(r.band_score, out);
        out.push_str(",\"tags\":");
        out.push_str(&self.tag_lists[r.bits]);
        out.push_str(",\"verdict\":true,\"dedupeId\":\"");
        let mut state = self.dedupe_state.clone();
        let mut material = String::with_capacity(cells[self.i_gid].len() + 24);
        material.push_str(cells[self.i_gid]);
        material.push('\x1f');
        py_repr(r.score, &mut material);
        state.update(material.as_bytes());
        out.push_str(&state.finalize().to_hex());
        out.push('"');
        for (key, position) in &self.present {
            out.push_str(key);
            json_str(cells[*position], out);
        }
        out.push_str(&self.absent);
        for (key, position) in &self.extras {
            out.push_str(key);
            json_str(cells[*position], out);
        }
        out.push_str(&self.meta);
        let _ = write!(out, "{row}}}}}");
    }

    /// The accepted row's CSV line; false when a cell needs a decision left to Python.
    fn csv_line(&self, r: &Row, row: i64, csv: &mut Vec<u8>) -> bool {
        let mut line = String::with_capacity(256);
        let _ = write!(
            line,
            "{row},true,,{},{},",
            self.tag_texts[r.bits], self.band_names[r.tier]
        );
        py_repr(r.band_score, &mut line);
        line.push(',');
        line.push_str(&r.e164);
        for cell in r.cells {
            line.push(',');
            match cell.as_bytes().first() {
                Some(b'=' | b'@') => line.push('\''),
                Some(b'+' | b'-') => {
                    if !cell.is_ascii() {
                        return false; // Python's \d takes any Unicode digit
                    }
                    if !self.plain_number.is_match(cell) {
                        line.push('\'');
                    }
                }
                _ => {}
            }
            line.push_str(cell);
        }
        line.push_str(",\r\n");
        csv.extend_from_slice(line.as_bytes());
        true
    }
}

#[pyfunction]
fn py_float_repr(x: f64) -> String {
    let mut s = String::new();
    py_repr(x, &mut s);
    s
}

#[pyfunction]
fn orjson_float(x: f64) -> String {
    let mut s = String::new();
    json_float(x, &mut s);
    s
}

#[pyfunction]
fn json_string(s: &str) -> String {
    let mut out = String::new();
    json_str(s, &mut out);
    out
}

#[pyfunction]
fn strip(s: &str) -> &str {
    py_strip(s)
}

#[pymodule]
fn scoring_kernel(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Kernel>()?;
    m.add_function(wrap_pyfunction!(py_float_repr, m)?)?;
    m.add_function(wrap_pyfunction!(orjson_float, m)?)?;
    m.add_function(wrap_pyfunction!(json_string, m)?)?;
    m.add_function(wrap_pyfunction!(strip, m)?)?;
    Ok(())
}
