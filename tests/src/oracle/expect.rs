//! The rules of issue #18 as predictions: for a query in a configuration, its rows must equal
//! the truth's, or it must fail with a given SQLSTATE, or (where the plan decides) either.

use super::query::{Deployments, Query, Rooms};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeploymentMode {
    /// A fixed workspace URL: deployment_name conditions only filter.
    Fixed,
    /// `{deployment_name}` URL with allowed_deployments: the union of them all.
    Allowed,
    /// `{deployment_name}` URL without: the named deployments, else the server's default.
    DefaultOnly,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    None,
    /// Every page after the first of `room`'s listing of `table` answers 404.
    LaterPage404 {
        room: &'static str,
        table: &'static str,
    },
    /// Every request of `table`'s endpoint answers 404 ENDPOINT_NOT_FOUND.
    EndpointMissing {
        table: &'static str,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    Rows,
    /// An error with this SQLSTATE (`None`: any).
    Error(Option<&'static str>),
    /// The plan decides: the truth's rows, or that error.
    RowsOrError(Option<&'static str>),
}

impl Expect {
    /// The stricter of two predictions.
    fn and(self, other: Expect) -> Expect {
        match (self, other) {
            (Expect::Error(c), _) | (_, Expect::Error(c)) => Expect::Error(c),
            (Expect::RowsOrError(c), _) | (_, Expect::RowsOrError(c)) => Expect::RowsOrError(c),
            _ => Expect::Rows,
        }
    }
}

pub struct Rules {
    pub deployments: DeploymentMode,
    pub list_parents: bool,
    pub fault: Fault,
}

impl Rules {
    pub fn expect(&self, q: &Query) -> Expect {
        self.for_rooms(q).and(self.for_deployments(q)).and(self.for_fault(q))
    }

    /// Whether the truth is the default deployment's rows alone.
    pub fn reads_default_only(&self, q: &Query) -> bool {
        self.deployments == DeploymentMode::DefaultOnly && q.deployments == Deployments::None
    }

    /// With list_parents off, a per-room table needs its rooms from the query.
    fn for_rooms(&self, q: &Query) -> Expect {
        if self.list_parents || !q.table.per_room {
            return Expect::Rows;
        }
        if super::tables::needs_more_than_the_room(q.table) {
            return Expect::Error(Some("HV002"));
        }
        match q.rooms {
            Rooms::Named(_) | Rooms::Joined(_) => Expect::Rows,
            Rooms::Maybe(_) => Expect::RowsOrError(Some("HV002")),
            Rooms::Filtered(_) | Rooms::All => Expect::Error(Some("HV002")),
        }
    }

    /// Without allowed_deployments, a condition on deployment_name that cannot be sent fails.
    fn for_deployments(&self, q: &Query) -> Expect {
        match (self.deployments, &q.deployments) {
            (DeploymentMode::DefaultOnly, Deployments::Other) => Expect::Error(Some("HV002")),
            (DeploymentMode::DefaultOnly, Deployments::Joined) => Expect::RowsOrError(Some("HV002")),
            _ => Expect::Rows,
        }
    }

    fn for_fault(&self, q: &Query) -> Expect {
        match self.fault {
            Fault::None => Expect::Rows,
            Fault::EndpointMissing { table } if q.table.name == table => Expect::Error(None),
            Fault::EndpointMissing { .. } => Expect::Rows,
            Fault::LaterPage404 { room, table } if q.table.name == table => {
                let named = |rooms: &Vec<String>| rooms.iter().any(|r| r == room);
                let reads_room = match &q.rooms {
                    Rooms::Named(r) => named(r),
                    // A plan may list every room instead of using the values, and a
                    // condition may or may not be checked on each room before its listing.
                    Rooms::Joined(r) | Rooms::Maybe(r) | Rooms::Filtered(r) if !named(r) => return Expect::RowsOrError(None),
                    _ => true,
                };
                match (reads_room, q.stops_early || q.narrows) {
                    (false, _) => Expect::Rows,
                    (true, false) => Expect::Error(None),
                    (true, true) => Expect::RowsOrError(None),
                }
            }
            Fault::LaterPage404 { .. } => Expect::Rows,
        }
    }
}
