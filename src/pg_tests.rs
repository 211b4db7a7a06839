//! Tests that run inside Postgres (`cargo pgrx test`): the catalog objects the extension
//! creates, the validator as Postgres calls it, and values turned into Datums of each declared
//! type. Scans against the simulator are tested end to end in `tests/`.

#[pgrx::pg_schema]
mod tests {
    use crate::convert::{convert, Cell};
    use crate::fdw::datum::ColumnWriter;
    use pgrx::prelude::*;
    use serde_json::json;
    use std::ffi::CStr;

    #[pg_test]
    fn create_extension_makes_the_wrapper_with_handler_and_validator() {
        let row = Spi::get_two::<String, String>(
            "SELECT fdwhandler::regproc::text, fdwvalidator::regproc::text FROM pg_foreign_data_wrapper WHERE fdwname = 'databricks_fdw'",
        )
        .unwrap();
        assert_eq!(row, (Some("databricks_fdw_handler".into()), Some("databricks_fdw_validator".into())));
    }

    #[pg_test]
    fn a_complete_setup_is_accepted() {
        Spi::run(
            "CREATE SERVER ok_srv FOREIGN DATA WRAPPER databricks_fdw \
               OPTIONS (workspace_url 'https://{deployment_name}.cloud.databricks.com', deployment_name 'dbc-abcd0123-a1bc');
             CREATE USER MAPPING FOR CURRENT_USER SERVER ok_srv OPTIONS (token 'dapi-x');
             CREATE FOREIGN TABLE ok_runs (clean_room_name text, start_time timestamptz) SERVER ok_srv \
               OPTIONS (resource 'task_runs', page_size '50');
             ALTER FOREIGN TABLE ok_runs OPTIONS (SET page_size '100');",
        )
        .unwrap();
    }

    #[pg_test(error = "invalid option \"workspace_ulr\" for a foreign server")]
    fn the_validator_refuses_a_misspelled_server_option() {
        Spi::run("CREATE SERVER bad_srv FOREIGN DATA WRAPPER databricks_fdw OPTIONS (workspace_ulr 'https://x.cloud.databricks.com')")
            .unwrap();
    }

    #[pg_test(error = "option \"token\" is not allowed on a foreign server")]
    fn the_validator_refuses_a_token_on_the_server() {
        Spi::run("CREATE SERVER leak_srv FOREIGN DATA WRAPPER databricks_fdw OPTIONS (token 'dapi-x')").unwrap();
    }

    #[pg_test(error = "a databricks_fdw foreign table needs the option \"resource\"")]
    fn the_validator_requires_a_resource_on_tables() {
        Spi::run(
            "CREATE SERVER nores_srv FOREIGN DATA WRAPPER databricks_fdw;
             CREATE FOREIGN TABLE nores (clean_room_name text) SERVER nores_srv",
        )
        .unwrap();
    }

