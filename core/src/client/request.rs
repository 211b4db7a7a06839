//! From the values a query gave for a resource's request columns to the listings to follow: one
//! [`Target`] per combination of values, each a URL and the values its rows echo.

use super::request_error::RequestError;
use super::workspace::Endpoint;
use crate::resources::{Param, ParamPlace, Resource, Source};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use url::Url;

/// Everything but RFC 3986's unreserved characters is encoded, so that a value is always exactly
/// one path segment: `a/b`, `..`, `x?y=1` and `x#y` cannot address another endpoint.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// One listing to follow to its end.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// Which listing of its scan this is (unique within one set of [`Targets`]).
    pub index: usize,
    /// The workspace's base URL (where its token endpoint is, too).
    pub workspace: Url,
    /// The first page's URL (fixed query parameters included).
    pub url: Url,
    /// A single-object endpoint: the response is the one item (a 404 is no item).
    pub single: bool,
    /// A listing made for an item of a parent listing: a 404 means the item went away between
    /// the two listings, and is no rows rather than an error.
    pub gone_is_empty: bool,
    /// Values of the columns taken from the request rather than the response, as given.
    echo: Vec<(&'static str, Option<String>)>,
}

impl Target {
    /// The URL of the page that `token` starts (`None`: the first page).
    pub fn page_url(&self, token: Option<&str>) -> Url {
        let Some(t) = token else { return self.url.clone() };
        // A listing the query started at a token of its own: the next page's token replaces it.
        let mut url = self.url.clone();
        let kept: Vec<(String, String)> =
            self.url.query_pairs().filter(|(k, _)| k != "page_token").map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
        url.query_pairs_mut().clear().extend_pairs(kept).append_pair("page_token", t);
        url
    }

    /// The value the listing was requested with for `column` (`acme_x_retailer`).
    pub fn echo_value(&self, column: &str) -> Option<&str> {
        self.echo.iter().find(|(c, _)| *c == column).and_then(|(_, v)| v.as_deref())
    }
}

/// The values a query gave for one request column (several for `IN`). Several conditions on
/// one column (`x = 'a' AND x IN ('a','b')`, a partition's bound) give one entry each: a
/// listing is made only for values that all of them allow.
#[derive(Debug, Clone, PartialEq)]
pub struct GivenValues {
    pub column: String,
    pub values: Vec<String>,
}

/// The default of the option `max_listings`: the most listings one scan may make.
pub const DEFAULT_MAX_LISTINGS: usize = 10_000;

