//! Cells into Datums for the declared column types, and parameter values out of Datums.

use crate::convert::prepare::{Prepared, PreparedRows};
use crate::convert::{Cell, ConvertError, Reason, TargetType};
use crate::error::FdwError;
use crate::fdw::raise;
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
    /// For a column declared as a domain: the domain, whose constraints each value must meet.
    domain: Option<Domain>,
    /// Names the column and table in the context of any error an input function or a domain
    /// check raises (whose own SQLSTATE and message stand).
    context: CString,
}

struct InputFunction {
    finfo: Box<pg_sys::FmgrInfo>,
    ioparam: pg_sys::Oid,
    typmod: i32,
}

struct Domain {
    type_oid: pg_sys::Oid,
    /// `domain_check`'s cache, in `memory`.
    extra: *mut std::ffi::c_void,
    memory: pg_sys::MemoryContext,
}

impl ColumnWriter {
    /// # Safety
    /// Must run in the executor's query memory context: the FmgrInfo keeps pointers into it.
    pub unsafe fn new(index: usize, name: String, table: &str, type_oid: pg_sys::Oid, typmod: i32) -> ColumnWriter {
        // A domain converts as its base type does, then its constraints are checked.
        let mut base_typmod = typmod;
        let base = pg_sys::getBaseTypeAndTypmod(type_oid, &mut base_typmod);
        let domain = (base != type_oid).then_some(Domain { type_oid, extra: std::ptr::null_mut(), memory: pg_sys::CurrentMemoryContext });
        let target = match base {
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
        let needs_input =
            matches!(target, TargetType::Json | TargetType::Jsonb | TargetType::Other | TargetType::Timestamptz | TargetType::Timestamp);
        let input = needs_input.then(|| {
            let mut func = pg_sys::InvalidOid;
            let mut ioparam = pg_sys::InvalidOid;
            pg_sys::getTypeInputInfo(base, &mut func, &mut ioparam);
            let mut finfo = Box::new(pg_sys::FmgrInfo::default());
            pg_sys::fmgr_info(func, finfo.as_mut());
            InputFunction { finfo, ioparam, typmod: base_typmod }
        });
        let context = format!("column \"{name}\" of foreign table \"{table}\", a value sent by the Databricks API").replace('\0', "");
        ColumnWriter { index, name, target, type_name, input, domain, context: CString::new(context).unwrap_or_default() }
    }

    pub fn conversion_error(&self, table: &str, e: ConvertError) -> FdwError {
        let code = match e.reason {
            Reason::OutOfRange => ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE,
            Reason::BadValue => ERRCODE_INVALID_TEXT_REPRESENTATION,
            Reason::WrongType => ERRCODE_FDW_INVALID_DATA_TYPE,
        };
        FdwError::new(
            code,
            format!("column \"{}\" of foreign table \"{table}\" cannot hold a JSON {}: the value {}", self.name, e.json_type, e.problem),
        )
        .detail(format!("The column is declared {}.", self.type_name))
        .hint("Declare the column as jsonb (or text) to take the value as it comes.")
    }

    /// The Datum for `cell`, or `None` for NULL. Raises on a value the type rejects.
    ///
    /// # Safety
    /// Must run in a memory context that lives as long as the tuple (the per-tuple context).
    pub unsafe fn datum(&mut self, cell: Cell, table: &str) -> Option<pg_sys::Datum> {
        let datum = match cell {
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
            Cell::Json(text) => self.parse(text, table),
            Cell::Input(text) => self.parse(&text, table),
        };
        self.check_domain(datum);
        datum
    }

    /// The Datum of a value prepared off the backend thread (`convert::prepare`), whose row's
    /// bytes were copied to `row` (aligned to 8), or `None` for NULL.
    ///
    /// # Safety
    /// `row` must hold the row's bytes and live as long as the tuple (the per-tuple context).
    pub unsafe fn prepared_datum(&mut self, value: Prepared, row: *mut u8, rows: &PreparedRows, table: &str) -> Option<pg_sys::Datum> {
        let datum = match value {
            Prepared::Null => None,
            Prepared::Word(w) => Some(pg_sys::Datum::from(w as usize)),
            Prepared::Varlena(at) => Some(pg_sys::Datum::from(row.add(at as usize))),
            Prepared::Input(at) => Some(self.input_call(row.add(at as usize) as *mut std::ffi::c_char)),
            Prepared::Failed(e) => raise(self.conversion_error(table, rows.error(e).clone())),
        };
        self.check_domain(datum);
        datum
    }

    /// Checks a value against the column's domain, if it has one.
    unsafe fn check_domain(&mut self, datum: Option<pg_sys::Datum>) {
        if let Some(domain) = &mut self.domain {
            let (value, is_null) = (datum.unwrap_or(pg_sys::Datum::from(0)), datum.is_none());
            let (type_oid, extra, memory) = (domain.type_oid, &mut domain.extra as *mut _, domain.memory);
            with_context(&self.context, || pg_sys::domain_check(value, is_null, type_oid, extra, memory));
        }
    }

    fn check_no_nul(&self, s: &str, table: &str) {
        if s.contains('\0') {
            raise(self.conversion_error(
                table,
                ConvertError::new("string", Reason::BadValue, "contains a NUL character, which Postgres text cannot hold"),
            ));
        }
    }

    /// Runs the type's input function. Its error stands as it is (SQLSTATE, message), with a
    /// context line naming the column.
    unsafe fn parse(&mut self, text: &str, table: &str) -> Option<pg_sys::Datum> {
        self.check_no_nul(text, table);
        let cstr = CString::new(text).expect("checked for NUL above");
        Some(self.input_call(cstr.as_ptr() as *mut std::ffi::c_char))
    }

    /// The type's input function on the NUL-terminated `text`, with the column named in the
    /// context of any error it raises.
    unsafe fn input_call(&mut self, text: *mut std::ffi::c_char) -> pg_sys::Datum {
        let input = self.input.as_mut().expect("columns that parse have an input function");
        let finfo: *mut pg_sys::FmgrInfo = input.finfo.as_mut();
        let (ioparam, typmod) = (input.ioparam, input.typmod);
        with_context(&self.context, || pg_sys::InputFunctionCall(finfo, text, ioparam, typmod))
    }
}

/// Runs `f` with `context` on Postgres's error context stack, so an error it raises carries
/// that line (as postgres_fdw's conversion_error_callback does).
unsafe fn with_context<T>(context: &CStr, f: impl FnOnce() -> T) -> T {
    unsafe extern "C-unwind" fn add_context(arg: *mut std::ffi::c_void) {
        extern "C-unwind" {
            // Variadic, so not in pgrx's bindings; it formats into the error being built.
            fn errcontext_msg(fmt: *const std::ffi::c_char, ...) -> std::ffi::c_int;
        }
        pg_sys::set_errcontext_domain(std::ptr::null());
        errcontext_msg(c"%s".as_ptr(), arg as *const std::ffi::c_char);
    }
    /// Takes the callback off the stack however `f` ends (an ERROR unwinds through here).
    struct Pop(*mut pg_sys::ErrorContextCallback);
    impl Drop for Pop {
        fn drop(&mut self) {
            // SAFETY: restores the stack as it was before the push below.
            unsafe { pg_sys::error_context_stack = self.0 };
        }
    }
    let mut callback = pg_sys::ErrorContextCallback {
        previous: pg_sys::error_context_stack,
        callback: Some(add_context),
        arg: context.as_ptr() as *mut std::ffi::c_void,
    };
    let _pop = Pop(callback.previous);
    pg_sys::error_context_stack = &mut callback;
    f()
}

/// A text (or json) Datum holding `s`, copied once into the current memory context.
unsafe fn text_datum(s: &str) -> pg_sys::Datum {
    pg_sys::Datum::from(pg_sys::cstring_to_text_with_len(s.as_ptr() as *const std::ffi::c_char, s.len() as i32))
}

/// The text of each value a request column was given: one for `=`, the non-NULL elements of
/// the array for `= ANY`. A NULL value matches nothing, so it gives none. Only text equality is
/// pushed down (see `quals`), so the values are text.
///
/// # Safety
/// `datum` must be a valid text value (a text array when `list`).
pub unsafe fn param_values(datum: pg_sys::Datum, is_null: bool, list: bool) -> Vec<String> {
    if is_null {
        return Vec::new();
    }
    if !list {
        return vec![text_value(datum)];
    }
    let arr = pg_sys::pg_detoast_datum(datum.cast_mut_ptr()) as *mut pg_sys::ArrayType;
    let mut elems: *mut pg_sys::Datum = std::ptr::null_mut();
    let mut nulls: *mut bool = std::ptr::null_mut();
    let mut n = 0;
    // text: variable length, by reference, int-aligned.
    pg_sys::deconstruct_array(arr, pg_sys::TEXTOID, -1, false, b'i' as std::ffi::c_char, &mut elems, &mut nulls, &mut n);
    let mut values = Vec::with_capacity(n as usize);
    for i in 0..n as usize {
        // A long array must not keep a cancel waiting.
        if i % 4096 == 0 {
            pg_sys::check_for_interrupts!();
        }
        if !*nulls.add(i) {
            values.push(text_value(*elems.add(i)));
        }
    }
    values
}

/// A value as its type's output function writes it.
///
/// # Safety
/// `datum` must be a valid, non-NULL value of type `type_oid`.
pub unsafe fn output_text(datum: pg_sys::Datum, type_oid: pg_sys::Oid) -> String {
    let mut out_fn = pg_sys::InvalidOid;
    let mut varlena = false;
    pg_sys::getTypeOutputInfo(type_oid, &mut out_fn, &mut varlena);
    let cstr = pg_sys::OidOutputFunctionCall(out_fn, datum);
    let text = CStr::from_ptr(cstr).to_string_lossy().into_owned();
    pg_sys::pfree(cstr as *mut std::ffi::c_void);
    text
}

/// The JSON a column's value is sent as, for a field of `kind`: a string, a boolean, or the
/// object or array a json, jsonb or text column holds. `Err` says what is wrong with the value.
///
/// # Safety
/// `datum` must be a valid, non-NULL value of type `type_oid`.
pub unsafe fn json_value(datum: pg_sys::Datum, type_oid: pg_sys::Oid, kind: crate::resources::Kind) -> Result<serde_json::Value, String> {
    use crate::resources::Kind;
    let text = output_text(datum, type_oid);
    match kind {
        Kind::Text => Ok(serde_json::Value::String(text)),
        Kind::Boolean => match text.to_ascii_lowercase().as_str() {
            "t" | "true" => Ok(true.into()),
            "f" | "false" => Ok(false.into()),
            _ => Err(format!("{:?} is not a boolean", crate::text::excerpt(&text, 64))),
        },
        Kind::Integer => {
            text.trim().parse::<i64>().map(Into::into).map_err(|_| format!("{:?} is not an integer", crate::text::excerpt(&text, 64)))
        }
        Kind::Object => serde_json::from_str(&text).map_err(|e| format!("is not JSON ({e})")),
        Kind::EpochMillis => Err("is a time the service sets".into()),
    }
}

unsafe fn text_value(datum: pg_sys::Datum) -> String {
    let cstr = pg_sys::text_to_cstring(datum.cast_mut_ptr());
    let value = CStr::from_ptr(cstr).to_string_lossy().into_owned();
    pg_sys::pfree(cstr as *mut std::ffi::c_void);
    value
}