    #[pg_test]
    fn names_and_text_are_quoted_by_postgres() {
        use crate::fdw::quote::{ident, literal};
        assert_eq!(ident("plain"), "plain");
        assert_eq!(ident("Mixed"), "\"Mixed\"");
        assert_eq!(ident("table"), "\"table\"");
        assert_eq!(ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(literal("it's"), "'it''s'");
        assert_eq!(literal(r"a\b"), r"E'a\\b'");
        // IMPORT FOREIGN SCHEMA into a schema whose name needs quoting; comments quote 'true'.
        Spi::run(
            r#"CREATE SERVER q_srv FOREIGN DATA WRAPPER databricks_fdw
                 OPTIONS (workspace_url 'http://127.0.0.1:9', deployment_name 'dbc-abcd0123-a1bc');
               CREATE SCHEMA "Odd ""Schema""";
               IMPORT FOREIGN SCHEMA cleanrooms LIMIT TO (auto_approval_rules) FROM SERVER q_srv INTO "Odd ""Schema""";"#,
        )
        .unwrap();
        let comment = Spi::get_one::<String>(r#"SELECT obj_description('"Odd ""Schema""".auto_approval_rules'::regclass)"#).unwrap();
        assert!(comment.is_some_and(|c| c.ends_with("once the option updatable is 'true')")));
    }

    /// The SQLSTATE of `sql`, or None when it succeeds (a PL/pgSQL block catches the error).
    fn sqlstate_of(sql: &str) -> Option<String> {
        Spi::run(
            "CREATE OR REPLACE FUNCTION pg_temp.sqlstate_of(q text) RETURNS text LANGUAGE plpgsql AS
             $$ BEGIN EXECUTE q; RETURN NULL; EXCEPTION WHEN OTHERS THEN RETURN SQLSTATE; END $$",
        )
        .unwrap();
        Spi::get_one_with_args::<String>("SELECT pg_temp.sqlstate_of($1)", &[sql.into()]).unwrap()
    }

    /// Any role may call the validator directly, with NULLs too: a NULL list is no options, a
    /// NULL catalog an error of its own (never a Rust panic's text).
    #[pg_test]
    fn any_role_may_call_the_validator_with_nulls() {
        Spi::run("CREATE ROLE validator_caller; SET ROLE validator_caller").unwrap();
        assert_eq!(sqlstate_of("SELECT databricks_fdw_validator(NULL, 'pg_foreign_server'::regclass)"), None);
        assert_eq!(sqlstate_of("SELECT databricks_fdw_validator('{NULL}', 'pg_foreign_server'::regclass)"), None);
        assert_eq!(sqlstate_of("SELECT databricks_fdw_validator(NULL, NULL)").as_deref(), Some("22004"));
        assert_eq!(sqlstate_of("SELECT databricks_fdw_validator('{workspace_url=x}', NULL)").as_deref(), Some("22004"));
        assert_eq!(sqlstate_of("SELECT databricks_fdw_validator(NULL, 'pg_foreign_table'::regclass)").as_deref(), Some("HV00J"));
        assert_eq!(
            sqlstate_of("SELECT databricks_fdw_validator('{workspace_ulr=x}', 'pg_foreign_server'::regclass)").as_deref(),
            Some("HV00D")
        );
        assert_eq!(sqlstate_of("SELECT databricks_fdw_validator('{token=x}', 'pg_class'::regclass)"), None, "no options of ours there");
    }

    #[pg_test(error = "databricks_fdw_validator: the catalog must not be NULL")]
    fn the_validator_names_a_null_catalog() {
        Spi::run("SELECT databricks_fdw_validator(NULL, NULL)").unwrap();
    }

    #[pg_test(error = "cannot insert into foreign table \"ro_runs\": the Databricks API cannot change resource task_runs")]
    fn tables_are_read_only() {
        Spi::run(
            "CREATE SERVER ro_srv FOREIGN DATA WRAPPER databricks_fdw OPTIONS (deployment_name 'dbc-a');
             CREATE FOREIGN TABLE ro_runs (clean_room_name text) SERVER ro_srv OPTIONS (resource 'task_runs');
             INSERT INTO ro_runs VALUES ('x')",
        )
        .unwrap();
    }

    /// The text Postgres prints for a Datum made by a writer of `type_name`.
    /// The value's output text after conversion for a column of `type_name`, made as a scan
    /// makes it (prepared off the backend thread, then copied); the other conversion path
    /// (`ColumnWriter::datum`, for RETURNING rows) must give the same.
    fn round_trip(type_name: &str, value: serde_json::Value) -> Option<String> {
        use crate::convert::prepare::{prepare, ColumnRecipe, RowRecipe};
        let raw = value.to_string();
        let oid = Spi::get_one::<pg_sys::Oid>(&format!("SELECT '{type_name}'::regtype::oid")).unwrap().unwrap();
        unsafe {
            let output = |datum: pg_sys::Datum| {
                let mut out = pg_sys::InvalidOid;
                let mut varlena = false;
                pg_sys::getTypeOutputInfo(oid, &mut out, &mut varlena);
                CStr::from_ptr(pg_sys::OidOutputFunctionCall(out, datum)).to_string_lossy().into_owned()
            };
            let mut writer = ColumnWriter::new(0, "c".into(), "t", oid, -1);
            let recipe =
                RowRecipe { columns: vec![Some(ColumnRecipe { field: 0, path: vec![], target: writer.target })], binary_jsonb: true };
            let rows = prepare(1, |_, _| Some(raw.as_str()), &recipe);
            let (bytes, cells) = rows.row(0);
            let row = pg_sys::palloc(bytes.len().max(1)) as *mut u8;
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), row, bytes.len());
            let prepared = writer.prepared_datum(cells[0], row, &rows, "t").map(output);
            let direct = writer.datum(convert(Some(&raw), writer.target).unwrap(), "t").map(output);
            assert_eq!(prepared, direct, "{raw} as {type_name}");
            prepared
        }
    }

