//! From the values a query gave for a resource's request columns to the listings to follow: one
//! [`Target`] per combination of values, each a URL and the values its rows echo.

use crate::error::{FdwError, FdwResult};
use crate::options::ServerOptions;
use crate::resources::{ParamPlace, Resource};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use pgrx::PgSqlErrorCode::*;
use url::Url;

/// Everything but RFC 3986's unreserved characters is encoded, so that a value is always exactly
/// one path segment: `a/b`, `..`, `x?y=1` and `x#y` cannot address another endpoint.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// One listing to follow to its end.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// The workspace's base URL (where its token endpoint is, too).
    pub workspace: Url,
    /// The first page's URL (fixed query parameters included).
    pub url: Url,
    /// A single-object endpoint: the response is the one item (a 404 is no item).
    pub single: bool,
    /// Values of the columns taken from the request rather than the response, as JSON text
    /// (the form the conversion of every row takes).
    echo_json: Vec<(&'static str, Option<String>)>,
}

impl Target {
    /// The URL of the page that `token` starts (`None`: the first page).
    pub fn page_url(&self, token: Option<&str>) -> Url {
        let mut url = self.url.clone();
        if let Some(t) = token {
            url.query_pairs_mut().append_pair("page_token", t);
        }
        url
    }

    /// An echoed value as a JSON string (`"acme_x_retailer"`).
    pub fn echo_json(&self, column: &str) -> Option<&str> {
        self.echo_json.iter().find(|(c, _)| *c == column).and_then(|(_, v)| v.as_deref())
    }
}

/// The values a query gave for one request column (several for `IN`).
#[derive(Debug, Clone, PartialEq)]
pub struct GivenValues {
    pub column: String,
    pub values: Vec<String>,
}

