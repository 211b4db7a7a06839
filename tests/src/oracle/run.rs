//! Running one query against the foreign tables and against the truth, and comparing.

use super::expect::{Expect, Rules};
use super::query::{Mode, Query};
use super::setup::Configuration;
use crate::DbError;
use postgres::types::ToSql;
use postgres::Client;

/// Which tables a query is rendered with.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Foreign,
    Truth,
    /// The truth's rows of the server's default deployment alone.
    TruthOfDefault,
}

/// The query with its placeholders filled.
pub fn render(q: &Query, side: Side) -> String {
    let n = q.table.name;
    let table = match side {
        Side::Foreign if q.partitioned && n == "task_runs" => "p_task_runs".to_string(),
        Side::Foreign => format!("f_{n}"),
        Side::Truth => format!("truth_{n}"),
        Side::TruthOfDefault => format!("truth_{n}_default"),
    };
    let rooms = if side == Side::Foreign { "f_clean_rooms" } else { "truth_clean_rooms" };
    q.sql.replace("{t}", &table).replace("{c}", rooms)
}

/// Each row as its record's text.
fn wrapped(sql: &str) -> String {
    format!("SELECT q::text FROM ({sql}) q")
}

fn texts(rows: Vec<postgres::Row>) -> Vec<String> {
    rows.iter().map(|r| r.get::<_, Option<String>>(0).unwrap_or_default()).collect()
}

/// The parameters as literals, for DECLARE (which takes none).
fn inline_params(sql: &str, params: &[Vec<String>]) -> String {
    let mut out = sql.to_string();
    for (i, values) in params.iter().enumerate().rev() {
        let list = values.iter().map(|v| super::setup::literal(v)).collect::<Vec<_>>().join(", ");
        out = out.replace(&format!("${}::text[]", i + 1), &format!("ARRAY[{list}]::text[]"));
    }
    out
}

/// "SQLSTATE: message" of an error.
fn sql_error(e: postgres::Error) -> String {
    let e = DbError::from(e);
    format!("{}: {}", e.code, e.message)
}

/// Runs `sql` as the query's mode says, in a transaction holding its planner setting; an
/// error is "SQLSTATE: message" (or "MISMATCH: ..." for executions that disagree).
pub fn execute(db: &mut Client, q: &Query, sql: &str, mode: Mode) -> Result<Vec<String>, String> {
    let params: Vec<&(dyn ToSql + Sync)> = q.params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
    let mut tx = db.transaction().map_err(sql_error)?;
    let result = in_transaction(&mut tx, q, sql, mode, &params);
    let _ = tx.rollback();
    result
}

fn in_transaction(
    tx: &mut postgres::Transaction,
    q: &Query,
    sql: &str,
    mode: Mode,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Vec<String>, String> {
    if let Some(setting) = q.setting {
        tx.batch_execute(&format!("SET LOCAL {setting} = off")).map_err(sql_error)?;
    }
    match mode {
        Mode::Plain => Ok(texts(tx.query(&wrapped(sql), params).map_err(sql_error)?)),
        Mode::Generic => {
            tx.batch_execute("SET LOCAL plan_cache_mode = force_generic_plan").map_err(sql_error)?;
            let statement = tx.prepare(&wrapped(sql)).map_err(sql_error)?;
            Ok(texts(tx.query(&statement, params).map_err(sql_error)?))
        }
        Mode::Prepared => {
            let statement = tx.prepare(&wrapped(sql)).map_err(sql_error)?;
            let first = texts(tx.query(&statement, params).map_err(sql_error)?);
            for execution in 2..=6 {
                let again = texts(tx.query(&statement, params).map_err(sql_error)?);
                if let Some(d) = difference(again, first.clone()) {
                    return Err(format!("MISMATCH: execution {execution} of the prepared statement differs from the first: {d}"));
                }
            }
            Ok(first)
        }
        Mode::Cursor => {
            tx.batch_execute(&format!("DECLARE oracle_cursor NO SCROLL CURSOR FOR {}", wrapped(&inline_params(sql, &q.params))))
                .map_err(sql_error)?;
            let mut all = Vec::new();
            loop {
                let chunk = texts(tx.query("FETCH 7 FROM oracle_cursor", &[]).map_err(sql_error)?);
                let done = chunk.len() < 7;
                all.extend(chunk);
                if done {
                    return Ok(all);
                }
            }
        }
    }
}

/// What a query that behaved as the rules say did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Returned the truth's rows (how many).
    Rows(usize),
    /// Failed as expected.
    Error,
}

