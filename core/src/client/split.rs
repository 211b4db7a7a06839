//! Splits a list response into its items as its bytes arrive, so that a page of any size (the
//! runs endpoint sends a room's whole history as one) is handed on item by item: memory holds
//! one item and one network chunk, not the page.
//!
//! The body is `{"<list key>": [item, ...], "next_page_token": "...", ...}` with its members in
//! any order. The splitter follows the JSON structure (strings, escapes, nesting) without
//! building values: each item's text is handed on whole, to be decoded and validated with its
//! batch by [`super::pages::Page::decode`]; the token is read when its member ends; other
//! members are skipped.

/// Why a body cannot be split.
#[derive(Debug, PartialEq)]
pub enum SplitError {
    /// One item (or key, or token) is larger than the limit.
    TooLarge,
    /// Not a JSON object of the expected shape.
    Bad(String),
}

/// Where the splitter is in the top-level object.
#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    /// Before the top-level `{`.
    Start,
    /// Expecting a key, or `}` right after `{`.
    FirstKey,
    /// Expecting a key (after a `,`).
    Key,
    /// After a key, expecting `:`.
    Colon,
    /// Expecting a member's value.
    Value,
    /// After a member's value, expecting `,` or `}`.
    AfterValue,
    /// In the list's array, expecting an item, or `]` right after `[`.
    FirstItem,
    /// In the list's array, expecting an item (after a `,`).
    Item,
    /// After an item, expecting `,` or `]`.
    AfterItem,
    /// After the top-level `}`: only white space may follow.
    Done,
}

/// What the value being read is, which says what to do with it when it ends.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Reading {
    Key,
    Item,
    /// The list member's value when it is not an array (only `null` is allowed).
    ListScalar,
    Token,
    Skipped,
}

/// A value being read: its text (kept for all but skipped values) and where the scan is in it.
struct Value {
    reading: Reading,
    text: Vec<u8>,
    depth: u32,
    in_string: bool,
    escaped: bool,
    /// A number, `true`, `false` or `null`: it ends at the next delimiter.
    scalar: bool,
}

/// The incremental splitter of one list response.
pub struct Splitter {
    list_key: String,
    state: State,
    value: Option<Value>,
    /// The key whose value comes next.
    key: Option<String>,
    /// Items completed and not yet taken.
    items: Vec<Vec<u8>>,
    /// The token once its member has been read: `Some(None)` for null or `""`.
    token: Option<Option<String>>,
    /// The most bytes one kept value (an item, a key, the token) may have.
    max_value: usize,
    /// Bytes seen so far, for messages.
    offset: usize,
    /// The size of the last item, to give the next one its buffer at once (items of a page
    /// are alike: growing each from nothing cost a reallocation every doubling).
    last_item: usize,
}

impl Splitter {
    pub fn new(list_key: &str, max_value: usize) -> Splitter {
        Splitter {
            list_key: list_key.to_string(),
            state: State::Start,
            value: None,
            key: None,
            items: Vec::new(),
            token: None,
            max_value,
            offset: 0,
            last_item: 0,
        }
    }

