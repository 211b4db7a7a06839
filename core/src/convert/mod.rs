//! JSON value -> Postgres value, driven by the type the user declared for the column. Works on
//! the JSON text of one field (as the page decoder found it), so a value is parsed once, straight
//! into what the column needs. Pure (it calls no Postgres, though it knows the layouts of
//! varlenas, jsonb and Datums): the result is a [`Cell`], or a row prepared as the bytes of its
//! Datums ([`prepare`]); the extension's `src/fdw/datum.rs` makes the Datums.

mod json_lex;
pub mod jsonb;
mod numeric;
pub mod prepare;
pub mod varlena;

use std::borrow::Cow;

/// The declared column types the conversion knows; anything else goes through the type's own
/// input function with the JSON scalar's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetType {
    Text,
    Int8,
    Int4,
    Int2,
    Float8,
    Float4,
    Bool,
    Json,
    Jsonb,
    Timestamptz,
    Timestamp,
    /// Any other type: its input function decides.
    Other,
}

/// A converted value, ready to become a Datum; text borrows from the page where it can.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell<'a> {
    Null,
    Text(Cow<'a, str>),
    Int(i64),
    Float(f64),
    Bool(bool),
    /// JSON text for a json or jsonb column.
    Json(&'a str),
    /// Microseconds since 2000-01-01 00:00 UTC (Postgres's timestamp representation).
    Timestamp(i64),
    /// Text for the declared type's input function.
    Input(Cow<'a, str>),
}

impl Cell<'_> {
    /// The same cell, owning its text.
    pub fn into_owned(self) -> Cell<'static> {
        match self {
            Cell::Null => Cell::Null,
            Cell::Text(t) => Cell::Text(Cow::Owned(t.into_owned())),
            Cell::Int(n) => Cell::Int(n),
            Cell::Float(f) => Cell::Float(f),
            Cell::Bool(b) => Cell::Bool(b),
            Cell::Json(j) => Cell::Input(Cow::Owned(j.to_string())),
            Cell::Timestamp(t) => Cell::Timestamp(t),
            Cell::Input(t) => Cell::Input(Cow::Owned(t.into_owned())),
        }
    }
}

/// Why a value could not become the declared type.
#[derive(Debug, Clone, PartialEq)]
pub struct ConvertError {
    /// The JSON type of the value: string, number, boolean, object, array.
    pub json_type: &'static str,
    pub problem: String,
    pub reason: Reason,
}

/// What kind of failure, which decides the SQLSTATE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// A JSON type the column's type cannot take at all (an object into an integer).
    WrongType,
    /// A value of the right kind that does not read as one (1.5 into an integer).
    BadValue,
    /// A value beyond the type's range: never clamped, never rounded.
    OutOfRange,
}

impl ConvertError {
    pub fn new(json_type: &'static str, reason: Reason, problem: impl Into<String>) -> ConvertError {
        ConvertError { json_type, problem: problem.into(), reason }
    }
}

/// The JSON text `keys` lead to from `value`: a column whose `path` reaches into an object, in
/// a scanned row and in a write's answer alike. None where a key is missing (a JSON null stays
/// `null`, which [`convert`] makes NULL).
pub fn text_below<'k>(value: &serde_json::Value, keys: impl IntoIterator<Item = &'k str>) -> Option<String> {
    keys.into_iter().try_fold(value, |v, key| v.get(key)).map(serde_json::Value::to_string)
}

/// The JSON type of a value from its text: object, array, string, boolean, null or number
/// (the first character decides; the text is known to be JSON).
pub fn json_type(raw: &str) -> &'static str {
    match raw.trim_start().as_bytes().first() {
        Some(b'{') => "object",
        Some(b'[') => "array",
        Some(b'"') => "string",
        Some(b't') | Some(b'f') => "boolean",
        Some(b'n') | None => "null",
        _ => "number",
    }
}

/// Microseconds between the Unix epoch and Postgres's epoch (2000-01-01).
const PG_EPOCH_OFFSET_US: i64 = 946_684_800_000_000;
/// Postgres's timestamp range, in microseconds since its epoch (4714-11-24 BC to 294277 AD).
const PG_TIMESTAMP_MIN_US: i64 = -211_813_488_000_000_000;
const PG_TIMESTAMP_END_US: i64 = 9_223_371_331_200_000_000;

