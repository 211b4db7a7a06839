//! JSON value -> Postgres value, driven by the type the user declared for the column. Pure: the
//! result is a [`Cell`], which the scan turns into a Datum.

use serde_json::Value;

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

/// A converted value, ready to become a Datum.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Text(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    /// JSON text for a json or jsonb column.
    Json(String),
    /// Microseconds since 2000-01-01 00:00 UTC (Postgres's timestamp representation).
    Timestamp(i64),
    /// Text for the declared type's input function.
    Input(String),
}

/// Why a value could not become the declared type.
#[derive(Debug, Clone, PartialEq)]
pub struct ConvertError {
    /// The JSON type of the value: string, number, boolean, object, array.
    pub json_type: &'static str,
    pub problem: String,
}

pub fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Microseconds between the Unix epoch and Postgres's epoch (2000-01-01).
const PG_EPOCH_OFFSET_US: i64 = 946_684_800_000_000;
/// Postgres's timestamp range, in microseconds since its epoch (4714-11-24 BC to 294277 AD).
const PG_TIMESTAMP_MIN_US: i64 = -211_813_488_000_000_000;
const PG_TIMESTAMP_END_US: i64 = 9_223_371_331_200_000_000;

pub fn convert(value: Option<&Value>, target: TargetType) -> Result<Cell, ConvertError> {
    let value = match value {
        None | Some(Value::Null) => return Ok(Cell::Null),
        Some(v) => v,
    };
    let fail = |problem: &str| ConvertError { json_type: json_type(value), problem: problem.to_string() };
    Ok(match target {
        TargetType::Text => Cell::Text(scalar_text(value)),
        TargetType::Json | TargetType::Jsonb => Cell::Json(value.to_string()),
        TargetType::Int8 | TargetType::Int4 | TargetType::Int2 => {
            let n = integer(value).ok_or_else(|| fail("is not a whole number"))?;
            let (lo, hi) = match target {
                TargetType::Int4 => (i32::MIN as i64, i32::MAX as i64),
                TargetType::Int2 => (i16::MIN as i64, i16::MAX as i64),
                _ => (i64::MIN, i64::MAX),
            };
            if n < lo || n > hi {
                return Err(fail(&format!("{n} is out of range for the column's type")));
            }
            Cell::Int(n)
        }
        TargetType::Float8 | TargetType::Float4 => match value {
            Value::Number(n) => Cell::Float(n.as_f64().ok_or_else(|| fail("is not a number"))?),
            Value::String(s) => Cell::Float(s.trim().parse().map_err(|_| fail("is not a number"))?),
            _ => return Err(fail("is not a number")),
        },
        TargetType::Bool => match value {
            Value::Bool(b) => Cell::Bool(*b),
            Value::String(s) if s == "true" => Cell::Bool(true),
            Value::String(s) if s == "false" => Cell::Bool(false),
            _ => return Err(fail("is not true or false")),
        },
        TargetType::Timestamptz | TargetType::Timestamp => match (value, integer(value)) {
            // Epoch milliseconds, the API's time representation.
            (_, Some(ms)) => Cell::Timestamp(epoch_ms_to_pg_us(ms).ok_or_else(|| fail(&format!("{ms} ms is out of range for a timestamp")))?),
            // An ISO 8601 string: the type's input function parses it.
            (Value::String(s), None) => Cell::Input(s.clone()),
            _ => return Err(fail("is not epoch milliseconds or a timestamp string")),
        },
        TargetType::Other => match value {
            Value::Array(_) | Value::Object(_) => Cell::Input(value.to_string()),
            _ => Cell::Input(scalar_text(value)),
        },
    })
}

/// Text of a value for a text column: strings as they are, other values as JSON text.
fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A whole number from a JSON number (an integral float counts) or a numeric string, since
/// proto3 JSON writes int64 as strings.
fn integer(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| {
            let f = n.as_f64()?;
            (f.fract() == 0.0 && f >= i64::MIN as f64 && f < i64::MAX as f64).then_some(f as i64)
        }),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

pub fn epoch_ms_to_pg_us(ms: i64) -> Option<i64> {
    let us = ms.checked_mul(1000)?.checked_sub(PG_EPOCH_OFFSET_US)?;
    (PG_TIMESTAMP_MIN_US..PG_TIMESTAMP_END_US).contains(&us).then_some(us)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use TargetType::*;

    fn c(v: Value, t: TargetType) -> Result<Cell, ConvertError> {
        convert(Some(&v), t)
    }

    #[test]
    fn missing_and_null_fields_are_null() {
        assert_eq!(convert(None, Int8), Ok(Cell::Null));
        assert_eq!(c(Value::Null, Text), Ok(Cell::Null));
    }

    #[test]
    fn text_takes_strings_as_is_and_everything_else_as_json_text() {
        assert_eq!(c(json!("a\"b"), Text), Ok(Cell::Text("a\"b".into())));
        assert_eq!(c(json!(12), Text), Ok(Cell::Text("12".into())));
        assert_eq!(c(json!({"life_cycle_state": "RUNNING"}), Text), Ok(Cell::Text("{\"life_cycle_state\":\"RUNNING\"}".into())));
    }

    #[test]
    fn integers_check_range_and_accept_numeric_strings() {
        assert_eq!(c(json!(1_780_000_000_000i64), Int8), Ok(Cell::Int(1_780_000_000_000)));
        assert_eq!(c(json!("42"), Int4), Ok(Cell::Int(42)));
        assert_eq!(c(json!(3.0), Int2), Ok(Cell::Int(3)));
        let e = c(json!(1_780_000_000_000i64), Int4).unwrap_err();
        assert!(e.problem.contains("out of range"));
        let e = c(json!({"a": 1}), Int8).unwrap_err();
        assert_eq!(e.json_type, "object");
        assert_eq!(c(json!(1.5), Int8).unwrap_err().json_type, "number");
    }

    #[test]
    fn json_columns_keep_the_value_as_it_came() {
        assert_eq!(c(json!({"a": [1, true]}), Jsonb), Ok(Cell::Json("{\"a\":[1,true]}".into())));
        assert_eq!(c(json!("x"), Json), Ok(Cell::Json("\"x\"".into())));
    }

    #[test]
    fn timestamps_come_from_epoch_milliseconds() {
        assert_eq!(c(json!(946_684_800_000i64), Timestamptz), Ok(Cell::Timestamp(0)));
        assert_eq!(c(json!(946_684_800_001i64), Timestamp), Ok(Cell::Timestamp(1000)));
        assert_eq!(c(json!("2026-01-01T00:00:00Z"), Timestamptz), Ok(Cell::Input("2026-01-01T00:00:00Z".into())));
        assert!(c(json!(i64::MAX), Timestamptz).is_err());
        assert_eq!(c(json!(true), Timestamptz).unwrap_err().json_type, "boolean");
    }

    #[test]
    fn booleans_and_floats() {
        assert_eq!(c(json!(true), Bool), Ok(Cell::Bool(true)));
        assert_eq!(c(json!("false"), Bool), Ok(Cell::Bool(false)));
        assert!(c(json!(1), Bool).is_err());
        assert_eq!(c(json!(1.5), Float8), Ok(Cell::Float(1.5)));
    }
}