    /// Feeds the next chunk of the body.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<(), SplitError> {
        let mut i = 0;
        while i < chunk.len() {
            // Within a value, most bytes change nothing: inside a string all but a quote or a
            // backslash, outside one all but the structure. Take each such run at once.
            if let Some(v) = self.value.as_mut().filter(|v| !v.escaped) {
                let rest = &chunk[i..];
                let run = if v.in_string {
                    memchr::memchr2(b'"', b'\\', rest).unwrap_or(rest.len())
                } else {
                    let depth = v.depth;
                    rest.iter().position(|&b| STRUCTURE[b as usize] || (depth == 0 && is_json_whitespace(b))).unwrap_or(rest.len())
                };
                if run > 0 {
                    keep_run(v, &rest[..run], self.max_value)?;
                    i += run;
                    self.offset += run;
                    continue;
                }
            }
            self.byte(chunk[i])?;
            self.offset += 1;
            i += 1;
        }
        Ok(())
    }

    /// The items completed since the last call, in order.
    pub fn take_items(&mut self) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.items)
    }

    /// The page's next token, once its member has been read (it may come before or after the
    /// items): `Some(None)` when the page says there is none.
    pub fn token(&self) -> Option<Option<&str>> {
        self.token.as_ref().map(|t| t.as_deref())
    }

    /// The body has ended: it must have been one whole object. Returns the next token.
    pub fn finish(&mut self) -> Result<Option<String>, SplitError> {
        // A number ending the body (not valid at the top level anyway) is ended here.
        if self.value.as_ref().is_some_and(|v| v.scalar && v.depth == 0) {
            self.end_value()?;
        }
        match self.state {
            State::Done => Ok(self.token.take().flatten()),
            State::Start => Err(SplitError::Bad("the body is empty, not a JSON object".into())),
            _ => Err(SplitError::Bad(format!("the body ends in the middle of its JSON, after {} bytes", self.offset))),
        }
    }

    fn unexpected<T>(&self, b: u8, expected: &str) -> Result<T, SplitError> {
        Err(SplitError::Bad(format!("expected {expected} at byte {}, found {:?}", self.offset, char::from(b))))
    }

    fn byte(&mut self, b: u8) -> Result<(), SplitError> {
        if self.value.is_some() {
            return self.value_byte(b);
        }
        if is_json_whitespace(b) {
            return Ok(());
        }
        match (self.state, b) {
            (State::Start, b'{') => self.state = State::FirstKey,
            (State::Start, _) => return self.unexpected(b, "a JSON object"),
            (State::FirstKey, b'}') => self.state = State::Done,
            (State::FirstKey | State::Key, b'"') => self.begin(Reading::Key, b)?,
            (State::FirstKey | State::Key, _) => return self.unexpected(b, "a key"),
            (State::Colon, b':') => self.state = State::Value,
            (State::Colon, _) => return self.unexpected(b, "':'"),
            (State::Value, b',' | b'}' | b']' | b':') => return self.unexpected(b, "a value"),
            (State::Value, _) => {
                let key = self.key.take().unwrap_or_default();
                match (key == self.list_key, key == "next_page_token", b) {
                    (true, _, b'[') => self.state = State::FirstItem,
                    (true, _, _) => self.begin(Reading::ListScalar, b)?,
                    (false, true, _) => self.begin(Reading::Token, b)?,
                    (false, false, _) => self.begin(Reading::Skipped, b)?,
                }
            }
            (State::AfterValue, b',') => self.state = State::Key,
            (State::AfterValue, b'}') => self.state = State::Done,
            (State::AfterValue, _) => return self.unexpected(b, "',' or '}'"),
            (State::FirstItem, b']') => self.state = State::AfterValue,
            (State::FirstItem | State::Item, b']' | b',' | b'}' | b':') => return self.unexpected(b, "an item"),
            (State::FirstItem | State::Item, _) => self.begin(Reading::Item, b)?,
            (State::AfterItem, b',') => self.state = State::Item,
            (State::AfterItem, b']') => self.state = State::AfterValue,
            (State::AfterItem, _) => return self.unexpected(b, "',' or ']'"),
            (State::Done, _) => return self.unexpected(b, "nothing after the object"),
        }
        Ok(())
    }

    /// A value starts with byte `b`.
    fn begin(&mut self, reading: Reading, b: u8) -> Result<(), SplitError> {
        let scalar = !matches!(b, b'"' | b'{' | b'[');
        // At most 64 KiB ahead of need: one huge item must not make every later one huge.
        let capacity = if matches!(reading, Reading::Item) { (self.last_item + self.last_item / 4).min(64 * 1024) } else { 0 };
        self.value = Some(Value { reading, text: Vec::with_capacity(capacity), depth: 0, in_string: false, escaped: false, scalar });
        self.value_byte(b)
    }

    fn value_byte(&mut self, b: u8) -> Result<(), SplitError> {
        let max = self.max_value;
        let v = self.value.as_mut().expect("a value is being read");
        if v.in_string {
            if v.escaped {
                v.escaped = false;
            } else if b == b'\\' {
                v.escaped = true;
            } else if b == b'"' {
                v.in_string = false;
            }
            keep(v, b, max)?;
            if !v.in_string && v.depth == 0 {
                return self.end_value();
            }
            return Ok(());
        }
        match b {
            b'"' => {
                v.in_string = true;
                keep(v, b, max)
            }
            b'{' | b'[' => {
                v.depth += 1;
                keep(v, b, max)
            }
            b'}' | b']' if v.depth > 0 => {
                v.depth -= 1;
                keep(v, b, max)?;
                if v.depth == 0 {
                    return self.end_value();
                }
                Ok(())
            }
            // A scalar ends at the delimiter that follows it, which the structure then reads.
            b',' | b'}' | b']' if v.depth == 0 => {
                self.end_value()?;
                self.byte(b)
            }
            _ if is_json_whitespace(b) && v.depth == 0 => self.end_value(),
            _ => keep(v, b, max),
        }
    }

    /// The value being read has ended.
    fn end_value(&mut self) -> Result<(), SplitError> {
        let v = self.value.take().expect("a value is being read");
        let text = || String::from_utf8_lossy(&v.text).into_owned();
        match v.reading {
            Reading::Key => {
                let key: String =
                    serde_json::from_slice(&v.text).map_err(|e| SplitError::Bad(format!("a key is not a JSON string ({e})")))?;
                self.key = Some(key);
                self.state = State::Colon;
            }
            Reading::Item => {
                self.last_item = v.text.len();
                self.items.push(v.text);
                self.state = State::AfterItem;
            }
            Reading::ListScalar if v.text == b"null" => self.state = State::AfterValue,
            Reading::ListScalar => {
                return Err(SplitError::Bad(format!("\"{}\" is {}, not an array", self.list_key, crate::text::excerpt(&text(), 40))))
            }
            Reading::Token => {
                let token: Option<String> = serde_json::from_slice(&v.text)
                    .map_err(|_| SplitError::Bad(format!("\"next_page_token\" is {}, not a string", crate::text::excerpt(&text(), 40))))?;
                self.token = Some(token.filter(|t| !t.is_empty()));
                self.state = State::AfterValue;
            }
            Reading::Skipped => self.state = State::AfterValue,
        }
        Ok(())
    }
}

