//! Unit tests of the write calls: validation, creation, updates and deletions of clean rooms,
//! assets and auto-approval rules, and a new room provisioning until it becomes ACTIVE.

use super::*;

fn data() -> Dataset {
    Dataset::from_fixture_json(include_str!("../../fixtures/cleanrooms.json")).unwrap()
}

#[test]
fn rules_are_validated_created_updated_and_deleted() {
    let mut d = data();
    let (s, _) = answer(create_rule(&mut d, "acme_x_retailer", br#"{"auto_approval_rule":{"runner_collaborator_alias":"r"}}"#));
    assert_eq!(s, 400, "an author or a scope is required");
    let (s, _) = answer(create_rule(&mut d, "acme_x_retailer", br#"{"runner_collaborator_alias":"r","author_scope":"ANY_AUTHOR"}"#));
    assert_eq!(s, 400, "create wraps the rule");
    let (s, rule) = answer(create_rule(
        &mut d,
        "acme_x_retailer",
        br#"{"auto_approval_rule":{"runner_collaborator_alias":"r","author_scope":"ANY_AUTHOR"}}"#,
    ));
    assert_eq!(s, 200);
    let id = rule["rule_id"].as_str().unwrap().to_string();
    let (s, _) = answer(create_rule(
        &mut d,
        "acme_x_retailer",
        br#"{"auto_approval_rule":{"runner_collaborator_alias":"r","author_scope":"ANY_AUTHOR"}}"#,
    ));
    assert_eq!(s, 409);
    let body = format!(r#"{{"rule_id":"{id}","runner_collaborator_alias":"r2","author_scope":null}}"#);
    let (s, rule) = answer(update_rule(&mut d, "acme_x_retailer", &id, body.as_bytes()));
    assert_eq!(
        (s, rule["runner_collaborator_alias"].as_str(), rule["author_scope"].as_str()),
        (200, Some("r2"), Some("ANY_AUTHOR")),
        "null leaves a field as it is"
    );
    assert_eq!(
        answer(update_rule(&mut d, "acme_x_retailer", &id, br#"{"runner_collaborator_alias":"r3"}"#)).0,
        400,
        "the body names its rule"
    );
    assert_eq!(answer(delete_rule(&mut d, "acme_x_retailer", &id)).0, 200);
    assert_eq!(answer(delete_rule(&mut d, "acme_x_retailer", &id)).0, 404);
}

const ROOM: &[u8] = concat!(
    r#"{"name":"new_room","comment":"c","remote_detailed_info":{"cloud_vendor":"aws","region":"us-west-2","#,
    r#""collaborators":[{"collaborator_alias":"me","global_metastore_id":"aws:us-west-2:1"}]}}"#
)
.as_bytes();

#[test]
fn rooms_and_assets() {
    let mut d = data();
    let p = Provisioning::default();
    assert_eq!(answer(create_room(&mut d, &p, br#"{"comment":"x"}"#)).0, 400);
    let (s, e) = answer(create_room(&mut d, &p, br#"{"name":"bare"}"#));
    assert_eq!(s, 400, "a name alone is refused");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("remote_detailed_info.cloud_vendor, remote_detailed_info.region, remote_detailed_info.collaborators"),
        "{e}"
    );
    let (s, room) = answer(create_room(&mut d, &p, ROOM));
    assert_eq!((s, room["status"].as_str()), (200, Some("PROVISIONING")));
    assert_eq!(answer(create_room(&mut d, &p, ROOM)).0, 409);
    let asset = br#"{"name":"c.s.t","asset_type":"TABLE","clean_room_name":"new_room","table_local_details":{"local_name":"c.s.t"}}"#;
    let (s, e) = answer(create_asset(&mut d, "new_room", asset));
    assert_eq!((s, e["error_code"].as_str()), (400, Some("INVALID_STATE")), "no assets while provisioning");
    p.set_delay(Duration::ZERO);
    let lock = RwLock::new(std::mem::take(&mut d));
    p.settle(&lock);
    assert_eq!(lock.read().unwrap().rooms["new_room"].info["status"], "PROVISIONING", "the delay counts from the create");
    p.start("new_room");
    p.settle(&lock);
    let mut d = lock.into_inner().unwrap();
    assert_eq!(d.rooms["new_room"].info["local_collaborator_alias"], "me");
    let (s, room) = answer(update_room(&mut d, "new_room", br#"{"clean_room":{"comment":"Q4"}}"#));
    assert_eq!((s, room["comment"].as_str(), room["status"].as_str()), (200, Some("Q4"), Some("ACTIVE")));
    assert_eq!(answer(create_asset(&mut d, "new_room", asset)).0, 200);
    assert_eq!(answer(create_asset(&mut d, "new_room", asset)).0, 409);
    let no_details = br#"{"name":"n","asset_type":"NOTEBOOK_FILE","clean_room_name":"new_room"}"#;
    assert_eq!(answer(create_asset(&mut d, "new_room", no_details)).0, 400);
    assert_eq!(
        answer(update_asset(&mut d, "new_room", "TABLE", "c.s.t", br#"{"table_local_details":{"local_name":"c.s.u"}}"#)).0,
        400,
        "the body names the asset"
    );
    assert_eq!(
        answer(update_asset(
            &mut d,
            "new_room",
            "TABLE",
            "c.s.t",
            br#"{"name":"c.s.t","asset_type":"TABLE","table_local_details":{"local_name":"c.s.u"}}"#
        ))
        .0,
        200
    );
    assert_eq!(answer(delete_asset(&mut d, "new_room", "TABLE", "c.s.t")).0, 200);
    assert_eq!(answer(delete_room(&mut d, "new_room")).0, 200);
    assert_eq!(answer(delete_room(&mut d, "new_room")).0, 404);
}
