//! The query generator. A query is SQL with `{t}` for its table (and `{c}` for clean_rooms in
//! a join of two foreign tables), rendered once with the foreign tables and once with the truth;
//! beside the SQL it records what the rules need: which rooms and deployments it names, and
//! whether it may stop before reading every row.

use super::rng::Rng;
use super::setup::literal;
use super::tables::{column_names, FilterKind, Table, ALL};
use super::truth::Truth;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rooms {
    /// Values the scan is given (=, IN, = ANY, a scalar subquery).
    Named(Vec<String>),
    /// Values a join or semi-join can give it; a plan may list every room instead.
    Joined(Vec<String>),
    /// OR of equalities, or an equality under COLLATE: sent or only filtered.
    Maybe(Vec<String>),
    /// A condition that cannot be sent (LIKE, IS NOT NULL), true for these rooms only.
    Filtered(Vec<String>),
    /// No value: every room is listed.
    All,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Deployments {
    None,
    /// =, IN, = ANY, OR of equalities: the deployments to read.
    Named(Vec<String>),
    /// A join or semi-join on deployment_name.
    Joined,
    /// Any other condition that mentions it (LIKE, <>, IS NULL).
    Other,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Plain,
    /// Prepared, executed six times (past the switch to a generic plan).
    Prepared,
    /// Prepared under plan_cache_mode = force_generic_plan.
    Generic,
    /// DECLARE, then FETCH in chunks.
    Cursor,
}

#[derive(Clone)]
pub struct Query {
    pub sql: String,
    /// `$1`, `$2`, ...: each a text[].
    pub params: Vec<Vec<String>>,
    pub table: &'static Table,
    pub rooms: Rooms,
    pub deployments: Deployments,
    /// A LIMIT without a sort, or a semi/anti join with the foreign table inside.
    pub stops_early: bool,
    /// A pushed filter that makes the API send fewer pages.
    pub narrows: bool,
    pub mode: Mode,
    /// A planner setting switched off for this query.
    pub setting: Option<&'static str>,
    /// Whether task_runs is read through `p_task_runs`, partitioned by room.
    pub partitioned: bool,
}

/// What the generator may use, from the configuration.
pub struct Context<'a> {
    pub truth: &'a Truth,
    pub want: &'a [String],
    pub deployment_values: Vec<String>,
    /// Percent of queries with a condition on deployment_name.
    pub deployment_percent: usize,
    /// Whether joins of clean_rooms with a per-room table fit the configuration.
    pub join_clean_rooms: bool,
}

/// The conditions of one query, collected while it is built.
struct Builder<'a, 'r> {
    ctx: &'a Context<'a>,
    rng: &'r mut Rng,
    table: &'static Table,
    conds: Vec<String>,
    params: Vec<Vec<String>>,
    rooms: Rooms,
    deployments: Deployments,
    narrows: bool,
}

impl Builder<'_, '_> {
    fn param(&mut self, values: Vec<String>) -> String {
        self.params.push(values);
        format!("${}::text[]", self.params.len())
    }

    fn list(values: &[String]) -> String {
        values.iter().map(|v| literal(v)).collect::<Vec<_>>().join(", ")
    }

    fn room_condition(&mut self) {
        let col = format!("t.{}", self.table.room_column);
        let rooms = &self.ctx.truth.rooms;
        let one = self.rng.pick(rooms).clone();
        let some = self.rng.some_of(rooms, 3);
        let (cond, named) = match self.rng.below(10) {
            0 => (format!("{col} = {}", literal(&one)), Rooms::Named(vec![one])),
            1 => (format!("{col} IN ({})", Self::list(&some)), Rooms::Named(some)),
            2 => (format!("{col} = ANY({})", self.param(some.clone())), Rooms::Named(some)),
            3 => {
                let first = self.ctx.want.iter().min().cloned().unwrap_or_default();
                (format!("{col} = (SELECT min(name) FROM want_a)"), Rooms::Named(vec![first]))
            }
            4 => (
                format!("({})", some.iter().map(|r| format!("{col} = {}", literal(r))).collect::<Vec<_>>().join(" OR ")),
                Rooms::Maybe(some),
            ),
            5 => (format!("{col} COLLATE \"C\" = {}", literal(&one)), Rooms::Maybe(vec![one])),
            6 => {
                let prefix: String = one.chars().take(3).collect();
                let matching = rooms.iter().filter(|r| r.starts_with(&prefix)).cloned().collect();
                (format!("{col} LIKE {}", literal(&format!("{prefix}%"))), Rooms::Filtered(matching))
            }
            7 => (format!("{col} IS NOT NULL"), Rooms::Filtered(rooms.clone())),
            _ => return,
        };
        self.conds.push(cond);
        self.rooms = named;
    }