/// JSON's white space: space, tab, line feed, carriage return (not form feed, as Rust's is).
fn is_json_whitespace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// The bytes that shape a value outside its strings.
const STRUCTURE: [bool; 256] = {
    let mut table = [false; 256];
    let mut i = 0;
    while i < 6 {
        table[b"\"{}[],"[i] as usize] = true;
        i += 1;
    }
    table
};

/// Keeps a run of bytes of a value that is kept, within the limit.
fn keep_run(v: &mut Value, run: &[u8], max: usize) -> Result<(), SplitError> {
    if v.reading == Reading::Skipped {
        return Ok(());
    }
    if v.text.len() + run.len() > max {
        return Err(SplitError::TooLarge);
    }
    v.text.extend_from_slice(run);
    Ok(())
}

/// Keeps byte `b` of a value that is kept, within the limit.
fn keep(v: &mut Value, b: u8, max: usize) -> Result<(), SplitError> {
    if v.reading == Reading::Skipped {
        return Ok(());
    }
    if v.text.len() >= max {
        return Err(SplitError::TooLarge);
    }
    v.text.push(b);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Splits `body` fed in chunks of `size` bytes: the items' texts and the token.
    fn split(body: &str, size: usize) -> Result<(Vec<String>, Option<String>), SplitError> {
        let mut s = Splitter::new("runs", 1 << 20);
        let mut items = Vec::new();
        for chunk in body.as_bytes().chunks(size.max(1)) {
            s.feed(chunk)?;
            items.extend(s.take_items().into_iter().map(|i| String::from_utf8(i).unwrap()));
        }
        let token = s.finish()?;
        Ok((items, token))
    }

    #[test]
    fn items_and_the_token_in_either_order_whatever_the_chunks() {
        let bodies = [
            r#"{"runs": [{"a": 1}, {"b": "x}]\"y"}], "next_page_token": "t1"}"#,
            r#"{"next_page_token":"t1","runs":[{"a":1},{"b":"x}]\"y"}]}"#,
            concat!(
                r#" { "other": {"runs": [1, 2]}, "runs" : [ {"a":1} , {"b":"x}]\"y"} ] , "#,
                r#""n": [true, null, -1.5e3], "next_page_token" : "t1" } "#
            ),
        ];
        for body in bodies {
            for size in [1, 2, 3, 7, 1000] {
                let (items, token) = split(body, size).unwrap_or_else(|e| panic!("{body} by {size}: {e:?}"));
                let parsed: Vec<serde_json::Value> = items.iter().map(|i| serde_json::from_str(i).unwrap()).collect();
                assert_eq!(parsed, [serde_json::json!({"a": 1}), serde_json::json!({"b": "x}]\"y"})], "{body} by {size}");
                assert_eq!(token.as_deref(), Some("t1"), "{body} by {size}");
            }
        }
    }

    #[test]
    fn the_ends_of_a_listing() {
        for body in [r#"{}"#, r#"{"runs": []}"#, r#"{"runs": null, "next_page_token": ""}"#, r#"{"next_page_token": null}"#] {
            assert_eq!(split(body, 3).unwrap(), (vec![], None), "{body}");
        }
    }

    #[test]
    fn what_is_not_a_page_is_refused() {
        for body in [
            "",
            "[]",
            "null",
            r#"{"x":}"#,
            r#"{"x":,"runs":[]}"#,
            "{\x0c}",
            r#"{"runs": 7}"#,
            r#"{"runs": [1,]}"#,
            r#"{"runs": [{"a":1}]"#,
            r#"{"runs": []} x"#,
            r#"{"next_page_token": 5}"#,
            r#"{"a" 1}"#,
            r#"{"runs": [{"a":1}}]}"#,
        ] {
            assert!(matches!(split(body, 2), Err(SplitError::Bad(_))), "{body}: {:?}", split(body, 2));
        }
    }

    #[test]
    fn one_item_larger_than_the_limit_is_refused_whatever_the_page() {
        let mut s = Splitter::new("runs", 16);
        s.feed(br#"{"runs": [{"a":"12345"},"#).unwrap();
        assert_eq!(s.take_items().len(), 1);
        assert_eq!(s.feed(br#"{"a":"1234567890"}"#), Err(SplitError::TooLarge));
        // A large member that is skipped costs nothing.
        let mut s = Splitter::new("runs", 16);
        s.feed(br#"{"other": ""#).unwrap();
        s.feed(&vec![b'x'; 100_000]).unwrap();
        s.feed(br#"", "runs": []}"#).unwrap();
        assert_eq!(s.finish(), Ok(None));
    }
}

#[cfg(test)]
mod speed {
    /// How fast a page is split (run by hand: `cargo test -p databricks-fdw-core --release split_speed -- --ignored --nocapture`).
    #[test]
    #[ignore]
    fn split_speed() {
        let run = concat!(
            r#"{"notebook_name":"attribution","notebook_etag":"etag-attribution-12","notebook_updated_at":1780000000000,"#,
            r#""notebook_job_run_state":{"life_cycle_state":"TERMINATED","result_state":"SUCCESS"},"#,
            r#""output_schema_name":"out_12345","output_schema_expiration_time":1780600000000,"#,
            r#""run_duration":64000,"start_time":1780000004000,"#,
            r#""collaborator_job_run_info":{"collaborator_alias":"creator","collaborator_job_id":70000,"collaborator_job_run_id":80000,"#,
            r#""collaborator_task_run_id":90000,"collaborator_workspace_id":1234567890}}"#
        );
        let n = 200_000;
        let body = format!("{{\"runs\":[{}],\"next_page_token\":\"x\"}}", vec![run; n].join(","));
        for _ in 0..3 {
            let started = std::time::Instant::now();
            let mut s = super::Splitter::new("runs", 1 << 20);
            let mut items = 0;
            for chunk in body.as_bytes().chunks(16 * 1024) {
                s.feed(chunk).unwrap();
                items += s.take_items().len();
            }
            let split = started.elapsed();
            let started = std::time::Instant::now();
            let page = crate::client::pages::Page::decode(
                body.clone().into_bytes(),
                Some("runs"),
                &["notebook_name", "start_time", "notebook_job_run_state"],
            )
            .unwrap();
            let decode = started.elapsed();
            eprintln!(
                "{items} items, {} MB: split {:?} ({:.0} MB/s), whole decode {:?}",
                body.len() / 1_000_000,
                split,
                body.len() as f64 / split.as_secs_f64() / 1e6,
                decode
            );
            assert_eq!((items, page.len()), (n, n));
        }
    }
}
