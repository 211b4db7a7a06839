//! Cells into Datums for the declared column types, and parameter values out of Datums.

use super::raise;
use crate::convert::{Cell, ConvertError, TargetType};
use crate::error::FdwError;
use pgrx::pg_sys::panic::CaughtError;
use pgrx::pg_sys::PgTryBuilder;
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode::*;
use std::ffi::{CStr, CString};

/// How one column of the scan is filled.
pub struct ColumnWriter {
    /// attnum - 1
    pub index: usize,
    pub name: String,
    pub target: TargetType,
    type_name: String,
    /// The type's input function, for cells that need parsing (jsonb, other types, ISO times).
    input: Option<InputFunction>,
}

struct InputFunction {
    finfo: Box<pg_sys::FmgrInfo>,
    ioparam: pg_sys::Oid,
    typmod: i32,
}

impl ColumnWriter {
    /// # Safety
    /// Must run in the executor's query memory context: the FmgrInfo keeps pointers into it.
    pub unsafe fn new(index: usize, name: String, type_oid: pg_sys::Oid, typmod: i32) -> ColumnWriter {
        let target = match type_oid {
            pg_sys::TEXTOID => TargetType::Text,
            pg_sys::INT8OID => TargetType::Int8,
            pg_sys::INT4OID => TargetType::Int4,
            pg_sys::INT2OID => TargetType::Int2,
            pg_sys::FLOAT8OID => TargetType::Float8,
            pg_sys::FLOAT4OID => TargetType::Float4,
            pg_sys::BOOLOID => TargetType::Bool,
            pg_sys::JSONOID => TargetType::Json,
            pg_sys::JSONBOID => TargetType::Jsonb,
            pg_sys::TIMESTAMPTZOID => TargetType::Timestamptz,
            pg_sys::TIMESTAMPOID => TargetType::Timestamp,
            _ => TargetType::Other,
        };
        let type_name = CStr::from_ptr(pg_sys::format_type_with_typemod(type_oid, typmod)).to_string_lossy().into_owned();
        let needs_input = matches!(target, TargetType::Jsonb | TargetType::Other | TargetType::Timestamptz | TargetType::Timestamp);
        let input = needs_input.then(|| {
            let mut func = pg_sys::InvalidOid;
            let mut ioparam = pg_sys::InvalidOid;
            pg_sys::getTypeInputInfo(type_oid, &mut func, &mut ioparam);
            let mut finfo = Box::new(pg_sys::FmgrInfo::default());
            pg_sys::fmgr_info(func, finfo.as_mut());
            InputFunction { finfo, ioparam, typmod }
        });
        ColumnWriter { index, name, target, type_name, input }
    }

    pub fn conversion_error(&self, table: &str, e: ConvertError) -> FdwError {
        let code = if e.problem.contains("out of range") { ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE } else { ERRCODE_FDW_INVALID_DATA_TYPE };
        FdwError::new(code, format!("column \"{}\" of foreign table \"{table}\" cannot hold a JSON {}: the value {}", self.name, e.json_type, e.problem))
            .detail(format!("The column is declared {}.", self.type_name))
            .hint("Declare the column as jsonb (or text) to take the value as it comes.")
    }

    /// The Datum for `cell`, or `None` for NULL. Raises on a value the type rejects.
    ///
    /// # Safety
    /// Must run in a memory context that lives as long as the tuple (the per-tuple context).
    pub unsafe fn datum(&mut self, cell: Cell, table: &str) -> Option<pg_sys::Datum> {
        match cell {
            Cell::Null => None,
            Cell::Text(s) => {
                self.check_no_nul(&s, table);
                Some(text_datum(&s))
            }
            Cell::Int(n) => match self.target {
                TargetType::Int4 => (n as i32).into_datum(),
                TargetType::Int2 => (n as i16).into_datum(),
                _ => n.into_datum(),
            },
            Cell::Float(f) => match self.target {
                TargetType::Float4 => (f as f32).into_datum(),
                _ => f.into_datum(),
            },
            Cell::Bool(b) => b.into_datum(),
            Cell::Timestamp(us) => Some(pg_sys::Datum::from(us)),
            Cell::Json(text) if self.target == TargetType::Json => Some(text_datum(text)),
            Cell::Json(text) => super::jsonb::jsonb_datum(text).or_else(|| self.parse(text, table)),
            Cell::Input(text) => self.parse(&text, table),
        }
    }

