//! The harness for end-to-end tests: a real PostgreSQL (with databricks_fdw installed, started by
//! `scripts/test.sh`), a simulator per test on its own port, and a client connection over TCP
//! that uses the extended query protocol (Parse/Bind/Execute with parameters), as drivers do.
//!
//! Connection: `DATABRICKS_FDW_TEST_PG`, a libpq-style connection string
//! (default `host=127.0.0.1 port=55433 user=postgres dbname=e2e`).

pub mod writes;

use databricks_sim::{spawn, Config, SimHandle};
use postgres::{Client, NoTls};
use serde_json::Value;
use std::sync::{Arc, Mutex};

pub mod oracle;

pub use databricks_sim::log::Entry;

pub const TOKEN: &str = "dapi-simulator-token";

/// The task_runs columns of the foundation issue, in its order.
pub const TASK_RUNS_COLUMNS: &str = "clean_room_name text, deployment_name text, notebook_name text, notebook_etag text,
  notebook_updated_at bigint, notebook_job_run_state jsonb, output_schema_name text,
  output_schema_expiration_time bigint, shared_output_schema_name text,
  shared_output_schema_expiration_time bigint, run_duration bigint, start_time bigint,
  collaborator_job_run_info jsonb";

/// The fixture, with runs in pages of 25.
pub fn paged_config() -> Config {
    Config { paged_runs: true, ..Config::with_fixture() }
}

pub fn connection_string() -> String {
    std::env::var("DATABRICKS_FDW_TEST_PG").unwrap_or_else(|_| "host=127.0.0.1 port=55433 user=postgres dbname=e2e".into())
}

pub fn connect() -> Client {
    Client::connect(&connection_string(), NoTls).unwrap_or_else(|e| {
        panic!("cannot connect to the test cluster ({}): {e}; run the tests through scripts/test.sh", connection_string())
    })
}

/// One test's world: its own simulator, and in the database its own schema holding a server
/// that points at that simulator, a user mapping and a `task_runs` table.
pub struct World {
    pub sim: SimHandle,
    pub db: Client,
    pub schema: String,
    pub server: String,
}

impl World {
    pub fn new(name: &str) -> World {
        World::with_config(name, Config::with_fixture())
    }

    /// A world whose simulator sends runs in pages of 25 (the service sends a room's runs in one
    /// page): for tests of paging, page faults and LIMIT.
    pub fn paged(name: &str) -> World {
        World::with_config(name, paged_config())
    }

    pub fn with_config(name: &str, config: Config) -> World {
        World::with_simulator(name, spawn(config))
    }

    /// A world around a simulator started by the caller (a TLS one, say).
    pub fn with_simulator(name: &str, sim: SimHandle) -> World {
        let options = format!("workspace_url '{}', deployment_name 'dbc-abcd0123-a1bc'", sim.url());
        World::with_server_options(name, sim, &options)
    }

    /// A world whose server has exactly these options (`workspace_url '...', ...`).
    pub fn with_server_options(name: &str, sim: SimHandle, server_options: &str) -> World {
        let mut db = connect();
        let schema = format!("t_{name}");
        let server = format!("sim_{name}");
        db.batch_execute(&format!(
            "DROP SCHEMA IF EXISTS {schema} CASCADE;
             DROP SERVER IF EXISTS {server} CASCADE;
             CREATE SCHEMA {schema};
             SET search_path = {schema};
             CREATE SERVER {server} FOREIGN DATA WRAPPER databricks_fdw OPTIONS ({server_options});
             CREATE USER MAPPING FOR CURRENT_USER SERVER {server} OPTIONS (token '{TOKEN}');
             CREATE FOREIGN TABLE task_runs ({TASK_RUNS_COLUMNS}) SERVER {server} OPTIONS (resource 'task_runs');"
        ))
        .expect("set up the test schema");
        World { sim, db, schema, server }
    }

    /// The API requests the simulator has served so far.
    pub fn requests(&self) -> Vec<Entry> {
        self.sim.state.log.snapshot()
    }

    pub fn clear_requests(&self) {
        self.sim.state.reset_log();
    }

