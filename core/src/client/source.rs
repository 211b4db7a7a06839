//! Where a scan's listings come from: the combinations of the values its query gave, or one set
//! per item of a parent listing (every clean room's runs) when a required column has no value.
//!
//! A parent item is followed only when it can be: a DELETED room is skipped (the resource
//! definitions say which items have nothing to list), an item whose value cannot be requested
//! (a null or non-string name, "" or "..") is skipped with a notice that the backend shows as a
//! WARNING, and a filter from the backend (conditions on the columns the parent gives) may
//! rule it out before any request. Nothing else shrinks the result: every other failure is an
//! error.

use super::error::ApiError;
use super::listing::{FetchConfig, Listing};
use super::pages::Page;
use super::request::{GivenValues, Target, Targets};
use super::request_error::RequestError;
use super::runtime::Interrupts;
use super::workspace::Endpoint;
use crate::resources::{Resource, Skip, Source};
use std::collections::HashMap;
use std::sync::Mutex;

/// Decides, on the backend, whether a parent item's listings are made: it gets the values the
/// item gives to the scan's columns (`clean_room_name`, `deployment_name`), `None` for NULL.
/// Shared, so that one filter serves every rescan of the scan that made it.
pub type ParentFilter = std::rc::Rc<std::cell::RefCell<dyn FnMut(&[(&str, Option<&str>)]) -> bool>>;

/// What a scan lists: its resource and workspace, the values its query gave, and its limits.
pub struct Request<'a> {
    pub resource: &'static Resource,
    pub endpoint: &'a Endpoint,
    pub page_size: Option<u32>,
    pub given: Vec<GivenValues>,
    pub max_listings: usize,
    /// Without values for its required columns, list the resource's parent (else an error).
    pub list_parents: bool,
    /// The query has a condition on the workspace column (deployment_name) that it could not
    /// send: every deployment the server may read must be read, so it must know them.
    pub deployment_unbound: bool,
}

/// Where a scan's listings come from.
pub enum ListingSource {
    /// Every combination of the values the query gave (the next one to start, counted).
    Given(Targets, usize),
    /// Each item of a parent listing gives the values of the missing request columns.
    PerParent(Box<PerParent>),
}