    fn filter_condition(&mut self) {
        let filter = *self.rng.pick(self.table.filters);
        let col = format!("t.{}", filter.column);
        let cond = match filter.kind {
            FilterKind::Number => match self.rng.below(2) {
                0 => format!("{col} > {}", self.ctx.truth.median(self.table, filter.column)),
                _ => format!("{col} IS NULL"),
            },
            FilterKind::Json(field) => {
                let values = self.ctx.truth.json_values(self.table, filter.column, field);
                let v = if values.is_empty() { "none".to_string() } else { self.rng.pick(&values).clone() };
                format!("{col}->>'{field}' = {}", literal(&v))
            }
            FilterKind::Pushed | FilterKind::Text => {
                let mut values = self.ctx.truth.values(self.table, filter.column);
                values.push("no_such_value".into());
                let some = self.rng.some_of(&values, 2);
                let pushed = filter.kind == FilterKind::Pushed;
                match self.rng.below(6) {
                    0 => {
                        self.narrows |= pushed;
                        format!("{col} = {}", literal(&some[0]))
                    }
                    1 => {
                        self.narrows |= pushed;
                        format!("{col} IN ({})", Self::list(&some))
                    }
                    2 => {
                        self.narrows |= pushed;
                        format!("{col} = ANY({})", self.param(some))
                    }
                    3 => format!("{col} LIKE {}", literal(&format!("%{}%", some[0].chars().skip(1).take(3).collect::<String>()))),
                    4 => format!("{col} IS NULL"),
                    _ => format!("{col} COLLATE \"C\" > {}", literal(&some[0])),
                }
            }
        };
        self.conds.push(cond);
    }

    fn deployment_condition(&mut self) {
        let values = self.ctx.deployment_values.clone();
        let one = self.rng.pick(&values).clone();
        let col = "t.deployment_name";
        let (cond, kind) = match self.rng.below(9) {
            0 => (format!("{col} = {}", literal(&one)), Deployments::Named(vec![one])),
            1 => (format!("{col} IN ({})", Self::list(&values)), Deployments::Named(values)),
            2 => (format!("{col} = ANY({})", self.param(values.clone())), Deployments::Named(values)),
            3 => (
                format!("({})", values.iter().map(|d| format!("{col} = {}", literal(d))).collect::<Vec<_>>().join(" OR ")),
                Deployments::Named(values),
            ),
            4 => (format!("{col} LIKE {}", literal(&format!("{}%", &one[..1]))), Deployments::Other),
            5 => (format!("{col} <> {}", literal(&one)), Deployments::Other),
            6 => (format!("{col} IS NULL"), Deployments::Other),
            7 => (format!("{col} IN (SELECT name FROM deps)"), Deployments::Joined),
            _ => ("EXISTS (SELECT 1 FROM deps d WHERE d.name = t.deployment_name)".to_string(), Deployments::Joined),
        };
        self.conds.push(cond);
        self.deployments = kind;
    }

    fn conditions(&mut self, with_room: bool) {
        if with_room {
            self.room_condition();
        }
        if self.rng.chance(40) {
            self.filter_condition();
        }
        if self.rng.chance(self.ctx.deployment_percent) {
            self.deployment_condition();
        }
    }

    /// ` WHERE a AND b`, or ` AND a AND b` after a condition of the shape's own.
    fn clause(&self, keyword: &str) -> String {
        if self.conds.is_empty() {
            String::new()
        } else {
            format!(" {keyword} {}", self.conds.join(" AND "))
        }
    }
}

pub fn generate(ctx: &Context, rng: &mut Rng) -> Query {
    let table = *rng.pick(&ALL);
    let mut b = Builder {
        ctx,
        rng,
        table,
        conds: Vec::new(),
        params: Vec::new(),
        rooms: Rooms::All,
        deployments: Deployments::None,
        narrows: false,
    };
    let (sql, stops_early) = shape(&mut b);
    let rng = b.rng;
    let mode = *rng.pick(&[Mode::Plain, Mode::Plain, Mode::Plain, Mode::Plain, Mode::Plain, Mode::Prepared, Mode::Generic, Mode::Cursor]);
    let setting = if rng.chance(25) { Some(*rng.pick(&["enable_nestloop", "enable_hashjoin", "enable_mergejoin"])) } else { None };
    let partitioned = rng.chance(30);
    Query {
        sql,
        params: b.params,
        table,
        rooms: b.rooms,
        deployments: b.deployments,
        stops_early,
        narrows: b.narrows,
        mode,
        setting,
        partitioned,
    }
}