    /// Rows of a query, each column read as text (NULL as None).
    pub fn rows(&mut self, sql: &str) -> Vec<Vec<Option<String>>> {
        let messages = self.db.simple_query(sql).unwrap_or_else(|e| panic!("{sql}: {}", DbError::from(e)));
        messages
            .iter()
            .filter_map(|m| match m {
                postgres::SimpleQueryMessage::Row(r) => Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect()),
                _ => None,
            })
            .collect()
    }

    /// The plan of `sql`, as EXPLAIN prints it.
    pub fn explain(&mut self, sql: &str) -> String {
        self.plan_lines("", sql).join("\n")
    }

    /// The lines of `EXPLAIN (options) sql` (`options` empty: plain EXPLAIN).
    pub fn plan_lines(&mut self, options: &str, sql: &str) -> Vec<String> {
        let explain = if options.is_empty() { "EXPLAIN".to_string() } else { format!("EXPLAIN ({options})") };
        self.rows(&format!("{explain} {sql}")).into_iter().map(|r| r[0].clone().unwrap_or_default()).collect()
    }

    /// Arms a simulator fault, given as the JSON the control endpoint takes.
    pub fn fault(&self, json: Value) {
        self.sim.state.arm(serde_json::from_value(json).expect("a valid fault"));
    }

    /// Runs `sql` expecting an error; returns (SQLSTATE, message, detail, hint).
    pub fn error(&mut self, sql: &str) -> DbError {
        match self.db.batch_execute(sql) {
            Ok(()) => panic!("expected an error from: {sql}"),
            Err(e) => DbError::from(e),
        }
    }

    /// Creates the case-insensitive ICU collation `ci` in the test schema; `false` when the
    /// server was built without ICU (the relocatable builds used for some versions: tests that
    /// need it say they skip).
    pub fn create_icu_collation(&mut self) -> bool {
        match self.db.batch_execute("CREATE COLLATION ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false)") {
            Ok(()) => true,
            Err(e) if e.code().map(|c| c.code()) == Some("0A000") => false,
            Err(e) => panic!("CREATE COLLATION: {}", DbError::from(e)),
        }
    }

    /// From now on, the session's notices and warnings are collected (the connection is
    /// replaced by one that keeps them, in the same schema).
    pub fn collect_notices(&mut self) -> Notices {
        let notices = Notices::default();
        let kept = notices.clone();
        let mut config: postgres::Config = connection_string().parse().expect("a valid connection string");
        config
            .notice_callback(move |n| kept.0.lock().unwrap_or_else(|p| p.into_inner()).push(format!("{}: {}", n.severity(), n.message())));
        self.db = config.connect(NoTls).expect("connect");
        self.db.batch_execute(&format!("SET search_path = {}", self.schema)).expect("search_path");
        notices
    }

    /// Creates the foreign table `name (columns)` over `task_runs` on this world's server.
    pub fn create_task_runs_table(&mut self, name: &str, columns: &str) {
        let sql = format!("CREATE FOREIGN TABLE {name} ({columns}) SERVER {} OPTIONS (resource 'task_runs')", self.server);
        self.db.batch_execute(&sql).unwrap_or_else(|e| panic!("{sql}: {}", DbError::from(e)));
    }

    pub fn count(&mut self, sql: &str) -> i64 {
        self.db.query_one(sql, &[]).unwrap_or_else(|e| panic!("{sql}: {}", DbError::from(e))).get(0)
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = self
            .db
            .batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE; DROP SERVER IF EXISTS {} CASCADE;", self.schema, self.server));
    }
}

/// Notices and warnings a session received, as `SEVERITY: message`.
#[derive(Clone, Default)]
pub struct Notices(Arc<Mutex<Vec<String>>>);

impl Notices {
    /// Takes what arrived so far.
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

#[derive(Debug)]
pub struct DbError {
    pub code: String,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
    /// The CONTEXT lines.
    pub context: Option<String>,
}

impl DbError {
    /// Everything the client was told, for "does not leak" checks.
    pub fn everything(&self) -> String {
        format!("{} {} {:?} {:?} {:?}", self.code, self.message, self.detail, self.hint, self.context)
    }
}

impl From<postgres::Error> for DbError {
    fn from(e: postgres::Error) -> Self {
        match e.as_db_error() {
            Some(db) => DbError {
                code: db.code().code().to_string(),
                message: db.message().to_string(),
                detail: db.detail().map(str::to_string),
                hint: db.hint().map(str::to_string),
                context: db.where_().map(str::to_string),
            },
            None => DbError { code: String::new(), message: e.to_string(), detail: None, hint: None, context: None },
        }
    }
}

impl std::fmt::Display for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {} (detail: {:?}, hint: {:?})", self.code, self.message, self.detail, self.hint)
    }
}

/// The server log of the test cluster (`DATABRICKS_FDW_TEST_PGLOG`, set by scripts/test.sh).
fn server_log_path() -> String {
    std::env::var("DATABRICKS_FDW_TEST_PGLOG")
        .expect("DATABRICKS_FDW_TEST_PGLOG names the test cluster's log; run the tests through scripts/test.sh")
}

/// The part of the server log one session writes from now on: tests run in parallel against
/// one cluster, so a check on the whole log could be satisfied (or failed) by another test.
/// Lines are told apart by the backend's process id, which the log line prefix of a cluster
/// made by initdb (`%m [%p] `) carries; lines written before the mark are not read, so an
/// earlier session that had the same process id does not count.
pub struct SessionLog {
    path: String,
    start: u64,
    tag: String,
}

impl SessionLog {
    /// Marks the log for the session of `db`, from now on.
    pub fn mark(db: &mut Client) -> SessionLog {
        let path = server_log_path();
        let start = std::fs::metadata(&path).unwrap_or_else(|e| panic!("{path}: {e}")).len();
        let pid: i32 = db.query_one("SELECT pg_backend_pid()", &[]).expect("pg_backend_pid").get(0);
        SessionLog { path, start, tag: format!(" [{pid}] ") }
    }

    /// The session's lines written since the mark.
    pub fn lines(&self) -> Vec<String> {
        use std::io::{Read, Seek, SeekFrom};
        let mut file = std::fs::File::open(&self.path).unwrap_or_else(|e| panic!("{}: {e}", self.path));
        file.seek(SeekFrom::Start(self.start)).expect("seek in the server log");
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).expect("read the server log");
        String::from_utf8_lossy(&bytes).lines().filter(|l| l.contains(&self.tag)).map(str::to_string).collect()
    }
}

/// The whole server log since `start` (a byte offset), for what no single session writes: the
/// postmaster's own lines, such as a crashed backend's.
pub fn server_log_since(start: u64) -> String {
    let path = server_log_path();
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    String::from_utf8_lossy(bytes.get(start as usize..).unwrap_or_default()).into_owned()
}

/// The server log's length now: a start for [`server_log_since`].
pub fn server_log_len() -> u64 {
    let path = server_log_path();
    std::fs::metadata(&path).unwrap_or_else(|e| panic!("{path}: {e}")).len()
}

/// The runs of a fixture room, as the simulator serves them.
pub fn fixture_runs(room: &str) -> Vec<Value> {
    let fixture: Value = serde_json::from_str(include_str!("../../simulator/fixtures/cleanrooms.json")).unwrap();
    fixture["clean_rooms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == room)
        .map(|r| r["runs"].as_array().unwrap().clone())
        .unwrap_or_default()
}
