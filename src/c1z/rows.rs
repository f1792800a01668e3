//! From a [`Record`] to the columns of its `.c1z` row (reference sections 2.1-2.4), and back.
//!
//! Grants use the native profile: their `GrantExpandable` annotation leaves the blob and becomes
//! the `expansion` column; the reader puts it back as the grant's last annotation.

use anyhow::{Context, Result, bail};
use prost::Message;

use crate::model::proto::{self, GrantExpandable, Named};
use crate::model::{Record, Table};

/// The insert statement of a grant row; the expansion adds its grants with it too.
pub(crate) const GRANT_INSERT: &str = "insert into v1_grants (resource_type_id, resource_id,
         entitlement_id, principal_resource_type_id, principal_resource_id, external_id,
         expansion, needs_expansion, data, sync_id, discovered_at)
     values (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";

/// One row of a record table, minus `sync_id` and `discovered_at`.
pub(crate) struct Row {
    pub external_id: String,
    pub columns: Columns,
    pub data: Vec<u8>,
}

/// The columns derived from the message, per table.
pub(crate) enum Columns {
    ResourceType,
    Resource {
        resource_type_id: String,
        parent: Option<proto::ResourceId>,
    },
    Entitlement {
        resource_type_id: String,
        resource_id: String,
    },
    Grant(GrantColumns),
}

pub(crate) struct GrantColumns {
    pub resource_type_id: String,
    pub resource_id: String,
    pub entitlement_id: String,
    pub principal_resource_type_id: String,
    pub principal_resource_id: String,
    /// The serialized `GrantExpandable`, when it names at least one entitlement.
    pub expansion: Option<Vec<u8>>,
    /// Whether the grant is direct for its own entitlement (no sources, or a source naming it):
    /// only direct grants propagate over shallow expansion edges.
    pub direct: bool,
}

impl Row {
    pub fn table(&self) -> Table {
        match self.columns {
            Columns::ResourceType => Table::ResourceTypes,
            Columns::Resource { .. } => Table::Resources,
            Columns::Entitlement { .. } => Table::Entitlements,
            Columns::Grant(_) => Table::Grants,
        }
    }

    /// Takes the record by value: a grant's blob is the grant minus its `GrantExpandable`,
    /// stripped in place rather than from a copy (a full export writes a million of them).
    pub fn from_record(record: Record) -> Result<Row> {
        let external_id = record.external_id();
        if external_id.is_empty() {
            bail!("a {:?} record has an empty id", record.table());
        }
        let (columns, data) = match record {
            Record::ResourceType(resource_type) => {
                (Columns::ResourceType, resource_type.encode_to_vec())
            }
            Record::Resource(resource) => {
                let id = resource
                    .id
                    .as_ref()
                    .with_context(|| format!("resource {external_id:?} has no ResourceId"))?;
                let columns = Columns::Resource {
                    resource_type_id: id.resource_type.clone(),
                    parent: resource.parent_resource_id.clone(),
                };
                (columns, resource.encode_to_vec())
            }
            Record::Entitlement(entitlement) => {
                let id = entitlement
                    .resource
                    .as_ref()
                    .and_then(|r| r.id.as_ref())
                    .with_context(|| format!("entitlement {external_id:?} has no resource id"))?;
                let columns = Columns::Entitlement {
                    resource_type_id: id.resource_type.clone(),
                    resource_id: id.resource.clone(),
                };
                (columns, entitlement.encode_to_vec())
            }
            Record::Grant(grant) => grant_row(grant)?,
        };
        Ok(Row {
            external_id,
            columns,
            data,
        })
    }
}

fn grant_row(mut grant: proto::Grant) -> Result<(Columns, Vec<u8>)> {
    let expandable_url = expandable_type_url();
    let mut expansion = None;
    grant.annotations.retain_mut(|annotation| {
        if annotation.type_url == expandable_url {
            if expansion.is_none() {
                expansion = Some(std::mem::take(&mut annotation.value));
            }
            false
        } else {
            true
        }
    });

    let id = &grant.id;
    let entitlement = grant
        .entitlement
        .as_ref()
        .with_context(|| format!("grant {id:?} has no entitlement"))?;
    if entitlement.id.is_empty() {
        bail!("grant {id:?} names an entitlement without an id");
    }
    let resource = entitlement
        .resource
        .as_ref()
        .and_then(|r| r.id.as_ref())
        .with_context(|| format!("grant {id:?}: its entitlement has no resource id"))?;
    let principal = grant
        .principal
        .as_ref()
        .and_then(|p| p.id.as_ref())
        .with_context(|| format!("grant {id:?} has no principal id"))?;
    let expansion = match expansion {
        Some(bytes) => {
            let expandable = GrantExpandable::decode(bytes.as_slice())
                .with_context(|| format!("grant {id:?}: its GrantExpandable does not decode"))?;
            let names_any = expandable
                .entitlement_ids
                .iter()
                .any(|e| !e.trim().is_empty());
            names_any.then_some(bytes)
        }
        None => None,
    };
    let direct = grant
        .sources
        .as_ref()
        .is_none_or(|s| s.sources.is_empty() || s.sources.contains_key(&entitlement.id));
    let columns = Columns::Grant(GrantColumns {
        resource_type_id: resource.resource_type.clone(),
        resource_id: resource.resource.clone(),
        entitlement_id: entitlement.id.clone(),
        principal_resource_type_id: principal.resource_type.clone(),
        principal_resource_id: principal.resource.clone(),
        expansion,
        direct,
    });
    Ok((columns, grant.encode_to_vec()))
}

pub(crate) fn expandable_type_url() -> String {
    format!("type.googleapis.com/{}", GrantExpandable::FULL_NAME)
}

/// The record a row holds: its `data`, with the `expansion` column put back as the grant's last
/// annotation.
pub(crate) fn record_from_row(
    table: Table,
    data: &[u8],
    expansion: Option<Vec<u8>>,
) -> Result<Record> {
    let mut record = Record::decode(table, data)
        .with_context(|| format!("a {table:?} row's data does not decode"))?;
    if let (Record::Grant(grant), Some(value)) = (&mut record, expansion) {
        grant.annotations.push(proto::Any {
            type_url: expandable_type_url(),
            value,
        });
    }
    Ok(record)
}
