//! Rows made ready off the backend thread: each value of a page's items converted to the
//! bytes of its final Datum (a pass-by-value word, or a varlena: text, json, jsonb in binary),
//! so that the backend's work per row is one allocation, one copy and setting pointers. What
//! only Postgres can do (another type's input function, a domain's check) is left for the
//! backend, with the text it needs.

use super::jsonb::Encoder;
use super::varlena::{align_to, push_text};
use super::{convert, text_below, Cell, ConvertError, Reason, TargetType};

/// How one column of the scan gets its value from an item.
#[derive(Debug, Clone)]
pub struct ColumnRecipe {
    /// The wanted field (an index into the listing's fields).
    pub field: usize,
    /// Keys below that field, for a column whose `path` reaches into an object.
    pub path: Vec<String>,
    pub target: TargetType,
}

/// How a scan's rows are made: one entry per column (`None`: a column the backend fills
/// itself, such as one that echoes a request value).
#[derive(Debug, Clone)]
pub struct RowRecipe {
    pub columns: Vec<Option<ColumnRecipe>>,
    /// jsonb values may be built here (the database's encoding is UTF-8); otherwise they go to
    /// `jsonb_in`, which converts escapes to the database's encoding.
    pub binary_jsonb: bool,
}

/// One value of a prepared row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Prepared {
    Null,
    /// The Datum itself (a pass-by-value type).
    Word(u64),
    /// A varlena at this offset of the row's bytes.
    Varlena(u32),
    /// NUL-terminated text at this offset of the row's bytes, for the type's input function.
    Input(u32),
    /// The value cannot become the column's type: the rows' error of this number.
    Failed(u32),
}

/// The prepared rows of one page (or batch of a page).
#[derive(Debug, Default)]
pub struct PreparedRows {
    columns: usize,
    cells: Vec<Prepared>,
    /// Each row's bytes in `data`, starting at an 8-byte aligned offset.
    rows: Vec<(usize, usize)>,
    data: Vec<u8>,
    errors: Vec<ConvertError>,
}

impl PreparedRows {
    /// Row `i`: its bytes (to copy to memory aligned to 8) and one value per recipe column.
    pub fn row(&self, i: usize) -> (&[u8], &[Prepared]) {
        let (start, end) = self.rows[i];
        (&self.data[start..end], &self.cells[i * self.columns..(i + 1) * self.columns])
    }

    pub fn error(&self, n: u32) -> &ConvertError {
        &self.errors[n as usize]
    }

    pub fn memory(&self) -> usize {
        self.data.capacity() + self.cells.capacity() * std::mem::size_of::<Prepared>() + self.rows.capacity() * 16
    }
}

/// Prepares `items` rows by `recipe`; `field(item, field)` is the JSON text of a wanted field.
pub fn prepare<'p>(items: usize, field: impl Fn(usize, usize) -> Option<&'p str>, recipe: &RowRecipe) -> PreparedRows {
    let columns = recipe.columns.len();
    let mut rows =
        PreparedRows { columns, cells: Vec::with_capacity(items * columns), rows: Vec::with_capacity(items), ..Default::default() };
    // Fields that `path` columns reach into, parsed once per row.
    let mut parsed: Vec<(usize, Result<Option<serde_json::Value>, String>)> = Vec::new();
    let mut jsonb = Encoder::default();
    for item in 0..items {
        align_to(&mut rows.data, 0, 8);
        let start = rows.data.len();
        parsed.clear();
        for column in &recipe.columns {
            let Some(column) = column else {
                rows.cells.push(Prepared::Null);
                continue;
            };
            let raw = field(item, column.field);
            let value = if column.path.is_empty() {
                rows.put(convert(raw, column.target), column.target, recipe.binary_jsonb.then_some(&mut jsonb), start)
            } else {
                if !parsed.iter().any(|(f, _)| *f == column.field) {
                    let value = raw.map(serde_json::from_str::<serde_json::Value>).transpose().map_err(|e| e.to_string());
                    parsed.push((column.field, value));
                }
                match &parsed.iter().find(|(f, _)| *f == column.field).expect("parsed above").1 {
                    Err(e) => {
                        rows.fail(ConvertError::new("object", Reason::BadValue, format!("cannot be read for the column's path ({e})")))
                    }
                    Ok(top) => {
                        let nested = top.as_ref().and_then(|v| text_below(v, column.path.iter().map(String::as_str)));
                        rows.put(convert(nested.as_deref(), column.target), column.target, recipe.binary_jsonb.then_some(&mut jsonb), start)
                    }
                }
            };
            rows.cells.push(value);
        }
        rows.rows.push((start, rows.data.len()));
    }
    rows
}

impl PreparedRows {
    fn fail(&mut self, e: ConvertError) -> Prepared {
        self.errors.push(e);
        Prepared::Failed(self.errors.len() as u32 - 1)
    }