/// The query's shape: (SQL, whether it may stop before reading every row).
fn shape(b: &mut Builder) -> (String, bool) {
    let room = b.table.room_column;
    let all_columns = column_names(b.table).iter().map(|c| format!("t.{c}")).collect::<Vec<_>>().join(", ");
    let want = *b.rng.pick(&["want_a", "want_n", "want_t"]);
    let joined = Rooms::Joined(dedup(b.ctx.want));
    let pick = b.rng.below(20);
    // Shapes 6 to 15 and 18 take their rooms from `want` (or from none of them: the anti join
    // and the full join); the others from a condition.
    if (6..=15).contains(&pick) || pick == 18 {
        b.conditions(false);
        b.rooms = if pick == 14 || pick == 18 { Rooms::All } else { joined };
    } else {
        b.conditions(true);
    }
    if pick == 18 {
        // The conditions go in a FULL JOIN's ON clause, which restricts neither side's scan:
        // nothing is sent, and a mention of deployment_name is one that cannot be.
        b.narrows = false;
        if b.deployments != Deployments::None {
            b.deployments = Deployments::Other;
        }
    }
    let (and, wh) = (b.clause("AND"), b.clause("WHERE"));
    let limit = 1 + b.rng.below(20);
    let sql = match pick {
        0 => format!("SELECT * FROM {{t}} t{wh}"),
        1 => format!("SELECT count(*) FROM {{t}} t{wh}"),
        2 => format!("SELECT t.{room}, t.deployment_name, count(*) FROM {{t}} t{wh} GROUP BY 1, 2"),
        3 => format!("SELECT * FROM {{t}} t{wh} ORDER BY {all_columns} LIMIT {limit}"),
        4 => return (format!("SELECT count(*) FROM (SELECT 1 FROM {{t}} t{wh} LIMIT {limit}) s"), true),
        5 => format!("SELECT t.* FROM {{t}} t{wh}"),
        6 => format!("SELECT w.name, t.* FROM {want} w JOIN {{t}} t ON t.{room} = w.name{and}"),
        7 => format!("SELECT w.name, t.* FROM {want} w LEFT JOIN {{t}} t ON t.{room} = w.name{and}"),
        8 => format!(
            "SELECT w.name, x.* FROM {want} w, \
             LATERAL (SELECT * FROM {{t}} t WHERE t.{room} = w.name{and} ORDER BY {all_columns} LIMIT 2) x"
        ),
        9 => format!("SELECT w.name, (SELECT count(*) FROM {{t}} t WHERE t.{room} = w.name{and}) FROM {want} w"),
        10 => return (format!("SELECT w.name FROM {want} w WHERE EXISTS (SELECT 1 FROM {{t}} t WHERE t.{room} = w.name{and})"), true),
        11 => return (format!("SELECT w.name FROM {want} w WHERE NOT EXISTS (SELECT 1 FROM {{t}} t WHERE t.{room} = w.name{and})"), true),
        12 => format!("SELECT * FROM {{t}} t WHERE t.{room} IN (SELECT name FROM {want}){and}"),
        13 => format!("SELECT * FROM {{t}} t WHERE EXISTS (SELECT 1 FROM {want} w WHERE w.name = t.{room}){and}"),
        14 => format!("SELECT * FROM {{t}} t WHERE NOT EXISTS (SELECT 1 FROM {want} w WHERE w.name = t.{room}){and}"),
        15 if b.table.per_room && b.ctx.join_clean_rooms => {
            b.rooms = Rooms::Joined(b.ctx.truth.rooms.clone());
            return (
                format!(
                    "SELECT c.name, t.* FROM {{c}} c JOIN {{t}} t ON t.clean_room_name = c.name \
                     WHERE c.status = 'ACTIVE'{and}"
                ),
                false,
            );
        }
        15 => format!("SELECT w.name, t.* FROM {want} w JOIN {{t}} t ON t.{room} = w.name{and}"),
        16 => format!("SELECT DISTINCT t.{room}, t.deployment_name FROM {{t}} t{wh}"),
        17 => format!("WITH x AS MATERIALIZED (SELECT * FROM {{t}} t{wh}) SELECT * FROM x"),
        18 => format!("SELECT w.name, t.* FROM {want} w FULL JOIN {{t}} t ON t.{room} = w.name{and}"),
        _ => format!("SELECT * FROM {{t}} t{wh} UNION ALL SELECT * FROM {{t}} t{wh}"),
    };
    (sql, false)
}

fn dedup(values: &[String]) -> Vec<String> {
    let mut v = values.to_vec();
    v.sort();
    v.dedup();
    v
}