    #[pg_test]
    fn values_become_datums_of_the_declared_type() {
        Spi::run("SET TIME ZONE 'UTC'").unwrap();
        assert_eq!(round_trip("text", json!("acme")).as_deref(), Some("acme"));
        assert_eq!(round_trip("text", json!({"a": 1})).as_deref(), Some("{\"a\":1}"));
        assert_eq!(round_trip("bigint", json!(1780000000000i64)).as_deref(), Some("1780000000000"));
        assert_eq!(round_trip("integer", json!(42)).as_deref(), Some("42"));
        assert_eq!(round_trip("smallint", json!(-7)).as_deref(), Some("-7"));
        assert_eq!(round_trip("boolean", json!(true)).as_deref(), Some("t"));
        assert_eq!(round_trip("double precision", json!(1.5)).as_deref(), Some("1.5"));
        assert_eq!(
            round_trip("jsonb", json!({"result_state": "SUCCESS", "life_cycle_state": "TERMINATED"})).as_deref(),
            Some("{\"result_state\": \"SUCCESS\", \"life_cycle_state\": \"TERMINATED\"}")
        );
        assert_eq!(round_trip("json", json!([1, "x"])).as_deref(), Some("[1,\"x\"]"));
        assert_eq!(round_trip("timestamptz", json!(1780000000000i64)).as_deref(), Some("2026-05-28 20:26:40+00"));
        assert_eq!(round_trip("timestamp", json!(1780000000123i64)).as_deref(), Some("2026-05-28 20:26:40.123"));
        assert_eq!(round_trip("timestamptz", json!("2026-01-02T03:04:05Z")).as_deref(), Some("2026-01-02 03:04:05+00"));
        assert_eq!(round_trip("numeric", json!(12.25)).as_deref(), Some("12.25"));
        assert_eq!(round_trip("date", json!("2026-11-28")).as_deref(), Some("2026-11-28"));
        assert_eq!(round_trip("text", serde_json::Value::Null), None);
    }

    /// The input function's own error stands (its SQLSTATE too: checked end to end, where the
    /// context line naming the column is seen as well).
    #[pg_test(error = "invalid input syntax for type uuid: \"not-a-uuid\"")]
    fn a_value_the_input_function_rejects_keeps_its_error() {
        round_trip("uuid", json!("not-a-uuid"));
    }

    #[pg_test]
    fn domains_convert_as_their_base_type_and_check_their_constraints() {
        Spi::run(
            "SET TIME ZONE 'UTC';
             CREATE DOMAIN positive_ms AS bigint CHECK (VALUE > 0);
             CREATE DOMAIN run_time AS timestamptz;
             CREATE DOMAIN short_name AS text CHECK (length(VALUE) < 10);",
        )
        .unwrap();
        assert_eq!(round_trip("positive_ms", json!(1780000000000i64)).as_deref(), Some("1780000000000"));
        assert_eq!(round_trip("run_time", json!(1780000000000i64)).as_deref(), Some("2026-05-28 20:26:40+00"));
        assert_eq!(round_trip("short_name", json!("acme")).as_deref(), Some("acme"));
    }