/// The listings of one scan: the cartesian product of each request column's values. A listing's
/// [`Target`] is made only when the scan gets to it, so a long IN list costs its values, not its
/// listings. Every value is checked when the set is made, before any request.
pub struct Targets {
    resource: &'static Resource,
    endpoint: Endpoint,
    page_size: Option<u32>,
    /// Per request column of the resource, in its order: the values to list (`None`: no value).
    choices: Vec<(&'static str, Vec<Option<String>>)>,
    len: usize,
}

impl Targets {
    pub fn new(
        resource: &'static Resource,
        endpoint: &Endpoint,
        page_size: Option<u32>,
        given: &[GivenValues],
        max_listings: usize,
    ) -> Result<Targets, RequestError> {
        let mut choices = Vec::with_capacity(resource.params.len());
        let mut len: usize = 1;
        for param in resource.params {
            let values = values_of(given, param.column);
            let listable = resource.listable.iter().find(|(c, _)| *c == param.column).map(|(_, v)| *v);
            let column_choices: Vec<Option<String>> = match (param.place, values) {
                (ParamPlace::Workspace, given) => deployments(endpoint, given),
                // A value the API lists nothing for gives no listing.
                (_, Some(values)) => values.into_iter().filter(|v| listable.is_none_or(|l| l.contains(&v.as_str()))).map(Some).collect(),
                (_, None) if param.required => return Err(RequestError::MissingValue { column: param.column }),
                (_, None) => vec![None],
            };
            for v in column_choices.iter().flatten() {
                check_value(resource, endpoint, param, v)?;
            }
            len = len.saturating_mul(column_choices.len());
            choices.push((param.column, column_choices));
        }
        if len > max_listings {
            return Err(RequestError::TooManyListings { needed: len, max: max_listings });
        }
        Ok(Targets { resource, endpoint: endpoint.clone(), page_size, choices, len })
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Listing `i` (below [`Targets::len`]); the last request column's values vary fastest.
    pub fn get(&self, index: usize) -> Result<Target, RequestError> {
        let mut i = index;
        let mut combo: Vec<(&'static str, Option<String>)> = vec![("", None); self.choices.len()];
        for (slot, (column, values)) in combo.iter_mut().zip(&self.choices).rev() {
            *slot = (column, values[i % values.len()].clone());
            i /= values.len();
        }
        target(self.resource, &self.endpoint, self.page_size, combo).map(|t| Target { index, ..t })
    }
}

/// Checks every value a query gave for `resource`'s request columns, before any request.
pub fn check_given(resource: &'static Resource, endpoint: &Endpoint, given: &[GivenValues]) -> Result<(), RequestError> {
    for param in resource.params {
        for g in given.iter().filter(|g| g.column == param.column) {
            for v in &g.values {
                check_value(resource, endpoint, param, v)?;
            }
        }
    }
    Ok(())
}

/// The values every condition on `column` allows, in the order the first one gave them, each
/// once (`None`: no condition on the column).
fn values_of(given: &[GivenValues], column: &str) -> Option<Vec<String>> {
    use std::collections::HashSet;
    let mut conditions = given.iter().filter(|g| g.column == column);
    let first = conditions.next()?;
    let others: Vec<HashSet<&str>> = conditions.map(|g| g.values.iter().map(String::as_str).collect()).collect();
    let mut seen = HashSet::new();
    Some(first.values.iter().filter(|v| others.iter().all(|o| o.contains(v.as_str())) && seen.insert(v.as_str())).cloned().collect())
}

/// Checks one value of a request column before any request is made.
fn check_value(resource: &Resource, endpoint: &Endpoint, param: &'static Param, v: &str) -> Result<(), RequestError> {
    match param.place {
        ParamPlace::Workspace => {
            check_allowed(endpoint, v)?;
            endpoint.workspace.resolve(Some(v)).map(|_| ())
        }
        ParamPlace::Query("page_size") => match v.parse::<u32>() {
            Ok(n) if n >= 1 && resource.max_page_size.is_some_and(|max| n <= max) => Ok(()),
            _ => Err(RequestError::Unusable { column: param.column, value: v.to_string() }),
        },
        ParamPlace::Path | ParamPlace::Query(_) => {
            let in_path = |template: &str| template.contains(&format!("{{{}}}", param.column));
            if in_path(resource.path) || resource.get.as_ref().is_some_and(|g| in_path(g.path)) {
                check_segment(param.column, v)?;
            }
            Ok(())
        }
    }
}

/// A deployment outside the server's `allowed_deployments` is refused before any request.
fn check_allowed(endpoint: &Endpoint, deployment: &str) -> Result<(), RequestError> {
    match &endpoint.allowed_deployments {
        Some(allowed) if !allowed.iter().any(|a| a == deployment) => {
            Err(RequestError::NotAllowed { deployment: deployment.to_string(), allowed: allowed.clone() })
        }
        _ => Ok(()),
    }
}

/// A value that is to be one path segment. URL parsers resolve "." and ".." even when encoded:
/// they would address another endpoint, and no Databricks object has such a name.
fn check_segment(column: &'static str, v: &str) -> Result<(), RequestError> {
    if v.is_empty() || v == "." || v == ".." {
        return Err(RequestError::Unusable { column, value: v.to_string() });
    }
    Ok(())
}

/// The deployments to ask: with a `{deployment_name}` URL, the values given, else every allowed
/// deployment (the table holds all of them), else the server's default; with a fixed URL, its
/// one deployment, and only if the query does not exclude it.
fn deployments(endpoint: &Endpoint, given: Option<Vec<String>>) -> Vec<Option<String>> {
    match given {
        None => match &endpoint.allowed_deployments {
            Some(allowed) if endpoint.workspace.is_template() => allowed.iter().cloned().map(Some).collect(),
            _ => vec![endpoint.deployment_name.clone()],
        },
        Some(values) if endpoint.workspace.is_template() => values.into_iter().map(Some).collect(),
        Some(values) => match &endpoint.deployment_name {
            Some(fixed) if values.contains(fixed) => vec![Some(fixed.clone())],
            _ => Vec::new(),
        },
    }
}

fn target(
    resource: &Resource,
    endpoint: &Endpoint,
    page_size: Option<u32>,
    combo: Vec<(&'static str, Option<String>)>,
) -> Result<Target, RequestError> {
    let value = |column: &str| combo.iter().find(|(c, _)| *c == column).and_then(|(_, v)| v.as_deref());
    let deployment = resource.params.iter().find(|p| p.place == ParamPlace::Workspace).and_then(|p| value(p.column));
    let workspace = endpoint.workspace.resolve(deployment)?;
    let get = resource.get.as_ref().filter(|g| value(g.column).is_some());
    let template = get.map(|g| g.path).unwrap_or(resource.path);
    let mut url = fill_path(&workspace, template, value)?;
    {
        let mut query = url.query_pairs_mut();
        for p in resource.params {
            match (p.place, value(p.column)) {
                // Paging belongs to listings, not to the single-object endpoint; an empty token
                // is the first page.
                (ParamPlace::Query("page_size" | "page_token"), _) if get.is_some() => {}
                (ParamPlace::Query("page_token"), Some("")) => {}
                (ParamPlace::Query(name), Some(v)) => {
                    query.append_pair(name, v);
                }
                _ => {}
            }
        }
        // The query's own page_size wins over the table's.
        if let (Some(n), None, None) = (page_size, get, value("page_size")) {
            query.append_pair("page_size", &n.to_string());
        }
    }
    if url.query() == Some("") {
        url.set_query(None);
    }
    let echo =
        resource.columns.iter().filter(|c| c.source == Source::Request).map(|c| (c.name, value(c.name).map(str::to_string))).collect();
    Ok(Target { index: 0, workspace, url, single: get.is_some(), gone_is_empty: false, echo })
}

/// The URL of `template` (an API path with `{column}` placeholders) in `workspace`: each
/// placeholder becomes its column's value, percent-encoded as exactly one segment.
pub fn fill_path<'v>(workspace: &Url, template: &'static str, value: impl Fn(&str) -> Option<&'v str>) -> Result<Url, RequestError> {
    let mut url = workspace.clone();
    let mut path = url.path().trim_end_matches('/').to_string();
    for segment in template.split('/').filter(|s| !s.is_empty()) {
        path.push('/');
        match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            Some(column) => {
                let v = value(column).ok_or(RequestError::MissingValue { column })?;
                check_segment(column, v)?;
                path.extend(utf8_percent_encode(v, SEGMENT));
            }
            None => path.push_str(segment),
        }
    }
    url.set_path(&path);
    Ok(url)
}

/// The base URL of the workspace one write goes to: the deployment its row names (else the
/// server's), which must be allowed, and with a fixed URL must be the URL's own.
pub fn workspace_for(endpoint: &Endpoint, deployment: Option<&str>) -> Result<Url, RequestError> {
    let Some(d) = deployment else {
        return endpoint.workspace.resolve(endpoint.deployment_name.as_deref());
    };
    check_allowed(endpoint, d)?;
    match (&endpoint.deployment_name, endpoint.workspace.is_template()) {
        (Some(fixed), false) if fixed != d => Err(RequestError::NotAllowed { deployment: d.to_string(), allowed: vec![fixed.clone()] }),
        _ => endpoint.workspace.resolve(Some(d)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources;

    /// The endpoint a server with these options has.
    fn server(pairs: &[(&str, &str)]) -> Endpoint {
        use super::super::workspace::{WorkspaceUrl, DEFAULT_WORKSPACE_URL};
        let get = |k: &str| pairs.iter().find(|(a, _)| *a == k).map(|(_, v)| v.to_string());
        let workspace = WorkspaceUrl::parse(get("workspace_url").as_deref().unwrap_or(DEFAULT_WORKSPACE_URL)).unwrap();
        let deployment_name = get("deployment_name").or_else(|| workspace.implied_deployment());
        let allowed_deployments = get("allowed_deployments").map(|v| v.split(',').map(|d| d.trim().to_string()).collect());
        Endpoint { workspace, deployment_name, allowed_deployments }
    }

    fn given(column: &str, values: &[&str]) -> GivenValues {
        GivenValues { column: column.into(), values: values.iter().map(|s| s.to_string()).collect() }
    }

    /// Every listing of a scan, made at once.
    fn targets(r: &'static Resource, s: &Endpoint, page_size: Option<u32>, given: &[GivenValues]) -> Result<Vec<Target>, RequestError> {
        let t = Targets::new(r, s, page_size, given, DEFAULT_MAX_LISTINGS)?;
        (0..t.len()).map(|i| t.get(i)).collect()
    }

    #[test]
    fn several_conditions_on_a_column_list_only_what_all_of_them_allow() {
        let r = resources::find("task_runs").unwrap();
        let s = server(&[("workspace_url", "http://127.0.0.1:9/ws/dbc-a")]);
        let t = targets(r, &s, None, &[given("clean_room_name", &["a", "b", "c", "b"]), given("clean_room_name", &["c", "b"])]).unwrap();
        let paths: Vec<&str> = t.iter().map(|t| t.url.path()).collect();
        assert_eq!(paths, ["/ws/dbc-a/api/2.0/clean-rooms/b/runs", "/ws/dbc-a/api/2.0/clean-rooms/c/runs"]);
        assert!(targets(r, &s, None, &[given("clean_room_name", &["a"]), given("clean_room_name", &["b"])]).unwrap().is_empty());
    }

    #[test]
    fn listings_are_made_lazily_and_bounded_by_max_listings() {
        let r = resources::find("task_runs").unwrap();
        let s = server(&[("workspace_url", "http://127.0.0.1:9/ws/dbc-a")]);
        let many: Vec<String> = (0..100_000).map(|i| format!("nb{i}")).collect();
        let names = GivenValues { column: "notebook_name".into(), values: many };
        let t = Targets::new(r, &s, None, &[given("clean_room_name", &["a"]), names.clone()], 100_000).unwrap();
        assert_eq!(t.len(), 100_000);
        assert_eq!(t.get(99_999).unwrap().url.query(), Some("notebook_name=nb99999"));
        let e = Targets::new(r, &s, None, &[given("clean_room_name", &["a", "b"]), names], 100_000).err().unwrap();
        assert_eq!(e, RequestError::TooManyListings { needed: 200_000, max: 100_000 });
    }

    #[test]
    fn one_room_one_request_with_echoed_values() {
        let r = resources::find("task_runs").unwrap();
        let s = server(&[("workspace_url", "https://dbc-abcd0123-a1bc.cloud.databricks.com")]);
        let t = targets(r, &s, Some(50), &[given("clean_room_name", &["acme_x_retailer"]), given("notebook_name", &["nb 1"])]).unwrap();
        assert_eq!(t.len(), 1);
        assert_eq!(
            t[0].url.as_str(),
            "https://dbc-abcd0123-a1bc.cloud.databricks.com/api/2.0/clean-rooms/acme_x_retailer/runs?notebook_name=nb+1&page_size=50"
        );
        assert_eq!(t[0].echo_value("clean_room_name"), Some("acme_x_retailer"));
        assert_eq!(t[0].echo_value("deployment_name"), Some("dbc-abcd0123-a1bc"));
        assert_eq!(t[0].page_url(Some("a b&c")).query(), Some("notebook_name=nb+1&page_size=50&page_token=a+b%26c"));
    }

    #[test]
    fn stackql_paging_columns_start_the_listing_and_set_the_page_size() {
        let r = resources::find("task_runs").unwrap();
        let s = server(&[("workspace_url", "http://127.0.0.1:9/ws/dbc-a")]);
        let t = targets(r, &s, Some(50), &[given("clean_room_name", &["a"]), given("page_size", &["7"]), given("page_token", &["tok 1"])])
            .unwrap();
        assert_eq!(t[0].url.query(), Some("page_size=7&page_token=tok+1"));
        assert_eq!(t[0].page_url(Some("tok2")).query(), Some("page_size=7&page_token=tok2"));
        assert_eq!((t[0].echo_value("page_size"), t[0].echo_value("page_token")), (Some("7"), Some("tok 1")));
        let t = targets(r, &s, Some(50), &[given("clean_room_name", &["a"]), given("page_token", &[""])]).unwrap();
        assert_eq!(t[0].url.query(), Some("page_size=50"));
        for bad in ["0", "-1", "x", "10001", ""] {
            assert!(targets(r, &s, None, &[given("clean_room_name", &["a"]), given("page_size", &[bad])]).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_notebooks_have_revisions() {
        let r = resources::find("asset_revisions").unwrap();
        let s = server(&[("workspace_url", "http://127.0.0.1:9/ws/dbc-a")]);
        let t = targets(
            r,
            &s,
            None,
            &[given("clean_room_name", &["r"]), given("asset_type", &["TABLE", "NOTEBOOK_FILE"]), given("name", &["n"])],
        )
        .unwrap();
        assert_eq!(
            t.iter().map(|t| t.url.path()).collect::<Vec<_>>(),
            ["/ws/dbc-a/api/2.0/clean-rooms/r/assets/NOTEBOOK_FILE/n/revisions"]
        );
        assert!(targets(r, &s, None, &[given("clean_room_name", &["r"]), given("asset_type", &["TABLE"]), given("name", &["n"])])
            .unwrap()
            .is_empty());
    }

    #[test]
    fn room_names_are_always_one_path_segment() {
        let r = resources::find("task_runs").unwrap();
        let s = server(&[("workspace_url", "http://127.0.0.1:9/ws/dbc-a")]);
        for (name, encoded) in [
            ("a/b", "a%2Fb"),
            ("../x", "..%2Fx"),
            ("x?y=1", "x%3Fy%3D1"),
            ("x#y", "x%23y"),
            ("partners/2024 é", "partners%2F2024%20%C3%A9"),
            ("...", "..."),
            ("%2e%2e", "%252e%252e"),
        ] {
            let t = targets(r, &s, None, &[given("clean_room_name", &[name])]).unwrap();
            assert_eq!(t[0].url.path(), format!("/ws/dbc-a/api/2.0/clean-rooms/{encoded}/runs"), "{name}");
            assert_eq!(t[0].url.query(), None);
        }
        for unusable in ["", ".", ".."] {
            assert!(targets(r, &s, None, &[given("clean_room_name", &[unusable])]).is_err(), "{unusable:?}");
        }
    }

    #[test]
    fn lists_multiply_and_deployments_choose_the_host() {
        let r = resources::find("task_runs").unwrap();
        let s = server(&[]);
        let t = targets(r, &s, None, &[given("clean_room_name", &["a", "b", "a"]), given("deployment_name", &["dbc-1", "dbc-2"])]).unwrap();
        let urls: Vec<String> = t.iter().map(|t| t.url.to_string()).collect();
        assert_eq!(
            urls,
            [
                "https://dbc-1.cloud.databricks.com/api/2.0/clean-rooms/a/runs",
                "https://dbc-2.cloud.databricks.com/api/2.0/clean-rooms/a/runs",
                "https://dbc-1.cloud.databricks.com/api/2.0/clean-rooms/b/runs",
                "https://dbc-2.cloud.databricks.com/api/2.0/clean-rooms/b/runs",
            ]
        );
        let e = targets(r, &s, None, &[given("clean_room_name", &["a"])]).unwrap_err();
        assert_eq!(e, RequestError::NoDeployment);
        assert!(targets(r, &s, None, &[given("clean_room_name", &["a"]), given("deployment_name", &["evil.com#"])]).is_err());
    }

    #[test]
    fn a_fixed_url_serves_only_its_own_deployment() {
        let r = resources::find("task_runs").unwrap();
        let s = server(&[("workspace_url", "https://dbc-a.cloud.databricks.com")]);
        assert_eq!(targets(r, &s, None, &[given("clean_room_name", &["x"]), given("deployment_name", &["dbc-b"])]).unwrap(), vec![]);
        assert_eq!(targets(r, &s, None, &[given("clean_room_name", &["x"]), given("deployment_name", &["dbc-a"])]).unwrap().len(), 1);
    }

    #[test]
    fn a_name_uses_the_single_object_endpoint() {
        let r = resources::find("clean_rooms").unwrap();
        let s = server(&[("workspace_url", "https://dbc-a.cloud.databricks.com")]);
        let all = targets(r, &s, Some(50), &[]).unwrap();
        assert_eq!((all[0].url.as_str(), all[0].single), ("https://dbc-a.cloud.databricks.com/api/2.0/clean-rooms?page_size=50", false));
        let one = targets(r, &s, Some(50), &[given("name", &["a/b"])]).unwrap();
        assert_eq!((one[0].url.as_str(), one[0].single), ("https://dbc-a.cloud.databricks.com/api/2.0/clean-rooms/a%2Fb", true));
        let r = resources::find("asset_revisions").unwrap();
        let t = targets(r, &s, None, &[given("clean_room_name", &["r"]), given("asset_type", &["NOTEBOOK_FILE"]), given("name", &["t 1"])])
            .unwrap();
        assert_eq!(t[0].url.path(), "/api/2.0/clean-rooms/r/assets/NOTEBOOK_FILE/t%201/revisions");
    }

    #[test]
    fn only_allowed_deployments_get_a_request() {
        let r = resources::find("task_runs").unwrap();
        let s = server(&[("allowed_deployments", "dbc-a,dbc-b"), ("deployment_name", "dbc-a")]);
        // Without a condition on deployment_name, the table holds every allowed deployment.
        let all = targets(r, &s, None, &[given("clean_room_name", &["x"])]).unwrap();
        assert_eq!(all.iter().map(|t| t.echo_value("deployment_name").unwrap()).collect::<Vec<_>>(), ["dbc-a", "dbc-b"]);
        assert_eq!(targets(r, &s, None, &[given("clean_room_name", &["x"]), given("deployment_name", &["dbc-b"])]).unwrap().len(), 1);
        assert_eq!(
            targets(r, &s, None, &[given("clean_room_name", &["x"]), given("deployment_name", &["dbc-b", "dbc-a"])]).unwrap().len(),
            2
        );
        let e = targets(r, &s, None, &[given("clean_room_name", &["x"]), given("deployment_name", &["dbc-a", "dbc-evil"])]).unwrap_err();
        assert_eq!(e, RequestError::NotAllowed { deployment: "dbc-evil".into(), allowed: vec!["dbc-a".into(), "dbc-b".into()] });
    }

    #[test]
    fn the_required_column_is_named_in_the_error() {
        let r = resources::find("task_runs").unwrap();
        let e = targets(r, &server(&[("deployment_name", "dbc-a")]), None, &[]).unwrap_err();
        assert_eq!(e, RequestError::MissingValue { column: "clean_room_name" });
    }
}
