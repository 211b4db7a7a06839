//! Property test: random and mutated response bodies go through the page decoder and every
//! conversion of every field without a panic, and every failure is a reported error. (A panic in a backend
//! would be caught and turned into an ERROR, but it must not happen in the first place.)

use crate::client::pages::Page;
use crate::convert::{convert, Cell, TargetType};
use serde_json::Value;

/// Every field of task_runs, and a name no run has.
const FIELDS: &[&str] = &[
    "notebook_name",
    "notebook_etag",
    "notebook_updated_at",
    "notebook_job_run_state",
    "output_schema_name",
    "output_schema_expiration_time",
    "run_duration",
    "start_time",
    "collaborator_job_run_info",
    "no_such_field",
];

const TARGETS: [TargetType; 12] = [
    TargetType::Text,
    TargetType::Int8,
    TargetType::Int4,
    TargetType::Int2,
    TargetType::Float8,
    TargetType::Float4,
    TargetType::Bool,
    TargetType::Json,
    TargetType::Jsonb,
    TargetType::Timestamptz,
    TargetType::Timestamp,
    TargetType::Other,
];

/// Real pages: the fixture's rooms, each as the API would send it.
fn seed_bodies() -> Vec<Vec<u8>> {
    let fixture: Value = serde_json::from_str(include_str!("../../simulator/fixtures/cleanrooms.json")).unwrap();
    let mut bodies = vec![b"{}".to_vec(), br#"{"next_page_token":""}"#.to_vec()];
    for room in fixture["clean_rooms"].as_array().unwrap() {
        let runs: Vec<Value> = room["runs"].as_array().unwrap().iter().take(5).cloned().collect();
        bodies.push(serde_json::json!({"runs": runs, "next_page_token": "pt1"}).to_string().into_bytes());
    }
    bodies
}

const TOKENS: &[&str] = &[
    "null",
    "{",
    "}",
    "[",
    "]",
    "\"",
    ",",
    ":",
    "1e999",
    "-0",
    "18446744073709551616",
    "\\u0000",
    "\\ud800",
    "true",
    "\u{feff}",
    "\"runs\"",
    "\"next_page_token\":5",
];

fn mutate(rng: &mut fastrand::Rng, body: &[u8]) -> Vec<u8> {
    let mut b = body.to_vec();
    for _ in 0..rng.usize(1..4) {
        if b.is_empty() {
            b.extend_from_slice(TOKENS[rng.usize(..TOKENS.len())].as_bytes());
            continue;
        }
        let at = rng.usize(..b.len());
        match rng.u8(..5) {
            0 => b[at] = rng.u8(..),
            1 => b.truncate(at),
            2 => {
                let end = (at + rng.usize(1..32)).min(b.len());
                b.drain(at..end);
            }
            3 => {
                let t = TOKENS[rng.usize(..TOKENS.len())].as_bytes();
                b.splice(at..at, t.iter().copied());
            }
            _ => {
                let end = (at + rng.usize(1..64)).min(b.len());
                let copy = b[at..end].to_vec();
                b.splice(at..at, copy);
            }
        }
    }
    b
}

fn random_value(rng: &mut fastrand::Rng, depth: u32) -> Value {
    match rng.u8(..if depth > 2 { 6 } else { 8 }) {
        0 => Value::Null,
        1 => Value::Bool(rng.bool()),
        2 => Value::from(rng.i64(..)),
        3 => serde_json::Number::from_f64(f64::from_bits(rng.u64(..))).map(Value::Number).unwrap_or(Value::Null),
        4 => Value::String((0..rng.usize(..12)).map(|_| char::from_u32(rng.u32(0..0x11000)).unwrap_or('?')).collect()),
        5 => Value::String(rng.i64(..).to_string()),
        6 => Value::Array((0..rng.usize(..4)).map(|_| random_value(rng, depth + 1)).collect()),
        _ => Value::Object((0..rng.usize(..4)).map(|i| (format!("k{i}"), random_value(rng, depth + 1))).collect()),
    }
}

fn convert_all_targets(field: Option<&str>) {
    for target in TARGETS {
        match convert(field, target) {
            Ok(Cell::Int(n)) if target == TargetType::Int2 => assert!(i16::try_from(n).is_ok()),
            Ok(Cell::Int(n)) if target == TargetType::Int4 => assert!(i32::try_from(n).is_ok()),
            Ok(_) => {}
            Err(e) => assert!(!e.problem.is_empty() && !e.json_type.is_empty()),
        }
    }
}

#[test]
fn mutated_pages_never_panic_the_decoder_or_the_conversions() {
    let mut rng = fastrand::Rng::with_seed(20261128);
    let seeds = seed_bodies();
    let (mut decoded, mut refused) = (0, 0);
    for _ in 0..20_000 {
        let seed = &seeds[rng.usize(..seeds.len())];
        let body = mutate(&mut rng, seed);
        let split = split_in_chunks(&body, rng.usize(1..64));
        match Page::decode(body, Some("runs"), FIELDS) {
            Ok(page) => {
                decoded += 1;
                for item in 0..page.len() {
                    for f in 0..FIELDS.len() {
                        convert_all_targets(page.field(item, f));
                    }
                }
                assert!(page.next_page_token.as_deref() != Some(""));
                // The streaming splitter finds the same items and token as the full decode.
                let (items, token) = split.expect("a page the decoder reads splits too");
                assert_eq!((items, token), (page.len(), page.next_page_token.clone()));
            }
            Err(problem) => {
                refused += 1;
                assert!(!problem.is_empty());
            }
        }
    }
    // Both outcomes were exercised.
    assert!(decoded > 1_000 && refused > 1_000, "decoded {decoded}, refused {refused}");
}

#[test]
fn random_values_convert_or_fail_cleanly_for_every_type() {
    let mut rng = fastrand::Rng::with_seed(7);
    for _ in 0..5_000 {
        let raw = random_value(&mut rng, 0).to_string();
        convert_all_targets(Some(&raw));
    }
}

/// The number of items and the token the streaming splitter finds in `body` fed in chunks of
/// `size` bytes.
fn split_in_chunks(body: &[u8], size: usize) -> Result<(usize, Option<String>), crate::client::split::SplitError> {
    let mut splitter = crate::client::split::Splitter::new("runs", 1 << 30);
    let mut items = 0;
    for chunk in body.chunks(size) {
        splitter.feed(chunk)?;
        items += splitter.take_items().len();
    }
    let token = splitter.finish()?;
    Ok((items, token))
}