/// Listings of a resource made per item of its parent's listing (every clean room's runs).
pub struct PerParent {
    parent: Listing,
    /// Per mapped column: where its value is in a parent item, and which column it gives.
    values: Vec<(ParentValue, &'static str)>,
    /// The parent field a skip rule reads (its index among the wanted fields), and the rule.
    skip: Option<(usize, &'static Skip)>,
    child: Child,
    /// The listings of the current parent item, and the next of them to start.
    current: Option<(Targets, usize)>,
    /// Listings made so far (each gets its own index).
    made: usize,
    counts: ParentCounts,
    /// What the backend should be told (items skipped because they cannot be requested).
    notices: Vec<String>,
    filter: Option<ParentFilter>,
    /// Where the parent's size is remembered for planning.
    memory_key: (String, &'static str),
}

/// How many parent items a fan-out saw, and what became of them.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ParentCounts {
    pub listed: u64,
    /// Not followed: the resource definition's skip rule (a DELETED room).
    pub skipped: u64,
    /// Not followed: a value that cannot be requested (warned about).
    pub unusable: u64,
    /// Not followed: the backend's filter ruled them out.
    pub filtered: u64,
}

impl std::ops::AddAssign for ParentCounts {
    fn add_assign(&mut self, o: ParentCounts) {
        self.listed += o.listed;
        self.skipped += o.skipped;
        self.unusable += o.unusable;
        self.filtered += o.filtered;
    }
}

enum ParentValue {
    /// Wanted field number n of the parent's items.
    Field(usize),
    /// A value the parent's listing was requested with.
    Echo(&'static str),
}

/// What a child listing is made from, besides the parent item's values.
struct Child {
    resource: &'static Resource,
    endpoint: Endpoint,
    page_size: Option<u32>,
    given: Vec<GivenValues>,
    max_listings: usize,
}

impl ListingSource {
    /// The listings of `request`: those its values give, or one set per item of the parent's
    /// listing when a required column has no value (and `list_parents` allows it). `config` is
    /// how the scan fetches; a parent is listed the same way, for its own fields.
    pub fn new(request: Request, config: &FetchConfig) -> Result<ListingSource, RequestError> {
        let has = |column: &str| request.given.iter().any(|g| g.column == column);
        let endpoint = request.endpoint;
        let workspace_unsent = request.resource.workspace_column().is_some_and(|c| !has(c));
        if request.deployment_unbound && workspace_unsent && endpoint.workspace.is_template() && endpoint.allowed_deployments.is_none() {
            return Err(RequestError::UnboundDeployment);
        }
        let Some(parent) = request.resource.parent_to_list(has, request.list_parents) else {
            let targets = Targets::new(request.resource, request.endpoint, request.page_size, &request.given, request.max_listings)?;
            return Ok(ListingSource::Given(targets, 0));
        };
        // The query's own values (a page_size, a notebook_name) are checked once, before any
        // request: a value that cannot be sent is the query's error, not each parent item's.
        super::request::check_given(request.resource, request.endpoint, &request.given)?;
        // The query's values for the mapped columns narrow the parent's listing where the
        // parent takes them (deployment_name, say); all of them filter the parent's items.
        let parent_given = parent
            .columns
            .iter()
            .filter(|(from, _)| parent.resource.param(from).is_some())
            .flat_map(|(from, to)| {
                request
                    .given
                    .iter()
                    .filter(move |g| g.column == *to)
                    .map(move |g| GivenValues { column: from.to_string(), values: g.values.clone() })
            })
            .collect();
        let mut fields: Vec<&'static str> = Vec::new();
        let values = parent
            .columns
            .iter()
            .map(|(from, to)| {
                let def = parent.resource.column(from).expect("resource definitions name parent columns that exist");
                let value = match def.source {
                    Source::Field(f) => {
                        fields.push(f);
                        ParentValue::Field(fields.len() - 1)
                    }
                    Source::Request => ParentValue::Echo(def.name),
                };
                (value, *to)
            })
            .collect();
        let skip = parent.skip.as_ref().map(|rule| {
            fields.push(rule.field);
            (fields.len() - 1, rule)
        });
        let parent_config = FetchConfig { list_key: parent.resource.list_key, fields: fields.into(), rows: None, ..config.clone() };
        let parent_request = Request {
            resource: parent.resource,
            endpoint: request.endpoint,
            page_size: None,
            given: parent_given,
            max_listings: request.max_listings,
            list_parents: true,
            deployment_unbound: false,
        };
        let parent_source = ListingSource::new(parent_request, &parent_config)?;
        Ok(ListingSource::PerParent(Box::new(PerParent {
            parent: Listing::new(parent_source, &parent_config, None),
            values,
            skip,
            child: Child {
                resource: request.resource,
                endpoint: request.endpoint.clone(),
                page_size: request.page_size,
                given: request.given,
                max_listings: request.max_listings,
            },
            current: None,
            made: 0,
            counts: ParentCounts::default(),
            notices: Vec::new(),
            filter: None,
            memory_key: (request.endpoint.workspace.as_str().to_string(), parent.resource.name),
        })))
    }

    /// Lets the backend rule out parent items before their listings are made.
    pub fn set_parent_filter(&mut self, filter: ParentFilter) {
        if let ListingSource::PerParent(p) = self {
            p.filter = Some(filter);
        }
    }

    /// The next listing to start; `None` when there is none left.
    pub(super) fn next(&mut self, interrupts: &dyn Interrupts) -> Result<Option<Target>, ApiError> {
        // Every value was checked when the targets were made: `get` cannot fail.
        let internal = |e: RequestError| ApiError::Internal { problem: e.to_string() };
        match self {
            ListingSource::Given(targets, next) => {
                if *next >= targets.len() {
                    return Ok(None);
                }
                *next += 1;
                targets.get(*next - 1).map(Some).map_err(internal)
            }
            ListingSource::PerParent(p) => loop {
                if let Some((targets, next)) = &mut p.current {
                    if *next < targets.len() {
                        if p.made >= p.child.max_listings {
                            return Err(ApiError::TooManyListings { max: p.child.max_listings });
                        }
                        *next += 1;
                        let mut target = targets.get(*next - 1).map_err(internal)?;
                        (target.index, target.gone_is_empty) = (p.made, true);
                        p.made += 1;
                        return Ok(Some(target));
                    }
                    p.current = None;
                }
                let Some((page, item, parent_target)) = p.parent.next_item(interrupts)? else {
                    remember_size(&p.memory_key, p.counts.listed - p.counts.skipped);
                    return Ok(None);
                };
                p.counts.listed += 1;
                if let Some((field, rule)) = p.skip {
                    let value = page.field(item, field).map(serde_json::from_str::<String>);
                    if matches!(value, Some(Ok(v)) if rule.values.contains(&v.as_str())) {
                        p.counts.skipped += 1;
                        continue;
                    }
                }
                let mapped = match item_values(&p.values, page, item, parent_target) {
                    Ok(mapped) => mapped,
                    Err((column, shown)) => {
                        p.unusable(column, &shown);
                        continue;
                    }
                };
                if let Some(filter) = &p.filter {
                    let values: Vec<(&str, Option<&str>)> = mapped.iter().map(|(c, v)| (*c, v.as_deref())).collect();
                    if !(filter.borrow_mut())(&values) {
                        p.counts.filtered += 1;
                        continue;
                    }
                }
                let mut given = p.child.given.clone();
                given.extend(
                    mapped.into_iter().filter_map(|(column, v)| Some(GivenValues { column: column.to_string(), values: vec![v?] })),
                );
                let c = &p.child;
                match Targets::new(c.resource, &c.endpoint, c.page_size, &given, usize::MAX) {
                    // An item the API lists nothing for (a table's revisions).
                    Ok(targets) if targets.is_empty() => p.counts.skipped += 1,
                    Ok(targets) => p.current = Some((targets, 0)),
                    Err(RequestError::Unusable { column, value }) => p.unusable(column, &format!("{:?}", crate::text::excerpt(&value, 64))),
                    Err(e) => {
                        return Err(ApiError::BadResponse {
                            path: format!("GET {}", c.resource.path),
                            problem: format!("a listed item cannot be followed: {e}"),
                        });
                    }
                }
            },
        }
    }

    /// Requests, pages and bytes of the parent listings (their items are not rows).
    pub(super) fn parent_stats(&self) -> super::Stats {
        match self {
            ListingSource::Given(..) => super::Stats::default(),
            // The closest parent's counts only: a grandparent's items are not what EXPLAIN
            // reports as skipped.
            ListingSource::PerParent(p) => super::Stats { items: 0, parents: p.counts, ..p.parent.stats() },
        }
    }

    /// Notices for the backend since the last call, the parents' own included.
    pub fn take_notices(&mut self) -> Vec<String> {
        match self {
            ListingSource::Given(..) => Vec::new(),
            ListingSource::PerParent(p) => {
                let mut notices = p.parent.take_notices();
                notices.append(&mut p.notices);
                notices
            }
        }
    }

    /// A listing per parent item opens one at a time under a LIMIT, so that `LIMIT 5` reads
    /// the first listings only.
    pub(super) fn per_parent(&self) -> bool {
        matches!(self, ListingSource::PerParent(_))
    }
}

/// The most notices one fan-out (or one scan's own listings) keeps for the backend: past it
/// they are counted, not kept.
pub(super) const MAX_NOTICES: usize = 20;

impl PerParent {
    /// An item that cannot be followed: counted, and the backend is told (its rows are missing).
    fn unusable(&mut self, column: &str, shown: &str) {
        self.counts.unusable += 1;
        if self.notices.len() < MAX_NOTICES {
            self.notices.push(format!(
                "skipped an item of {} whose {column} is {shown}: it cannot name a request, so its rows are missing",
                self.parent_name()
            ));
        }
    }

    fn parent_name(&self) -> &'static str {
        self.memory_key.1
    }
}

/// The values a parent item gives to the child's columns (`None`: the parent's listing had
/// none, as on a server without deployment_name, and neither has the child's, which goes to
/// the same workspace); `Err` names a column whose value cannot be requested.
#[allow(clippy::type_complexity)]
fn item_values(
    values: &[(ParentValue, &'static str)],
    page: &Page,
    item: usize,
    parent_target: &Target,
) -> Result<Vec<(&'static str, Option<String>)>, (&'static str, String)> {
    values
        .iter()
        .map(|(value, to)| match value {
            ParentValue::Field(i) => {
                let raw = page.field(item, *i);
                match raw.map(serde_json::from_str::<serde_json::Value>) {
                    Some(Ok(serde_json::Value::String(s))) => Ok((*to, Some(s))),
                    _ => Err((*to, raw.map(|r| crate::text::excerpt(r, 64)).unwrap_or_else(|| "missing".into()))),
                }
            }
            ParentValue::Echo(column) => Ok((*to, parent_target.echo_value(column).map(str::to_string))),
        })
        .collect()
}

/// The number of items each parent listing gave when last read to its end in this backend, by
/// (workspace URL, parent resource): what planning estimates a fan-out's size from.
static SIZES: Mutex<Option<HashMap<(String, &'static str), u64>>> = Mutex::new(None);

/// The most distinct parent listings remembered (one per server and parent resource in practice).
const MAX_REMEMBERED: usize = 256;

fn remember_size(key: &(String, &'static str), items: u64) {
    let mut sizes = SIZES.lock().unwrap_or_else(|e| e.into_inner());
    let sizes = sizes.get_or_insert_with(HashMap::new);
    if sizes.len() < MAX_REMEMBERED || sizes.contains_key(key) {
        sizes.insert(key.clone(), items);
    }
}

/// How many items the parent listing `resource` of `workspace` gave when last read whole.
pub fn remembered_size(workspace: &str, resource: &str) -> Option<u64> {
    let sizes = SIZES.lock().unwrap_or_else(|e| e.into_inner());
    sizes.as_ref()?.iter().find(|((w, r), _)| w == workspace && *r == resource).map(|(_, n)| *n)
}
