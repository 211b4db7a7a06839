//! One row of a change, in and out: the values an INSERT or UPDATE sends and the keys that name
//! the row (from the new row, the scan's row identity columns, and what a BEFORE trigger
//! changed), and the row RETURNING and AFTER triggers see (from the API's answer, or for a
//! DELETE the row the scan read).

use super::modify::{Column, ModifyState};
use super::raise;
use super::slot::{emptied, slot_values};
use super::write_errors;
use super::OrRaise;
use crate::client::write::RowValues;
use crate::convert::{convert, text_below};
use crate::fdw::datum::{json_value, output_text};
use crate::resources::{self, Operation, Origin};
use pgrx::prelude::*;
use serde_json::{Map, Value};

impl ModifyState {
    /// The JSON a column's value is sent as.
    pub(super) unsafe fn json(&self, column: &Column, datum: pg_sys::Datum) -> Value {
        let kind = column.def.map_or(crate::resources::Kind::Text, |d| d.kind);
        json_value(datum, column.type_oid, kind)
            .unwrap_or_else(|problem| raise(write_errors::unsendable(&self.plan.table, &column.name, &problem)))
    }

    /// What an inserted row gives: the create path's columns, the workspace, and the fields
    /// an INSERT may set. Any other column given a value is refused: it is the service's.
    pub(super) unsafe fn inserted(&self, slot: *mut pg_sys::TupleTableSlot) -> RowValues {
        let values = slot_values(slot);
        let path_columns: Vec<&str> = resources::placeholders(self.writes.create.path);
        let mut row = RowValues::default();
        for column in &self.columns {
            let Some(datum) = values[column.index] else { continue };
            let name = column.name.as_str();
            let own = column.def.is_some();
            let mut used = false;
            if own && self.resource.workspace_column() == Some(name) {
                row.deployment = Some(output_text(datum, column.type_oid));
                used = true;
            }
            if own && path_columns.contains(&name) {
                row.keys.push((column.def.expect("checked").name, output_text(datum, column.type_oid)));
                used = true;
            }
            if own && self.writes.insertable.contains(&name) {
                row.fields.insert(name.to_string(), self.json(column, datum));
                used = true;
            }
            if !used {
                let mut settable: Vec<&str> = path_columns.clone();
                settable.extend(self.writes.insertable.iter().filter(|c| !path_columns.contains(c)));
                settable.extend(self.resource.workspace_column());
                raise(write_errors::set_by_service(&self.plan.table, name, Operation::Insert, &settable));
            }
        }
        for column in self.writes.required {
            if row.key(column).is_none() && !row.fields.contains_key(*column) {
                raise(write_errors::missing_value(&self.plan.table, column, self.resource));
            }
        }
        row
    }

    /// What an updated row sends: its keys, the SET columns' new values, and the columns a
    /// BEFORE UPDATE trigger changed (checked as a SET list is). A PATCH has no field mask and
    /// the service reads a null field as "leave unchanged", so NULL is refused: it would change
    /// nothing.
    pub(super) unsafe fn updated(
        &self,
        rinfo: *mut pg_sys::ResultRelInfo,
        slot: *mut pg_sys::TupleTableSlot,
        plan_slot: *mut pg_sys::TupleTableSlot,
    ) -> RowValues {
        let mut row = self.identified(plan_slot);
        let values = slot_values(slot);
        let old = (*rinfo).ri_oldTupleSlot;
        let old_values = (self.triggers.before_update && !super::snapshot::is_empty(old)).then(|| slot_values(old));
        for column in &self.columns {
            let new = values[column.index];
            let in_set_list = self.plan.set_columns.contains(&column.name);
            if !in_set_list {
                // Without a trigger, a column outside the SET list keeps its old value.
                let Some(old_values) = &old_values else { continue };
                let text = |d: Option<pg_sys::Datum>| d.map(|d| output_text(d, column.type_oid));
                if text(new) == text(old_values[column.index]) {
                    continue;
                }
                super::modify_plan::settable(&self.plan.table, self.resource, self.writes, &column.name, column.path.is_none())
                    .unwrap_or_else(|e| raise(e.detail("A BEFORE UPDATE trigger changed it.")));
            }
            match new {
                Some(datum) => {
                    row.fields.insert(column.name.clone(), self.json(column, datum));
                }
                None => raise(write_errors::null_update(&self.plan.table, &column.name)),
            }
        }
        row
    }

    /// The keys (and workspace) of the row an UPDATE or DELETE reached, from the scan.
    pub(super) unsafe fn identified(&self, plan_slot: *mut pg_sys::TupleTableSlot) -> RowValues {
        let mut row = RowValues::default();
        let scanned = slot_values(plan_slot);
        for column in &self.columns {
            let Some(attno) = column.identity else { continue };
            let is_key = self.writes.keys.iter().find(|k| **k == column.name);
            let is_workspace = self.resource.workspace_column() == Some(column.name.as_str());
            if is_key.is_none() && !is_workspace {
                continue;
            }
            let text = scanned[attno as usize - 1].map(|d| output_text(d, column.type_oid));
            match (is_key, text) {
                (Some(key), Some(v)) => row.keys.push((key, v)),
                (Some(key), None) => raise(write_errors::null_key(&self.plan.table, key, self.plan.op)),
                (None, deployment) => row.deployment = deployment,
            }
        }
        row
    }

    /// Fills `slot` with the object the API answered (RETURNING of INSERT and UPDATE). Columns
    /// taken from the request (clean_room_name, deployment_name) show the values sent.
    pub(super) unsafe fn store_answer(&mut self, slot: *mut pg_sys::TupleTableSlot, answer: &Map<String, Value>, row: &RowValues) {
        let (values, nulls) = emptied(slot);
        let deployment = row.deployment.clone().or_else(|| self.server.endpoint.deployment_name.clone());
        for (column, writer) in self.columns.iter().zip(self.writers.iter_mut()) {
            let raw: Option<String> = match self.resource.origin(&column.name, column.path.as_deref()) {
                Some(Origin::Field(path)) => lookup(answer, path),
                Some(Origin::Request) if self.resource.workspace_column() == Some(column.name.as_str()) => {
                    deployment.as_deref().map(json_string)
                }
                Some(Origin::Request) => row.key(&column.name).map(json_string).or_else(|| lookup(answer, &column.name)),
                None => None,
            };
            let cell = convert(raw.as_deref(), writer.target).map_err(|e| writer.conversion_error(&self.plan.table, e)).or_raise();
            if let Some(datum) = writer.datum(cell, &self.plan.table) {
                values[writer.index] = datum;
                nulls[writer.index] = false;
            }
        }
        pg_sys::ExecStoreVirtualTuple(slot);
    }

    /// Fills `slot` with the row the scan read (RETURNING of DELETE).
    pub(super) unsafe fn store_scanned(&self, slot: *mut pg_sys::TupleTableSlot, plan_slot: *mut pg_sys::TupleTableSlot) {
        let scanned = slot_values(plan_slot);
        let (values, nulls) = emptied(slot);
        for column in &self.columns {
            if let Some(datum) = column.identity.and_then(|attno| scanned[attno as usize - 1]) {
                values[column.index] = datum;
                nulls[column.index] = false;
            }
        }
        pg_sys::ExecStoreVirtualTuple(slot);
    }
}

fn json_string(v: &str) -> String {
    Value::from(v).to_string()
}

/// The JSON text at a dotted `path` of an object (as a scanned row reads it).
fn lookup(object: &Map<String, Value>, path: &str) -> Option<String> {
    let mut keys = path.split('.');
    text_below(object.get(keys.next()?)?, keys)
}