    fn check_no_nul(&self, s: &str, table: &str) {
        if s.contains('\0') {
            raise(self.conversion_error(table, ConvertError { json_type: "string", problem: "contains a NUL character, which Postgres text cannot hold".into() }));
        }
    }

    /// Runs the type's input function; its error is re-raised naming the column.
    unsafe fn parse(&mut self, text: &str, table: &str) -> Option<pg_sys::Datum> {
        self.check_no_nul(text, table);
        let input = self.input.as_mut().expect("columns that parse have an input function");
        let cstr = CString::new(text).expect("checked for NUL above");
        let finfo: *mut pg_sys::FmgrInfo = input.finfo.as_mut();
        let (ioparam, typmod) = (input.ioparam, input.typmod);
        let ptr = cstr.as_ptr() as *mut std::ffi::c_char;
        let name = self.name.clone();
        let type_name = self.type_name.clone();
        PgTryBuilder::new(move || Some(pg_sys::InputFunctionCall(finfo, ptr, ioparam, typmod)))
            .catch_others(move |e| {
                let original = match &e {
                    CaughtError::PostgresError(r) | CaughtError::ErrorReport(r) | CaughtError::RustPanic { ereport: r, .. } => r.message().to_string(),
                };
                raise(
                    FdwError::new(ERRCODE_FDW_INVALID_DATA_TYPE, format!("column \"{name}\" of foreign table \"{table}\" cannot hold the value sent by the API"))
                        .detail(format!("{original} (the column is declared {type_name})"))
                        .hint("Declare the column as jsonb (or text) to take the value as it comes."),
                )
            })
            .execute()
    }
}

/// A text (or json) Datum holding `s`, copied once into the current memory context.
unsafe fn text_datum(s: &str) -> pg_sys::Datum {
    pg_sys::Datum::from(pg_sys::cstring_to_text_with_len(s.as_ptr() as *const std::ffi::c_char, s.len() as i32))
}

/// The text of each value a request column was given: one for `=`, the non-NULL elements of
/// the array for `= ANY`. A NULL value matches nothing, so it gives none.
///
/// # Safety
/// `datum` must be a valid value of type `type_oid` (an array type when `list`).
pub unsafe fn param_values(datum: pg_sys::Datum, is_null: bool, type_oid: pg_sys::Oid, list: bool) -> Vec<String> {
    if is_null {
        return Vec::new();
    }
    if !list {
        return vec![output_text(datum, type_oid)];
    }
    let arr = pg_sys::pg_detoast_datum(datum.cast_mut_ptr()) as *mut pg_sys::ArrayType;
    let elem_type = (*arr).elemtype;
    let (mut len, mut byval, mut align) = (0i16, false, 0 as std::ffi::c_char);
    pg_sys::get_typlenbyvalalign(elem_type, &mut len, &mut byval, &mut align);
    let mut elems: *mut pg_sys::Datum = std::ptr::null_mut();
    let mut nulls: *mut bool = std::ptr::null_mut();
    let mut n = 0;
    pg_sys::deconstruct_array(arr, elem_type, len as i32, byval, align, &mut elems, &mut nulls, &mut n);
    (0..n as usize).filter(|&i| !*nulls.add(i)).map(|i| output_text(*elems.add(i), elem_type)).collect()
}

unsafe fn output_text(datum: pg_sys::Datum, type_oid: pg_sys::Oid) -> String {
    let mut func = pg_sys::InvalidOid;
    let mut varlena = false;
    pg_sys::getTypeOutputInfo(type_oid, &mut func, &mut varlena);
    CStr::from_ptr(pg_sys::OidOutputFunctionCall(func, datum)).to_string_lossy().into_owned()
}