    /// Appends the value of `cell` to the row that starts at `start`.
    /// `jsonb`: jsonb values are built here (else left to `jsonb_in`).
    fn put(&mut self, cell: Result<Cell, ConvertError>, target: TargetType, jsonb: Option<&mut Encoder>, start: usize) -> Prepared {
        let cell = match cell {
            Ok(cell) => cell,
            Err(e) => return self.fail(e),
        };
        let offset = |at: usize| (at - start) as u32;
        match cell {
            Cell::Null => Prepared::Null,
            Cell::Int(n) => Prepared::Word(match target {
                // As Int32GetDatum and Int16GetDatum: sign-extended.
                TargetType::Int4 => n as i32 as i64 as u64,
                TargetType::Int2 => n as i16 as i64 as u64,
                _ => n as u64,
            }),
            Cell::Float(f) => Prepared::Word(match target {
                TargetType::Float4 => (f as f32).to_bits() as u64,
                _ => f.to_bits(),
            }),
            Cell::Bool(b) => Prepared::Word(b as u64),
            Cell::Timestamp(us) => Prepared::Word(us as u64),
            Cell::Text(s) if s.contains('\0') => self.fail(nul_error()),
            Cell::Text(s) => self.varlena(&s, start),
            Cell::Json(text) if target == TargetType::Json => self.varlena(text, start),
            Cell::Json(text) => {
                align_to(&mut self.data, 0, 8);
                let at = self.data.len();
                if jsonb.is_some_and(|encoder| encoder.encode(text, &mut self.data)) {
                    Prepared::Varlena(offset(at))
                } else {
                    self.input(text, start)
                }
            }
            Cell::Input(text) => self.input(&text, start),
        }
    }

    fn varlena(&mut self, s: &str, start: usize) -> Prepared {
        match push_text(&mut self.data, s) {
            Some(at) => Prepared::Varlena((at - start) as u32),
            None => self.fail(ConvertError::new("string", Reason::OutOfRange, "is longer than a Postgres value can be")),
        }
    }

    fn input(&mut self, s: &str, start: usize) -> Prepared {
        if s.contains('\0') {
            return self.fail(nul_error());
        }
        let at = self.data.len();
        self.data.extend_from_slice(s.as_bytes());
        self.data.push(0);
        Prepared::Input((at - start) as u32)
    }
}

fn nul_error() -> ConvertError {
    ConvertError::new("string", Reason::BadValue, "contains a NUL character, which Postgres text cannot hold")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recipe(targets: &[TargetType]) -> RowRecipe {
        RowRecipe {
            columns: targets.iter().enumerate().map(|(i, t)| Some(ColumnRecipe { field: i, path: vec![], target: *t })).collect(),
            binary_jsonb: true,
        }
    }

    #[test]
    fn values_become_words_varlenas_inputs_or_errors() {
        let item = [Some("\"acme\""), Some("-5"), Some("1.5"), Some("{\"a\":1}"), Some("\"2026-01-01\""), Some("\"x\\u0000\""), None];
        let targets = [
            TargetType::Text,
            TargetType::Int4,
            TargetType::Float4,
            TargetType::Jsonb,
            TargetType::Other,
            TargetType::Text,
            TargetType::Int8,
        ];
        let rows = prepare(1, |_, f| item[f], &recipe(&targets));
        let (bytes, cells) = rows.row(0);
        let Prepared::Varlena(text) = cells[0] else { panic!("{cells:?}") };
        assert_eq!(text % 8, 0);
        assert_eq!(&bytes[text as usize..text as usize + 8], &[8 << 2, 0, 0, 0, b'a', b'c', b'm', b'e']);
        assert_eq!(cells[1], Prepared::Word(-5i64 as u64));
        assert_eq!(cells[2], Prepared::Word(1.5f32.to_bits() as u64));
        assert!(matches!(cells[3], Prepared::Varlena(o) if o % 8 == 0));
        let Prepared::Input(at) = cells[4] else { panic!("{cells:?}") };
        assert_eq!(&bytes[at as usize..at as usize + 11], b"2026-01-01\0");
        let Prepared::Failed(e) = cells[5] else { panic!("{cells:?}") };
        assert!(rows.error(e).problem.contains("NUL"));
        assert_eq!(cells[6], Prepared::Null);
    }

    #[test]
    fn path_columns_reach_into_objects() {
        let recipe = RowRecipe {
            columns: vec![Some(ColumnRecipe { field: 0, path: vec!["a".into(), "b".into()], target: TargetType::Int8 }), None],
            binary_jsonb: true,
        };
        let rows = prepare(2, |i, _| [Some(r#"{"a":{"b":7}}"#), Some("{}")][i], &recipe);
        assert_eq!(rows.row(0).1, &[Prepared::Word(7), Prepared::Null]);
        assert_eq!(rows.row(1).1, &[Prepared::Null, Prepared::Null]);
    }
}
