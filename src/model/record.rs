//! A baton record: the unit the store's change log carries and the `.c1z` writer writes.
//!
//! Each record is one row of one of the four `.c1z` record tables. Its `external_id` is the row's
//! `external_id` column (baton-sdk's `pkg/dotc1z` stores it so).

use prost::Message;

use super::proto;

/// Which `.c1z` table a record belongs to. The order is the order a snapshot writes them in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    ResourceTypes,
    Resources,
    Entitlements,
    Grants,
}

impl Table {
    pub const ALL: [Table; 4] = [
        Table::ResourceTypes,
        Table::Resources,
        Table::Entitlements,
        Table::Grants,
    ];

    /// A one-byte tag, for keys in the store.
    pub fn tag(self) -> u8 {
        match self {
            Table::ResourceTypes => b't',
            Table::Resources => b'r',
            Table::Entitlements => b'e',
            Table::Grants => b'g',
        }
    }

    pub fn from_tag(tag: u8) -> Option<Table> {
        Table::ALL.into_iter().find(|t| t.tag() == tag)
    }
}

// Records are built and consumed one at a time (streamed to the writer or the change log),
// never held in large arrays of the enum, so the size difference between variants costs little
// and boxing every record would cost an allocation each.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum Record {
    ResourceType(proto::ResourceType),
    Resource(proto::Resource),
    Entitlement(proto::Entitlement),
    Grant(proto::Grant),
}

impl Record {
    pub fn table(&self) -> Table {
        match self {
            Record::ResourceType(_) => Table::ResourceTypes,
            Record::Resource(_) => Table::Resources,
            Record::Entitlement(_) => Table::Entitlements,
            Record::Grant(_) => Table::Grants,
        }
    }

    /// The row's `external_id`: `"<type>:<id>"` for resources, the message id otherwise.
    pub fn external_id(&self) -> String {
        match self {
            Record::ResourceType(rt) => rt.id.clone(),
            Record::Resource(r) => match &r.id {
                Some(id) => format!("{}:{}", id.resource_type, id.resource),
                None => String::new(),
            },
            Record::Entitlement(e) => e.id.clone(),
            Record::Grant(g) => g.id.clone(),
        }
    }

    /// The deterministic protobuf encoding (the `data` column).
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Record::ResourceType(m) => m.encode_to_vec(),
            Record::Resource(m) => m.encode_to_vec(),
            Record::Entitlement(m) => m.encode_to_vec(),
            Record::Grant(m) => m.encode_to_vec(),
        }
    }

    pub fn decode(table: Table, data: &[u8]) -> Result<Record, prost::DecodeError> {
        Ok(match table {
            Table::ResourceTypes => Record::ResourceType(proto::ResourceType::decode(data)?),
            Table::Resources => Record::Resource(proto::Resource::decode(data)?),
            Table::Entitlements => Record::Entitlement(proto::Entitlement::decode(data)?),
            Table::Grants => Record::Grant(proto::Grant::decode(data)?),
        })
    }
}

/// The net change of one record between two points of the change log: `old` is the record as
/// it was (None: it did not exist), `new` as it is now (None: it is gone).
#[derive(Clone, Debug, PartialEq)]
pub struct RecordChange {
    pub table: Table,
    pub external_id: String,
    pub old: Option<Record>,
    pub new: Option<Record>,
}