/// One query both ways: what it did when it behaved as the rules say, else what went wrong.
pub fn check(db: &mut Client, rules: &Rules, q: &Query) -> Result<Outcome, String> {
    let expect = rules.expect(q);
    let truth_sql = render(q, if rules.reads_default_only(q) { Side::TruthOfDefault } else { Side::Truth });
    match (expect, execute(db, q, &render(q, Side::Foreign), q.mode)) {
        (Expect::Error(code), Ok(rows)) => {
            Err(format!("expected an error{}, got {} rows", code.map(|c| format!(" {c}")).unwrap_or_default(), rows.len()))
        }
        (Expect::Error(code) | Expect::RowsOrError(code), Err(e)) => {
            let ok = !e.starts_with(':') && !e.starts_with("MISMATCH") && code.is_none_or(|c| e.starts_with(&format!("{c}:")));
            match ok {
                true => Ok(Outcome::Error),
                false => Err(format!("expected {}, got the error {e}", code.map(|c| format!("SQLSTATE {c}")).unwrap_or("an error".into()))),
            }
        }
        (Expect::Rows, Err(e)) => Err(format!("expected rows, got the error {e}")),
        (Expect::Rows | Expect::RowsOrError(_), Ok(rows)) => {
            let truth = execute(db, q, &truth_sql, Mode::Plain).unwrap_or_else(|e| panic!("the truth query failed: {e}\n{truth_sql}"));
            let count = rows.len();
            match difference(rows, truth) {
                None => Ok(Outcome::Rows(count)),
                Some(d) => Err(d),
            }
        }
    }
}

/// Compares two multisets of rows; `None` when equal.
pub fn difference(mut got: Vec<String>, mut truth: Vec<String>) -> Option<String> {
    got.sort();
    truth.sort();
    if got == truth {
        return None;
    }
    let (missing, extra) = multiset_minus(&truth, &got);
    let first = |v: &[String]| v.iter().take(3).map(|r| format!("\n      {}", shorten(r))).collect::<String>();
    Some(format!(
        "got {} rows, the truth has {}\n    missing ({}):{}\n    extra ({}):{}",
        got.len(),
        truth.len(),
        missing.len(),
        first(&missing),
        extra.len(),
        first(&extra)
    ))
}

/// (in a but not b, in b but not a), counting repeats.
fn multiset_minus(a: &[String], b: &[String]) -> (Vec<String>, Vec<String>) {
    let mut balance: std::collections::BTreeMap<&str, i64> = std::collections::BTreeMap::new();
    for row in a {
        *balance.entry(row).or_default() += 1;
    }
    for row in b {
        *balance.entry(row).or_default() -= 1;
    }
    let (mut only_a, mut only_b) = (Vec::new(), Vec::new());
    for (row, n) in balance {
        let side = if n > 0 { &mut only_a } else { &mut only_b };
        side.extend(std::iter::repeat_n(row.to_string(), n.unsigned_abs() as usize));
    }
    (only_a, only_b)
}

fn shorten(row: &str) -> String {
    if row.chars().count() > 160 {
        format!("{}...", row.chars().take(160).collect::<String>())
    } else {
        row.to_string()
    }
}

/// How a failed query is told: the configuration, the query and what differed.
pub fn report(c: &Configuration, q: &Query, rules: &Rules, problem: &str) -> String {
    format!(
        "[{}] {:?}{} mode {:?}, expected {:?}\n  {}\n  params {:?}\n  {}",
        c.name,
        q.table.name,
        q.setting.map(|s| format!(", {s} = off,")).unwrap_or_default(),
        q.mode,
        rules.expect(q),
        render(q, Side::Foreign),
        q.params,
        problem
    )
}