    #[pg_test(error = "value for domain positive_ms violates check constraint \"positive_ms_check\"")]
    fn a_domain_constraint_refuses_a_value() {
        Spi::run("CREATE DOMAIN positive_ms AS bigint CHECK (VALUE > 0)").unwrap();
        round_trip("positive_ms", json!(-5));
    }

    /// jsonb_in's value for `text`, as bytes (header included).
    fn jsonb_in_bytes(text: &str) -> Vec<u8> {
        unsafe {
            let (mut input, mut ioparam) = (pg_sys::InvalidOid, pg_sys::InvalidOid);
            pg_sys::getTypeInputInfo(pg_sys::JSONBOID, &mut input, &mut ioparam);
            let text = std::ffi::CString::new(text).unwrap();
            let datum = pg_sys::OidInputFunctionCall(input, text.as_ptr() as *mut _, ioparam, -1);
            let value = pg_sys::pg_detoast_datum(datum.cast_mut_ptr());
            let len = (*(value as *const u32) >> 2) as usize;
            std::slice::from_raw_parts(value as *const u8, len).to_vec()
        }
    }

    /// Our jsonb bytes for `text`, as a row's value would carry them (`None`: left to jsonb_in).
    fn jsonb_ours(text: &str) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        crate::convert::jsonb::Encoder::default().encode(text, &mut out).then_some(out)
    }

    #[pg_test]
    fn the_binary_jsonb_is_byte_for_byte_what_jsonb_in_builds() {
        let cases = [
            r#"{"life_cycle_state":"TERMINATED","result_state":"SUCCESS"}"#,
            r#"{"b":1,"a":[1,-2,{"c":null,"d":true}],"e":{},"f":[],"a2":"x\"y\u00e9\n\/\b\f\r\t"}"#,
            r#"{"k":1,"k":2}"#,
            r#"{"id":1234567890123456,"neg":-9223372036854775808,"big":18446744073709551616}"#,
            "[1.5, 1.50, -0, -0.0, 0.000, 1e3, 1E+3, 1.5e-3, 12345.678, 0.0001, 1e300, -1e-300, \
             123456789012345678901234567890.123456789]",
            r#""just a string""#,
            "42",
            "-0.5e-7",
            "true",
            "null",
            "[]",
            "{}",
            " \t\n{ \"a\" : [ ] }\r\n",
            r#"{"é":"ü","emoji":"\ud83d\ude00","raw":"😀"}"#,
        ];
        for text in cases {
            assert_eq!(jsonb_ours(text).as_deref(), Some(jsonb_in_bytes(text).as_slice()), "{text}");
        }
        // Every document of the simulator's fixture, as the service sends them.
        let fixture: serde_json::Value = serde_json::from_str(include_str!("../simulator/fixtures/cleanrooms.json")).unwrap();
        let mut documents = Vec::new();
        collect_objects(&fixture, &mut documents);
        assert!(documents.len() > 100, "{}", documents.len());
        for doc in &documents {
            let text = doc.to_string();
            assert_eq!(jsonb_ours(&text).as_deref(), Some(jsonb_in_bytes(&text).as_slice()), "{text}");
        }
        // What jsonb_in refuses or converts in its own way is left to it.
        for text in [r#"{"s":"a\u0000b"}"#, r#""\ud800""#, "1e301", "{oops", "[1,]", "01"] {
            assert!(jsonb_ours(text).is_none(), "{text}");
        }
    }

    fn collect_objects(value: &serde_json::Value, out: &mut Vec<serde_json::Value>) {
        match value {
            serde_json::Value::Object(map) => {
                out.push(value.clone());
                map.values().for_each(|v| collect_objects(v, out));
            }
            serde_json::Value::Array(items) => {
                out.push(value.clone());
                items.iter().for_each(|v| collect_objects(v, out));
            }
            _ => {}
        }
    }

    #[pg_test]
    fn randomized_documents_give_jsonb_in_s_bytes() {
        let mut rng = Lcg(0x5eed_1234);
        let (mut compared, mut declined) = (0, 0);
        // One encoder for every document, as a page's rows share one: nothing of a document
        // may leak into the next.
        let mut encoder = crate::convert::jsonb::Encoder::default();
        for _ in 0..800 {
            let mut text = String::new();
            random_json(&mut rng, 0, &mut text);
            let mut out = Vec::new();
            match encoder.encode(&text, &mut out).then_some(out) {
                Some(ours) => {
                    assert_eq!(ours, jsonb_in_bytes(&text), "{text}");
                    compared += 1;
                }
                None => declined += 1,
            }
        }
        // Only valid documents within the fast path's bounds are generated: none is declined.
        assert_eq!((compared, declined), (800, 0));
    }

    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self, n: u64) -> u64 {
            self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (self.0 >> 33) % n
        }
    }

    /// A random JSON document: nesting, arrays and objects past jsonb's 32-entry offset stride,
    /// duplicate keys of several lengths, escapes, and numbers in every notation.
    fn random_json(rng: &mut Lcg, depth: usize, out: &mut String) {
        let ws = |rng: &mut Lcg, out: &mut String| out.push_str([" ", "", "", "\n ", "\t"][rng.next(5) as usize]);
        let kind = if depth >= 3 { rng.next(4) } else { rng.next(7) };
        match kind {
            0 => out.push_str(["null", "true", "false"][rng.next(3) as usize]),
            1 => {
                let sign = if rng.next(3) == 0 { "-" } else { "" };
                let int = ["0", "1", "42", "9999", "10000", "123456789", "9223372036854775808", "100000000000000000000000000000000000"]
                    [rng.next(8) as usize];
                let frac = ["", ".0", ".5", ".50", ".0001", ".123456789012345678901234567890", ".000"][rng.next(7) as usize];
                let exp = ["", "", "e3", "E-3", "e+10", "e-300", "e300", "e0", "E-12"][rng.next(9) as usize];
                out.push_str(&format!("{sign}{int}{frac}{exp}"));
            }
            2 | 3 => {
                out.push('"');
                for _ in 0..rng.next(12) {
                    out.push_str(
                        ["a", "Z", "é", "😀", "\\\"", "\\\\", "\\n", "\\u00e9", "\\ud83d\\ude00", "\\/", " ", "\\u0041"]
                            [rng.next(12) as usize],
                    );
                }
                out.push('"');
            }
            4 | 5 => {
                out.push('[');
                let n = [0, 1, 3, 31, 32, 33, 40][rng.next(7) as usize];
                for i in 0..n {
                    if i > 0 {
                        out.push(',');
                    }
                    ws(rng, out);
                    random_json(rng, depth + 1, out);
                }
                out.push(']');
            }
            _ => {
                out.push('{');
                let n = [0, 1, 2, 5, 17, 33][rng.next(6) as usize];
                for i in 0..n {
                    if i > 0 {
                        out.push(',');
                    }
                    ws(rng, out);
                    let key = ["a", "b", "ab", "ba", "abc", "é", "", "key_that_is_longer", "a", "Z"][rng.next(10) as usize];
                    out.push_str(&format!("\"{key}\":"));
                    ws(rng, out);
                    random_json(rng, depth + 1, out);
                }
                out.push('}');
            }
        }
    }

    #[pg_test]
    fn cells_for_missing_fields_are_null() {
        assert_eq!(convert(None, crate::convert::TargetType::Jsonb), Ok(Cell::Null));
    }
}
