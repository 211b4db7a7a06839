//! Tests that run inside Postgres (`cargo pgrx test`): the validator, the catalog objects and
//! conversions into Datums. Scans against the simulator are tested end to end in `tests/`.

#[pgrx::pg_schema]
mod tests {
    use pgrx::prelude::*;

    #[pg_test]
    fn the_wrapper_exists() {
        let n = Spi::get_one::<i64>("SELECT count(*) FROM pg_foreign_data_wrapper WHERE fdwname = 'databricks_fdw'").unwrap();
        assert_eq!(n, Some(1));
    }
}
