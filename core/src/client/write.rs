//! From one row of an INSERT, UPDATE or DELETE to the call that makes the change: the write
//! call of the resource's definition, its key values as path segments, the workspace its
//! `deployment_name` names, and the JSON body (wrapped where the API wants it); then what the
//! answer means: made, gone, refused, or in doubt.

use super::error::ApiError;
use super::request::{fill_path, workspace_for};
use super::request_error::RequestError;
use super::workspace::Endpoint;
use super::{ApiClient, HttpRequest, Sent, Stats};
use crate::resources::{Operation, Resource};
use serde_json::{Map, Value};
use url::Url;

/// One change, ready to send.
#[derive(Debug, Clone)]
pub struct Change {
    pub workspace: Url,
    pub request: HttpRequest,
}

/// What one row says: the values of the path's columns and of the workspace column, and the
/// body's fields (NULLs already left out).
#[derive(Debug, Default, Clone)]
pub struct RowValues {
    /// Key columns and the create path's columns, as text.
    pub keys: Vec<(&'static str, String)>,
    pub deployment: Option<String>,
    pub fields: Map<String, Value>,
}

impl RowValues {
    pub fn key(&self, column: &str) -> Option<&str> {
        self.keys.iter().find(|(c, _)| *c == column).map(|(_, v)| v.as_str())
    }
}

/// The call that makes `op` for one row of `resource`, a writable resource.
pub fn change(resource: &Resource, endpoint: &Endpoint, op: Operation, row: &RowValues) -> Result<Change, RequestError> {
    let writes = resource.writes.as_ref().expect("only writable resources reach a change");
    let workspace = workspace_for(endpoint, row.deployment.as_deref())?;
    let (path, wrap) = writes.call(op);
    let url = fill_path(&workspace, path, |c| row.key(c))?;
    let object = match op {
        Operation::Insert => Some(row.fields.clone()),
        Operation::Update => {
            let mut object = Map::new();
            for key in writes.update.body_keys {
                if let Some(v) = row.key(key) {
                    object.insert(key.to_string(), Value::from(v));
                }
            }
            object.extend(row.fields.clone());
            Some(object)
        }
        Operation::Delete => None,
    };
    let body = object.map(|o| match wrap {
        Some(key) => Value::Object(Map::from_iter([(key.to_string(), Value::Object(o))])),
        None => Value::Object(o),
    });
    let method = reqwest::Method::from_bytes(op.method().as_bytes()).expect("POST, PATCH and DELETE are methods");
    let body = body.map(|b| bytes::Bytes::from(b.to_string()));
    Ok(Change { workspace, request: HttpRequest { method, url, body } })
}

/// Whether a failed call changed the workspace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Refused: nothing changed.
    None,
    /// Unknown: the service may have carried it out (a 5xx, a lost answer).
    Maybe,
    /// Carried out, though the answer could not be used.
    Made,
}

/// What came of one change.
#[derive(Debug)]
pub enum Outcome {
    /// Carried out: the object the API answered (empty for a DELETE, also one whose retry
    /// found the object gone after an attempt that may have deleted it).
    Done {
        answer: Map<String, Value>,
    },
    /// The object was not there (404 RESOURCE_DOES_NOT_EXIST): nothing changed.
    Gone,
    Failed {
        error: ApiError,
        effect: Effect,
    },
}

/// Sends `change` and says what came of it.
pub async fn send(client: &ApiClient, change: &Change, op: Operation, stats: &mut Stats) -> Outcome {
    let sent = client.send(&change.workspace, &change.request, stats).await;
    outcome(op, &change.request, sent)
}

