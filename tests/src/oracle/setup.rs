//! One configuration of the matrix: the simulator's world, the server's options, and in the
//! database the foreign tables (`f_<table>`, and `p_task_runs` partitioned by room), the truth
//! tables (`truth_<table>`, `truth_<table>_default`) and the local tables queries join with.

use super::expect::{DeploymentMode, Fault};
use super::tables::{Table, ALL, TASK_RUNS};
use super::truth::{Truth, Workspace};
use crate::World;
use databricks_sim::data::Dataset;
use databricks_sim::{spawn, Config};
use serde_json::{json, Value};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Url {
    /// `http://127.0.0.1:PORT`: an IP address, no deployment implied.
    Ip,
    /// `http://localhost:PORT`: a host name without a dot, no deployment implied.
    Localhost,
    /// `http://127.0.0.1:PORT/ws/{deployment_name}`, with deployments a (the fixture) and b.
    Template,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Realism {
    Fixture,
    /// A room the listing names that is gone (`ghost`): no rows for it.
    VanishedRoom,
    /// A DELETED room (`retired`, with runs): skipped.
    DeletedRoom,
    /// Listing items named null, 7, "", "." and "..": skipped.
    UnusableNames,
    /// acme's runs answer 404 RESOURCE_DOES_NOT_EXIST on every page after the first.
    LaterPage404,
    /// `/task-runs` answers 404 ENDPOINT_NOT_FOUND everywhere.
    NoTaskRunsEndpoint,
}

#[derive(Clone, Copy, Debug)]
pub struct Configuration {
    pub name: &'static str,
    pub url: Url,
    pub deployment_name: Option<&'static str>,
    /// `allowed_deployments 'a,b'` (template URL only).
    pub allowed: bool,
    pub list_parents: bool,
    pub cache_ttl: bool,
    pub page_size: Option<usize>,
    pub realism: Realism,
}

impl Configuration {
    /// A fixed IP URL with deployment_name 'dbc-x', the fixture, default options.
    pub const fn base(name: &'static str) -> Configuration {
        Configuration {
            name,
            url: Url::Ip,
            deployment_name: Some("dbc-x"),
            allowed: false,
            list_parents: true,
            cache_ttl: false,
            page_size: None,
            realism: Realism::Fixture,
        }
    }

    pub fn deployment_mode(&self) -> DeploymentMode {
        match (self.url, self.allowed) {
            (Url::Template, true) => DeploymentMode::Allowed,
            (Url::Template, false) => DeploymentMode::DefaultOnly,
            _ => DeploymentMode::Fixed,
        }
    }

    pub fn fault(&self) -> Fault {
        match self.realism {
            Realism::LaterPage404 => Fault::LaterPage404 { room: ACME, table: TASK_RUNS.name },
            Realism::NoTaskRunsEndpoint => Fault::EndpointMissing { table: super::tables::CLEAN_ROOM_TASK_RUNS.name },
            _ => Fault::None,
        }
    }

    /// Whether the room listing holds rooms a join through `clean_rooms` cannot follow.
    pub fn lists_unfollowable_rooms(&self) -> bool {
        matches!(self.realism, Realism::VanishedRoom | Realism::DeletedRoom | Realism::UnusableNames)
    }

    /// Values conditions on deployment_name use (none that a server would refuse).
    pub fn deployment_values(&self) -> Vec<String> {
        match (self.url, self.deployment_name) {
            (Url::Template, _) => vec!["a".into(), "b".into()],
            (_, Some(d)) => vec![d.into(), "other".into()],
            (_, None) => vec!["dbc-x".into()],
        }
    }
}

pub const ACME: &str = "acme_x_retailer";

/// A configuration set up in the database, with what its queries may use.
pub struct Setup {
    pub world: World,
    pub truth: Truth,
    /// The rooms the local `want_*` tables hold (distinct, sorted).
    pub want: Vec<String>,
}

fn fixture() -> Dataset {
    Dataset::from_fixture_json(include_str!("../../../simulator/fixtures/cleanrooms.json")).expect("the shipped fixture")
}

/// Deployment b: the fixture's room names (a room a query names must exist in every
/// deployment it reads, or the query fails), each with generated runs of its own and nothing
/// else.
fn deployment_b() -> Dataset {
    let mut b = Dataset::default();
    for (k, name) in fixture().rooms.keys().enumerate() {
        b.add_synthetic(name, [30, 2, 0, 5][k % 4]);
    }
    b
}

fn dataset(realism: Realism) -> Dataset {
    let mut d = fixture();
    match realism {
        Realism::VanishedRoom => d.add_vanished_room("ghost"),
        Realism::DeletedRoom => d.add_deleted_room("retired", 5),
        Realism::UnusableNames => d.add_unusable_room_items(),
        _ => {}
    }
    d
}

fn faults(realism: Realism) -> Option<Value> {
    match realism {
        Realism::LaterPage404 => Some(json!({
            "room": ACME, "endpoint": "runs", "pages": "later", "kind": "status", "status": 404, "error_code": "RESOURCE_DOES_NOT_EXIST"
        })),
        Realism::NoTaskRunsEndpoint => {
            Some(json!({"endpoint": "task-runs", "kind": "status", "status": 404, "error_code": "ENDPOINT_NOT_FOUND"}))
        }
        _ => None,
    }
}

pub fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

impl Setup {
    pub fn new(c: &Configuration) -> Setup {
        let mut config = Config::with_fixture();
        config.data = dataset(c.realism);
        // Runs come in one page, as the service sends them; configurations about pages (a
        // page_size, a fault on a later page) ask the simulator to page them.
        config.paged_runs = c.page_size.is_some() || c.realism == Realism::LaterPage404;
        let truth = if c.url == Url::Template {
            let (a, b) = (fixture(), deployment_b());
            let truth = Truth::of(&[Workspace { deployment: Some("a"), data: &a }, Workspace { deployment: Some("b"), data: &b }]);
            config.deployments.insert("a".into(), a);
            config.deployments.insert("b".into(), b);
            truth
        } else {
            Truth::of(&[Workspace { deployment: c.deployment_name, data: &config.data }])
        };
        let sim = spawn(config);
        let options = server_options(c, sim.addr.port());
        let world = World::with_server_options(&format!("oracle_{}", c.name), sim, &options);
        let want = truth.rooms[1..].to_vec();
        let mut setup = Setup { world, truth, want };
        setup.create_tables(c);
        if let Some(fault) = faults(c.realism) {
            setup.world.fault(fault);
        }
        setup
    }

    fn sql(&mut self, sql: &str) {
        self.world.db.batch_execute(sql).unwrap_or_else(|e| panic!("{sql}: {}", crate::DbError::from(e)));
    }

    fn create_tables(&mut self, c: &Configuration) {
        let server = self.world.server.clone();
        let table_options = |t: &Table| match (c.page_size, t.max_page_size) {
            (Some(n), Some(max)) => format!("resource '{}', page_size '{}'", t.name, n.min(max)),
            _ => format!("resource '{}'", t.name),
        };
        let default_deployment = literal(c.deployment_name.unwrap_or("a"));
        for t in ALL {
            self.sql(&format!(
                "CREATE FOREIGN TABLE f_{n} ({cols}) SERVER {server} OPTIONS ({opts});
                 CREATE TABLE truth_{n} ({cols});
                 CREATE VIEW truth_{n}_default AS SELECT * FROM truth_{n} WHERE deployment_name = {default_deployment};",
                n = t.name,
                cols = t.columns,
                opts = table_options(t)
            ));
            self.load_truth(t);
        }
        self.sql(&format!(
            "CREATE TABLE p_task_runs ({cols}) PARTITION BY LIST (clean_room_name);
             CREATE FOREIGN TABLE p_task_runs_first PARTITION OF p_task_runs FOR VALUES IN ({first}) SERVER {server} OPTIONS ({opts});
             CREATE FOREIGN TABLE p_task_runs_rest PARTITION OF p_task_runs DEFAULT SERVER {server} OPTIONS ({opts});",
            cols = TASK_RUNS.columns,
            first = literal(&self.truth.rooms[0]),
            opts = table_options(&TASK_RUNS)
        ));
        self.create_local_tables();
    }

    fn load_truth(&mut self, t: &Table) {
        let rows = Value::Array(self.truth.rows[t.name].clone());
        let sql = format!("INSERT INTO truth_{n} SELECT * FROM jsonb_populate_recordset(NULL::truth_{n}, $1)", n = t.name);
        self.world.db.execute(&sql, &[&rows]).unwrap_or_else(|e| panic!("{sql}: {}", crate::DbError::from(e)));
    }

    /// `want_a` (analyzed), `want_n` (never analyzed), `want_t` (temporary, never analyzed):
    /// the same rooms, the last twice; `deps`: the deployments a and b.
    fn create_local_tables(&mut self) {
        let mut values: Vec<String> = self.want.iter().map(|r| format!("({})", literal(r))).collect();
        values.push(values.last().cloned().expect("at least two rooms"));
        let values = values.join(", ");
        self.sql(&format!(
            "CREATE TABLE want_a (name text); INSERT INTO want_a VALUES {values}; ANALYZE want_a;
             CREATE TABLE want_n (name text); INSERT INTO want_n VALUES {values};
             CREATE TEMP TABLE want_t (name text); INSERT INTO want_t VALUES {values};
             CREATE TABLE deps (name text); INSERT INTO deps VALUES ('a'), ('b'); ANALYZE deps;
             SET statement_timeout = '60s';"
        ));
    }
}

fn server_options(c: &Configuration, port: u16) -> String {
    let mut options = vec![];
    let port_url = |host: &str| format!("http://{host}:{port}");
    options.push(match c.url {
        Url::Ip => format!("workspace_url '{}'", port_url("127.0.0.1")),
        Url::Localhost => format!("workspace_url '{}'", port_url("localhost")),
        Url::Template => format!("workspace_url '{}/ws/{{deployment_name}}'", port_url("127.0.0.1")),
    });
    if let Some(d) = c.deployment_name {
        options.push(format!("deployment_name '{d}'"));
    }
    if c.allowed {
        options.push("allowed_deployments 'a,b'".into());
    }
    if !c.list_parents {
        options.push("list_parents 'false'".into());
    }
    if c.cache_ttl {
        options.push("cache_ttl '300'".into());
    }
    options.join(", ")
}
