//! Tests that run inside Postgres (`cargo pgrx test`): the catalog objects the extension
//! creates, the validator as Postgres calls it, and values turned into Datums of each declared
//! type. Scans against the simulator are tested end to end in `tests/`.

#[pgrx::pg_schema]
mod tests {
    use crate::convert::{convert, Cell};
    use crate::convert::datum::ColumnWriter;
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
            "CREATE SERVER ok_srv FOREIGN DATA WRAPPER databricks_fdw OPTIONS (workspace_url 'https://{deployment_name}.cloud.databricks.com', deployment_name 'dbc-abcd0123-a1bc');
             CREATE USER MAPPING FOR CURRENT_USER SERVER ok_srv OPTIONS (token 'dapi-x');
             CREATE FOREIGN TABLE ok_runs (clean_room_name text, start_time timestamptz) SERVER ok_srv OPTIONS (resource 'task_runs', page_size '50');
             ALTER FOREIGN TABLE ok_runs OPTIONS (SET page_size '100');",
        )
        .unwrap();
    }

    #[pg_test(error = "invalid option \"workspace_ulr\" for a foreign server")]
    fn the_validator_refuses_a_misspelled_server_option() {
        Spi::run("CREATE SERVER bad_srv FOREIGN DATA WRAPPER databricks_fdw OPTIONS (workspace_ulr 'https://x.cloud.databricks.com')").unwrap();
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
        assert_eq!(sqlstate_of("SELECT databricks_fdw_validator('{workspace_ulr=x}', 'pg_foreign_server'::regclass)").as_deref(), Some("HV00D"));
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
    fn round_trip(type_name: &str, value: serde_json::Value) -> Option<String> {
        let raw = value.to_string();
        let oid = Spi::get_one::<pg_sys::Oid>(&format!("SELECT '{type_name}'::regtype::oid")).unwrap().unwrap();
        unsafe {
            let mut writer = ColumnWriter::new(0, "c".into(), "t", oid, -1);
            let cell = convert(Some(&raw), writer.target).unwrap();
            let datum = writer.datum(cell, "t")?;
            let mut out = pg_sys::InvalidOid;
            let mut varlena = false;
            pg_sys::getTypeOutputInfo(oid, &mut out, &mut varlena);
            Some(CStr::from_ptr(pg_sys::OidOutputFunctionCall(out, datum)).to_string_lossy().into_owned())
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
        assert_eq!(round_trip("jsonb", json!({"result_state": "SUCCESS", "life_cycle_state": "TERMINATED"})).as_deref(), Some("{\"result_state\": \"SUCCESS\", \"life_cycle_state\": \"TERMINATED\"}"));
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

    #[pg_test]
    fn the_jsonb_fast_path_builds_what_jsonb_in_builds() {
        let cases = [
            r#"{"life_cycle_state":"TERMINATED","result_state":"SUCCESS"}"#,
            r#"{"b":1,"a":[1,-2,{"c":null,"d":true}],"e":{},"f":[],"a2":"x\"y\u00e9\n"}"#,
            r#"{"k":1,"k":2}"#,
            r#"{"id":1234567890123456,"neg":-9223372036854775808}"#,
            r#""just a string""#,
            "42",
            "true",
            "null",
            "[]",
            r#"{"é":"ü","emoji":"\ud83d\ude00"}"#,
        ];
        for text in cases {
            let fast = unsafe { crate::convert::jsonb::jsonb_datum(text) }.expect(text);
            let ours = unsafe {
                let (mut out, mut varlena) = (pg_sys::InvalidOid, false);
                pg_sys::getTypeOutputInfo(pg_sys::JSONBOID, &mut out, &mut varlena);
                CStr::from_ptr(pg_sys::OidOutputFunctionCall(out, fast)).to_string_lossy().into_owned()
            };
            let reference = Spi::get_one::<String>(&format!("SELECT ($${text}$$::jsonb)::text")).unwrap().unwrap();
            assert_eq!(ours, reference, "{text}");
        }
        // Exact decimals, huge numbers and NUL characters are left to jsonb_in.
        for text in [r#"{"x":1.5}"#, "18446744073709551616", r#"{"s":"a\u0000b"}"#, "{oops"] {
            assert!(unsafe { crate::convert::jsonb::jsonb_datum(text) }.is_none(), "{text}");
        }
    }

    #[pg_test]
    fn cells_for_missing_fields_are_null() {
        assert_eq!(convert(None, crate::convert::TargetType::Jsonb), Ok(Cell::Null));
    }
}