/// The meaning of a call's last answer, given whether an earlier attempt may have been carried
/// out. A create or update is answered with the object: a 2xx whose body is not a JSON object
/// (or breaks off) was carried out, but cannot fill RETURNING, so it is an error; a DELETE's
/// 2xx status is all its answer.
fn outcome(op: Operation, request: &HttpRequest, sent: Sent) -> Outcome {
    let Sent { result, earlier_may_have_applied, accepted } = sent;
    match result {
        Err(_) if accepted && op == Operation::Delete => Outcome::Done { answer: Map::new() },
        Err(error) if accepted => Outcome::Failed { error, effect: Effect::Made },
        Ok(_) if op == Operation::Delete => Outcome::Done { answer: Map::new() },
        Ok(body) => match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Object(answer)) => Outcome::Done { answer },
            _ => {
                let text = String::from_utf8_lossy(&body);
                let problem =
                    format!("the answer to a successful call is not a JSON object: \"{}\"", crate::text::excerpt(text.trim(), 100));
                let path = format!("{} {}", request.method, request.url.path());
                Outcome::Failed { error: ApiError::BadResponse { path, problem }, effect: Effect::Made }
            }
        },
        Err(e) if op != Operation::Insert && e.is_gone() => match op {
            Operation::Delete if earlier_may_have_applied => Outcome::Done { answer: Map::new() },
            _ => Outcome::Gone,
        },
        Err(error) => {
            let effect = if earlier_may_have_applied || super::retry::may_have_been_applied(&error) { Effect::Maybe } else { Effect::None };
            Outcome::Failed { error, effect }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::workspace::WorkspaceUrl;
    use crate::resources::find;
    use serde_json::json;

    fn endpoint(url: &str, deployment: Option<&str>) -> Endpoint {
        Endpoint {
            workspace: WorkspaceUrl::parse(url).unwrap(),
            deployment_name: deployment.map(str::to_string),
            allowed_deployments: None,
        }
    }

    fn row(keys: &[(&'static str, &str)], fields: Value) -> RowValues {
        RowValues {
            keys: keys.iter().map(|(k, v)| (*k, v.to_string())).collect(),
            deployment: None,
            fields: fields.as_object().cloned().unwrap_or_default(),
        }
    }

    fn body(c: &Change) -> Value {
        serde_json::from_slice(c.request.body.as_deref().unwrap()).unwrap()
    }

    #[test]
    fn each_call_has_the_sdks_path_and_body_shape() {
        let e = endpoint("https://{deployment_name}.cloud.databricks.com", Some("dbc-1"));
        let rules = find("auto_approval_rules").unwrap();
        let c =
            change(rules, &e, Operation::Insert, &row(&[("clean_room_name", "a b/c")], json!({"runner_collaborator_alias": "r"}))).unwrap();
        assert_eq!(c.request.method, reqwest::Method::POST);
        assert_eq!(c.request.url.as_str(), "https://dbc-1.cloud.databricks.com/api/2.0/clean-rooms/a%20b%2Fc/auto-approval-rules");
        assert_eq!(body(&c), json!({"auto_approval_rule": {"runner_collaborator_alias": "r"}}));
        let c = change(
            rules,
            &e,
            Operation::Update,
            &row(&[("clean_room_name", "x"), ("rule_id", "r1")], json!({"author_scope": "ANY_AUTHOR"})),
        )
        .unwrap();
        assert_eq!(c.request.url.path(), "/api/2.0/clean-rooms/x/auto-approval-rules/r1");
        assert_eq!(body(&c), json!({"rule_id": "r1", "author_scope": "ANY_AUTHOR"}), "the rule update is not wrapped, and names its rule");
        let c = change(rules, &e, Operation::Delete, &row(&[("clean_room_name", "x"), ("rule_id", "r1")], json!({}))).unwrap();
        assert_eq!(c.request.method, reqwest::Method::DELETE);
        assert!(c.request.body.is_none());

        let rooms = find("clean_rooms").unwrap();
        let c = change(rooms, &e, Operation::Update, &row(&[("name", "x")], json!({"comment": "Q4"}))).unwrap();
        assert_eq!(c.request.url.path(), "/api/2.0/clean-rooms/x");
        assert_eq!(body(&c), json!({"clean_room": {"comment": "Q4"}}));

        let assets = find("assets").unwrap();
        let keys = [("clean_room_name", "x"), ("asset_type", "TABLE"), ("name", "c.s.t")];
        let c = change(assets, &e, Operation::Update, &row(&keys, json!({"table_local_details": {"local_name": "c.s.t"}}))).unwrap();
        assert_eq!(c.request.url.path(), "/api/2.0/clean-rooms/x/assets/TABLE/c.s.t");
        assert_eq!(body(&c), json!({"name": "c.s.t", "asset_type": "TABLE", "table_local_details": {"local_name": "c.s.t"}}));
    }

    #[test]
    fn answers_mean_made_gone_refused_or_in_doubt() {
        let e = endpoint("https://dbc-1.cloud.databricks.com", Some("dbc-1"));
        let rules = find("auto_approval_rules").unwrap();
        let post = change(rules, &e, Operation::Insert, &row(&[("clean_room_name", "x")], json!({}))).unwrap().request;
        let status = |s: u16, code: &str| ApiError::Status {
            path: "p".into(),
            status: s,
            error_code: Some(code.into()),
            message: None,
            details: Default::default(),
        };
        let ok = |b: &'static str| Ok(bytes::Bytes::from_static(b.as_bytes()));
        let outcome = |op, p: &HttpRequest, result: Result<bytes::Bytes, ApiError>, earlier| {
            let accepted = result.is_ok();
            outcome(op, p, Sent { result, earlier_may_have_applied: earlier, accepted })
        };
        let done = outcome(Operation::Insert, &post, ok(r#"{"rule_id":"1"}"#), false);
        assert!(matches!(done, Outcome::Done { answer, .. } if answer["rule_id"] == "1"));
        for body in ["", "<html>ok</html>", "[1]"] {
            assert!(matches!(outcome(Operation::Insert, &post, ok(body), false), Outcome::Failed { effect: Effect::Made, .. }), "{body:?}");
        }
        assert!(matches!(outcome(Operation::Delete, &post, ok(""), false), Outcome::Done { .. }), "a DELETE's answer is not read");
        assert!(matches!(
            outcome(Operation::Insert, &post, Err(status(503, "TEMPORARILY_UNAVAILABLE")), false),
            Outcome::Failed { effect: Effect::Maybe, .. }
        ));
        assert!(matches!(
            outcome(Operation::Insert, &post, Err(status(400, "INVALID_PARAMETER_VALUE")), false),
            Outcome::Failed { effect: Effect::None, .. }
        ));
        let gone = || Err(status(404, "RESOURCE_DOES_NOT_EXIST"));
        assert!(matches!(outcome(Operation::Delete, &post, gone(), false), Outcome::Gone));
        assert!(matches!(outcome(Operation::Delete, &post, gone(), true), Outcome::Done { .. }), "the first attempt deleted it");
        assert!(
            matches!(outcome(Operation::Insert, &post, gone(), false), Outcome::Failed { effect: Effect::None, .. }),
            "no such clean room"
        );
        assert!(matches!(outcome(Operation::Update, &post, Err(status(400, "X")), true), Outcome::Failed { effect: Effect::Maybe, .. }));
        let broken = || ApiError::Transport { path: "p".into(), problem: "reset".into(), timeout: false, lasting: false, unsent: false };
        let after_2xx = |op| super::outcome(op, &post, Sent { result: Err(broken()), earlier_may_have_applied: false, accepted: true });
        assert!(
            matches!(after_2xx(Operation::Insert), Outcome::Failed { effect: Effect::Made, .. }),
            "a 2xx status says the change was made"
        );
        assert!(matches!(after_2xx(Operation::Delete), Outcome::Done { .. }));
    }

    #[test]
    fn keys_that_cannot_be_one_segment_and_foreign_deployments_are_refused() {
        let e = endpoint("https://{deployment_name}.cloud.databricks.com", Some("dbc-1"));
        let rules = find("auto_approval_rules").unwrap();
        let err = change(rules, &e, Operation::Delete, &row(&[("clean_room_name", "x"), ("rule_id", "..")], json!({}))).unwrap_err();
        assert_eq!(err, RequestError::Unusable { column: "rule_id", value: "..".into() });
        let err = change(rules, &e, Operation::Delete, &row(&[("clean_room_name", "x")], json!({}))).unwrap_err();
        assert_eq!(err, RequestError::MissingValue { column: "rule_id" });
        let fixed = endpoint("https://dbc-1.cloud.databricks.com", Some("dbc-1"));
        let mut r = row(&[("clean_room_name", "x"), ("rule_id", "1")], json!({}));
        r.deployment = Some("dbc-2".into());
        assert!(matches!(change(rules, &fixed, Operation::Delete, &r), Err(RequestError::NotAllowed { .. })));
        let c = change(rules, &e, Operation::Delete, &r).unwrap();
        assert_eq!(c.workspace.host_str(), Some("dbc-2.cloud.databricks.com"));
    }
}