/// Converts the JSON text `raw` of one field (`None`: the field is missing) for `target`.
pub fn convert(raw: Option<&str>, target: TargetType) -> Result<Cell<'_>, ConvertError> {
    let raw = match raw.map(str::trim) {
        None => return Ok(Cell::Null),
        Some(r) if json_type(r) == "null" => return Ok(Cell::Null),
        Some(r) => r,
    };
    let kind = json_type(raw);
    let fail = |reason: Reason, problem: &str| ConvertError::new(kind, reason, problem);
    Ok(match target {
        TargetType::Text => Cell::Text(scalar_text(raw)?),
        TargetType::Json | TargetType::Jsonb => Cell::Json(raw),
        TargetType::Int8 | TargetType::Int4 | TargetType::Int2 => {
            let n = integer(raw)?
                .ok_or_else(|| fail(if kind == "string" { Reason::BadValue } else { Reason::WrongType }, "is not a whole number"))?;
            let (lo, hi) = match target {
                TargetType::Int4 => (i32::MIN as i64, i32::MAX as i64),
                TargetType::Int2 => (i16::MIN as i64, i16::MAX as i64),
                _ => (i64::MIN, i64::MAX),
            };
            if n < lo || n > hi {
                return Err(fail(Reason::OutOfRange, &format!("{n} is out of range for the column's type")));
            }
            Cell::Int(n)
        }
        TargetType::Float8 | TargetType::Float4 => match kind {
            "number" | "string" => {
                Cell::Float(float(&scalar_text(raw)?, target == TargetType::Float4).map_err(|(reason, problem)| fail(reason, problem))?)
            }
            _ => return Err(fail(Reason::WrongType, "is not a number")),
        },
        TargetType::Bool => match (kind, scalar_text(raw)?.as_ref()) {
            ("boolean" | "string", "true") => Cell::Bool(true),
            ("boolean" | "string", "false") => Cell::Bool(false),
            ("string", _) => return Err(fail(Reason::BadValue, "is not true or false")),
            _ => return Err(fail(Reason::WrongType, "is not true or false")),
        },
        TargetType::Timestamptz | TargetType::Timestamp => match (kind, integer(raw)?) {
            // Epoch milliseconds, the API's time representation.
            (_, Some(ms)) => Cell::Timestamp(
                epoch_ms_to_pg_us(ms).ok_or_else(|| fail(Reason::OutOfRange, &format!("{ms} ms is out of range for a timestamp")))?,
            ),
            // An ISO 8601 string: the type's input function parses it.
            ("string", None) => Cell::Input(scalar_text(raw)?),
            _ => return Err(fail(Reason::WrongType, "is not epoch milliseconds or a timestamp string")),
        },
        TargetType::Other => Cell::Input(scalar_text(raw)?),
    })
}

/// Text of a value: strings unescaped (borrowed when they have no escapes), anything else as
/// its JSON text.
fn scalar_text(raw: &str) -> Result<Cow<'_, str>, ConvertError> {
    if json_type(raw) != "string" {
        return Ok(Cow::Borrowed(raw));
    }
    if raw.len() >= 2 && raw.ends_with('"') {
        let inner = &raw[1..raw.len() - 1];
        if !inner.contains('\\') {
            return Ok(Cow::Borrowed(inner));
        }
    }
    serde_json::from_str::<String>(raw)
        .map(Cow::Owned)
        .map_err(|e| ConvertError::new("string", Reason::BadValue, format!("is not a valid JSON string ({e})")))
}

/// A whole number from a JSON number or a numeric string (proto3 JSON writes int64 as strings),
/// exactly: `3.0` and `1e3` are whole, `1.5` and `1.0000000000000001` are errors, and a number
/// beyond bigint is out of range (never clamped, never rounded through a float). `Ok(None)`: not
/// a number at all.
fn integer(raw: &str) -> Result<Option<i64>, ConvertError> {
    let kind = json_type(raw);
    let text = match kind {
        "number" => Cow::Borrowed(raw),
        "string" => scalar_text(raw)?,
        _ => return Ok(None),
    };
    let text = text.trim();
    if let Ok(n) = text.parse::<i64>() {
        return Ok(Some(n));
    }
    let Some(decimal) = Decimal::parse(text) else { return Ok(None) };
    match decimal.integer() {
        Some(Ok(n)) => Ok(Some(n)),
        Some(Err(())) => Err(ConvertError::new(
            kind,
            Reason::OutOfRange,
            format!("{} is out of range for the column's type", crate::text::excerpt(text, 40)),
        )),
        None => Err(ConvertError::new(kind, Reason::BadValue, format!("{} is not a whole number", crate::text::excerpt(text, 40)))),
    }
}

/// A decimal number as written: `[-+]digits[.digits][e[-+]digits]`.
struct Decimal {
    negative: bool,
    /// Every digit, the integer part's and the fraction's, in order.
    digits: String,
    /// The power of ten of the last digit.
    exponent: i64,
}