/// Builds the listings for `given` values: the cartesian product of each column's values.
pub fn targets(resource: &Resource, server: &ServerOptions, page_size: Option<u32>, given: &[GivenValues], table: &str) -> FdwResult<Vec<Target>> {
    let values_of = |column: &str| given.iter().find(|g| g.column == column).map(|g| dedup(&g.values));
    let mut combos: Vec<Vec<(&'static str, Option<String>)>> = vec![Vec::new()];
    for param in resource.params {
        let choices: Vec<Option<String>> = match (param.place, values_of(param.column)) {
            (ParamPlace::Workspace, given) => deployments(server, given),
            (_, Some(values)) => values.into_iter().map(Some).collect(),
            (_, None) if param.required => return Err(missing_required(table, param.column)),
            (_, None) => vec![None],
        };
        combos = combos
            .into_iter()
            .flat_map(|combo| {
                choices.iter().map(move |choice| {
                    let mut c = combo.clone();
                    c.push((param.column, choice.clone()));
                    c
                })
            })
            .collect();
    }
    combos.into_iter().map(|combo| target(resource, server, page_size, combo, table)).collect()
}

/// The deployments to ask: with a `{deployment_name}` URL, the values given (else the server's
/// default); with a fixed URL, its one deployment, and only if the query does not exclude it.
fn deployments(server: &ServerOptions, given: Option<Vec<String>>) -> Vec<Option<String>> {
    match given {
        None => vec![server.deployment_name.clone()],
        Some(values) if server.workspace.is_template() => values.into_iter().map(Some).collect(),
        Some(values) => match &server.deployment_name {
            Some(fixed) if values.contains(fixed) => vec![Some(fixed.clone())],
            _ => Vec::new(),
        },
    }
}

fn target(resource: &Resource, server: &ServerOptions, page_size: Option<u32>, combo: Vec<(&'static str, Option<String>)>, table: &str) -> FdwResult<Target> {
    let value = |column: &str| combo.iter().find(|(c, _)| *c == column).and_then(|(_, v)| v.as_deref());
    let deployment = resource.params.iter().find(|p| p.place == ParamPlace::Workspace).and_then(|p| value(p.column));
    if let (Some(allowed), Some(d)) = (&server.allowed_deployments, deployment) {
        if !allowed.iter().any(|a| a == d) {
            return Err(FdwError::new(ERRCODE_INSUFFICIENT_PRIVILEGE, format!("deployment \"{d}\" is not allowed on server \"{}\"", server.server_name))
                .hint(format!("The server's allowed_deployments are: {}.", allowed.join(", "))));
        }
    }
    let workspace = server.workspace.resolve(deployment)?;
    let mut url = workspace.clone();
    let mut path = url.path().trim_end_matches('/').to_string();
    let get = resource.get.as_ref().filter(|g| value(g.column).is_some());
    let template = get.map(|g| g.path).unwrap_or(resource.path);
    for segment in template.split('/').filter(|s| !s.is_empty()) {
        path.push('/');
        match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            Some(column) => {
                let v = value(column).ok_or_else(|| missing_required(table, column))?;
                if v.is_empty() || v == "." || v == ".." {
                    // URL parsers resolve "." and ".." even when encoded: they would address
                    // another endpoint, and no Databricks object has such a name.
                    return Err(FdwError::new(ERRCODE_INVALID_PARAMETER_VALUE, format!("{column} {v:?} cannot be used in a query on foreign table \"{table}\"")));
                }
                path.extend(utf8_percent_encode(v, SEGMENT));
            }
            None => path.push_str(segment),
        }
    }
    url.set_path(&path);
    {
        let mut query = url.query_pairs_mut();
        for p in resource.params {
            if let (ParamPlace::Query(name), Some(v)) = (p.place, value(p.column)) {
                query.append_pair(name, v);
            }
        }
        if let (Some(n), None) = (page_size, get) {
            query.append_pair("page_size", &n.to_string());
        }
    }
    if url.query() == Some("") {
        url.set_query(None);
    }
    let echo_json = resource
        .columns
        .iter()
        .filter(|c| c.source == crate::resources::Source::Request)
        .map(|c| (c.name, value(c.name).map(|v| serde_json::Value::from(v).to_string())))
        .collect();
    Ok(Target { workspace, url, single: get.is_some(), echo_json })
}

pub fn missing_required(table: &str, column: &str) -> FdwError {
    FdwError::new(ERRCODE_FDW_DYNAMIC_PARAMETER_VALUE_NEEDED, format!("foreign table \"{table}\" needs a value for column \"{column}\""))
        .detail(format!("The Databricks API lists this resource per {column}; a condition like {column} > '...' or none at all cannot be sent."))
        .hint(format!("Add WHERE {column} = '...' (or {column} IN (...), or join on {column})."))
}

fn dedup(values: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(values.len());
    for v in values {
        if !out.contains(v) {
            out.push(v.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources;

    fn server(pairs: &[(&str, &str)]) -> ServerOptions {
        let o: Vec<(String, String)> = pairs.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
        ServerOptions::from_options("dbx", &o).unwrap()
    }

    fn given(column: &str, values: &[&str]) -> GivenValues {
        GivenValues { column: column.into(), values: values.iter().map(|s| s.to_string()).collect() }
    }

    #[test]
    fn one_room_one_request_with_echoed_values() {
        let r = resources::find("task_runs").unwrap();
        let s = server(&[("workspace_url", "https://dbc-abcd0123-a1bc.cloud.databricks.com")]);
        let t = targets(r, &s, Some(50), &[given("clean_room_name", &["acme_x_retailer"]), given("notebook_name", &["nb 1"])], "task_runs").unwrap();
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].url.as_str(), "https://dbc-abcd0123-a1bc.cloud.databricks.com/api/2.0/clean-rooms/acme_x_retailer/runs?notebook_name=nb+1&page_size=50");
        assert_eq!(t[0].echo_json("clean_room_name"), Some("\"acme_x_retailer\""));
        assert_eq!(t[0].echo_json("deployment_name"), Some("\"dbc-abcd0123-a1bc\""));
        assert_eq!(t[0].page_url(Some("a b&c")).query(), Some("notebook_name=nb+1&page_size=50&page_token=a+b%26c"));
    }

    #[test]
    fn room_names_are_always_one_path_segment() {
        let r = resources::find("task_runs").unwrap();
        let s = server(&[("workspace_url", "http://127.0.0.1:9/ws/dbc-a")]);
        for (name, encoded) in [("a/b", "a%2Fb"), ("../x", "..%2Fx"), ("x?y=1", "x%3Fy%3D1"), ("x#y", "x%23y"), ("partners/2024 é", "partners%2F2024%20%C3%A9"), ("...", "..."), ("%2e%2e", "%252e%252e")] {
            let t = targets(r, &s, None, &[given("clean_room_name", &[name])], "t").unwrap();
            assert_eq!(t[0].url.path(), format!("/ws/dbc-a/api/2.0/clean-rooms/{encoded}/runs"), "{name}");
            assert_eq!(t[0].url.query(), None);
        }
        for unusable in ["", ".", ".."] {
            assert!(targets(r, &s, None, &[given("clean_room_name", &[unusable])], "t").is_err(), "{unusable:?}");
        }
    }

    #[test]
    fn lists_multiply_and_deployments_choose_the_host() {
        let r = resources::find("task_runs").unwrap();
        let s = server(&[]);
        let t = targets(r, &s, None, &[given("clean_room_name", &["a", "b", "a"]), given("deployment_name", &["dbc-1", "dbc-2"])], "t").unwrap();
        let urls: Vec<String> = t.iter().map(|t| t.url.to_string()).collect();
        assert_eq!(urls, [
            "https://dbc-1.cloud.databricks.com/api/2.0/clean-rooms/a/runs",
            "https://dbc-2.cloud.databricks.com/api/2.0/clean-rooms/a/runs",
            "https://dbc-1.cloud.databricks.com/api/2.0/clean-rooms/b/runs",
            "https://dbc-2.cloud.databricks.com/api/2.0/clean-rooms/b/runs",
        ]);
        let e = targets(r, &s, None, &[given("clean_room_name", &["a"])], "t").unwrap_err();
        assert_eq!(e.code, ERRCODE_FDW_DYNAMIC_PARAMETER_VALUE_NEEDED);
        assert!(targets(r, &s, None, &[given("clean_room_name", &["a"]), given("deployment_name", &["evil.com#"])], "t").is_err());
    }

    #[test]
    fn a_fixed_url_serves_only_its_own_deployment() {
        let r = resources::find("task_runs").unwrap();
        let s = server(&[("workspace_url", "https://dbc-a.cloud.databricks.com")]);
        assert_eq!(targets(r, &s, None, &[given("clean_room_name", &["x"]), given("deployment_name", &["dbc-b"])], "t").unwrap(), vec![]);
        assert_eq!(targets(r, &s, None, &[given("clean_room_name", &["x"]), given("deployment_name", &["dbc-a"])], "t").unwrap().len(), 1);
    }

    #[test]
    fn a_name_uses_the_single_object_endpoint() {
        let r = resources::find("clean_rooms").unwrap();
        let s = server(&[("workspace_url", "https://dbc-a.cloud.databricks.com")]);
        let all = targets(r, &s, Some(50), &[], "t").unwrap();
        assert_eq!((all[0].url.as_str(), all[0].single), ("https://dbc-a.cloud.databricks.com/api/2.0/clean-rooms?page_size=50", false));
        let one = targets(r, &s, Some(50), &[given("name", &["a/b"])], "t").unwrap();
        assert_eq!((one[0].url.as_str(), one[0].single), ("https://dbc-a.cloud.databricks.com/api/2.0/clean-rooms/a%2Fb", true));
        let r = resources::find("asset_revisions").unwrap();
        let t = targets(r, &s, None, &[given("clean_room_name", &["r"]), given("asset_type", &["TABLE"]), given("name", &["t 1"])], "t").unwrap();
        assert_eq!(t[0].url.path(), "/api/2.0/clean-rooms/r/assets/TABLE/t%201/revisions");
    }

    #[test]
    fn only_allowed_deployments_get_a_request() {
        let r = resources::find("task_runs").unwrap();
        let s = server(&[("allowed_deployments", "dbc-a,dbc-b"), ("deployment_name", "dbc-a")]);
        assert_eq!(targets(r, &s, None, &[given("clean_room_name", &["x"])], "t").unwrap().len(), 1);
        assert_eq!(targets(r, &s, None, &[given("clean_room_name", &["x"]), given("deployment_name", &["dbc-b", "dbc-a"])], "t").unwrap().len(), 2);
        let e = targets(r, &s, None, &[given("clean_room_name", &["x"]), given("deployment_name", &["dbc-a", "dbc-evil"])], "t").unwrap_err();
        assert_eq!(e.code, ERRCODE_INSUFFICIENT_PRIVILEGE);
        assert!(e.hint.unwrap().contains("dbc-a, dbc-b"));
    }

    #[test]
    fn the_required_column_is_named_in_the_error() {
        let r = resources::find("task_runs").unwrap();
        let e = targets(r, &server(&[("deployment_name", "dbc-a")]), None, &[], "my_runs").unwrap_err();
        assert_eq!(e.message, "foreign table \"my_runs\" needs a value for column \"clean_room_name\"");
        assert!(e.hint.unwrap().contains("WHERE clean_room_name = "));
    }
}