impl Decimal {
    fn parse(text: &str) -> Option<Decimal> {
        let (negative, rest) = match text.as_bytes().first()? {
            b'-' => (true, &text[1..]),
            b'+' => (false, &text[1..]),
            _ => (false, text),
        };
        let (mantissa, exp) = match rest.find(['e', 'E']) {
            Some(i) => (&rest[..i], Some(&rest[i + 1..])),
            None => (rest, None),
        };
        let (int_part, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if int_part.is_empty() && frac.is_empty() || !all_digits(int_part) || !all_digits(frac) {
            return None;
        }
        let exponent = match exp {
            None => 0,
            Some(e) => {
                let digits = e.strip_prefix(['+', '-']).unwrap_or(e);
                if digits.is_empty() || !all_digits(digits) {
                    return None;
                }
                // Beyond any digit count a page can hold: saturate rather than overflow.
                e.parse::<i64>().unwrap_or(if e.starts_with('-') { i64::MIN / 2 } else { i64::MAX / 2 })
            }
        };
        Some(Decimal { negative, digits: format!("{int_part}{frac}"), exponent: exponent - frac.len() as i64 })
    }

    /// `None`: not whole; `Some(Err(()))`: whole but beyond bigint.
    fn integer(&self) -> Option<Result<i64, ()>> {
        let significant = self.digits.trim_start_matches('0');
        if significant.is_empty() {
            return Some(Ok(0));
        }
        let (kept, exponent) = if self.exponent < 0 {
            let cut = self.exponent.unsigned_abs().min(significant.len() as u64) as usize;
            let (kept, dropped) = significant.split_at(significant.len() - cut);
            if self.exponent.unsigned_abs() > significant.len() as u64 || dropped.bytes().any(|b| b != b'0') {
                return None;
            }
            (kept, 0)
        } else {
            (significant, self.exponent)
        };
        if kept.len() as i64 + exponent > 19 {
            return Some(Err(()));
        }
        let magnitude = format!("{kept}{}", "0".repeat(exponent as usize)).parse::<i128>().ok()?;
        let value = if self.negative { -magnitude } else { magnitude };
        Some(i64::try_from(value).map_err(|_| ()))
    }
}

/// A float from its text. A finite number too large for the type is out of range, as is a
/// non-zero one too small to be told from zero (Postgres's own input refuses both).
fn float(text: &str, single: bool) -> Result<f64, (Reason, &'static str)> {
    let text = text.trim();
    let f: f64 = text.parse().map_err(|_| (Reason::BadValue, "is not a number"))?;
    let written_as_number = Decimal::parse(text);
    let nonzero = written_as_number.as_ref().is_some_and(|d| d.digits.bytes().any(|b| b != b'0'));
    let narrowed = if single { f as f32 as f64 } else { f };
    if written_as_number.is_some() && (narrowed.is_infinite() || (narrowed == 0.0 && nonzero)) {
        return Err((Reason::OutOfRange, "is out of range for the column's type"));
    }
    Ok(f)
}

pub fn epoch_ms_to_pg_us(ms: i64) -> Option<i64> {
    let us = ms.checked_mul(1000)?.checked_sub(PG_EPOCH_OFFSET_US)?;
    (PG_TIMESTAMP_MIN_US..PG_TIMESTAMP_END_US).contains(&us).then_some(us)
}

#[cfg(test)]
mod tests {
    use super::*;
    use TargetType::*;

    fn c(raw: &str, t: TargetType) -> Result<Cell<'_>, ConvertError> {
        convert(Some(raw), t)
    }

    fn text(s: &str) -> Cell<'_> {
        Cell::Text(Cow::Borrowed(s))
    }

    #[test]
    fn missing_and_null_fields_are_null() {
        assert_eq!(convert(None, Int8), Ok(Cell::Null));
        assert_eq!(c("null", Text), Ok(Cell::Null));
    }

    #[test]
    fn text_takes_strings_unescaped_and_everything_else_as_json_text() {
        assert_eq!(c(r#""acme""#, Text), Ok(text("acme")));
        assert_eq!(c(r#""a\"b\u00e9""#, Text), Ok(Cell::Text(Cow::Owned("a\"bé".into()))));
        assert_eq!(c("12", Text), Ok(text("12")));
        assert_eq!(c(r#"{"life_cycle_state":"RUNNING"}"#, Text), Ok(text(r#"{"life_cycle_state":"RUNNING"}"#)));
        assert_eq!(c("true", Text), Ok(text("true")));
    }

    #[test]
    fn integers_check_range_and_accept_numeric_strings() {
        assert_eq!(c("1780000000000", Int8), Ok(Cell::Int(1_780_000_000_000)));
        assert_eq!(c(r#""42""#, Int4), Ok(Cell::Int(42)));
        assert_eq!(c("3.0", Int2), Ok(Cell::Int(3)));
        assert_eq!(c("-9223372036854775808", Int8), Ok(Cell::Int(i64::MIN)));
        let e = c("1780000000000", Int4).unwrap_err();
        assert!(e.problem.contains("out of range"));
        assert_eq!(c(r#"{"a":1}"#, Int8).unwrap_err().json_type, "object");
        assert_eq!(c("1.5", Int8).unwrap_err().json_type, "number");
        assert_eq!(c(r#""x""#, Int8).unwrap_err().json_type, "string");
    }

    #[test]
    fn integers_are_exact_or_an_error() {
        assert_eq!(c("1e3", Int8), Ok(Cell::Int(1000)));
        assert_eq!(c("-0.0", Int8), Ok(Cell::Int(0)));
        assert_eq!(c("12.500e1", Int8), Ok(Cell::Int(125)));
        assert_eq!(c("9223372036854775807", Int8), Ok(Cell::Int(i64::MAX)));
        assert_eq!(c("9223372036854775807.0", Int8), Ok(Cell::Int(i64::MAX)));
        for (raw, reason) in [
            ("-9223372036854775809", Reason::OutOfRange),
            ("9223372036854775808", Reason::OutOfRange),
            ("1e19", Reason::OutOfRange),
            ("1e400", Reason::OutOfRange),
            ("\"123456789012345678901\"", Reason::OutOfRange),
            ("123456789012345678.5", Reason::BadValue),
            ("1.0000000000000001", Reason::BadValue),
            ("1e-400", Reason::BadValue),
            ("\"12x\"", Reason::BadValue),
        ] {
            assert_eq!(c(raw, Int8).map_err(|e| e.reason), Err(reason), "{raw}");
        }
        assert_eq!(c("1e2", Timestamptz), Ok(Cell::Timestamp(epoch_ms_to_pg_us(100).unwrap())));
        assert_eq!(c("1.5", Timestamptz).map_err(|e| e.reason), Err(Reason::BadValue));
    }

    #[test]
    fn floats_never_become_infinity_or_zero_by_accident() {
        assert_eq!(c("1e308", Float8), Ok(Cell::Float(1e308)));
        assert_eq!(c("\"NaN\"", Float8).map(|c| matches!(c, Cell::Float(f) if f.is_nan())), Ok(true));
        assert_eq!(c("\"-Infinity\"", Float8), Ok(Cell::Float(f64::NEG_INFINITY)));
        assert_eq!(c("0e5", Float8), Ok(Cell::Float(0.0)));
        for (raw, t) in [("1e400", Float8), ("-1e400", Float8), ("1e-400", Float8), ("1e39", Float4), ("1e-50", Float4)] {
            assert_eq!(c(raw, t).map_err(|e| e.reason), Err(Reason::OutOfRange), "{raw}");
        }
    }

    #[test]
    fn json_columns_keep_the_value_as_it_came() {
        assert_eq!(c(r#"{"a":[1,true]}"#, Jsonb), Ok(Cell::Json(r#"{"a":[1,true]}"#)));
        assert_eq!(c(r#""x""#, Json), Ok(Cell::Json(r#""x""#)));
    }

    #[test]
    fn timestamps_come_from_epoch_milliseconds() {
        assert_eq!(c("946684800000", Timestamptz), Ok(Cell::Timestamp(0)));
        assert_eq!(c("946684800001", Timestamp), Ok(Cell::Timestamp(1000)));
        assert_eq!(c(r#""2026-01-01T00:00:00Z""#, Timestamptz), Ok(Cell::Input(Cow::Borrowed("2026-01-01T00:00:00Z"))));
        assert!(c("9223372036854775807", Timestamptz).is_err());
        assert_eq!(c("true", Timestamptz).unwrap_err().json_type, "boolean");
    }

    #[test]
    fn booleans_floats_and_other_types() {
        assert_eq!(c("true", Bool), Ok(Cell::Bool(true)));
        assert_eq!(c(r#""false""#, Bool), Ok(Cell::Bool(false)));
        assert!(c("1", Bool).is_err());
        assert_eq!(c("1.5", Float8), Ok(Cell::Float(1.5)));
        assert_eq!(c(r#""2026-11-28""#, Other), Ok(Cell::Input(Cow::Borrowed("2026-11-28"))));
        assert_eq!(c("[1,2]", Other), Ok(Cell::Input(Cow::Borrowed("[1,2]"))));
    }
}
