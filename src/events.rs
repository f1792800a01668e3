//! baton's event feed, served from the store's change log: every grant the log adds is a
//! `GrantEvent`, every grant it removes a `RevokeEvent`, every resource it adds, changes or
//! removes a `ResourceChangeEvent`; oldest first, with a cursor that resumes after the last
//! event served. Service mode answers `event_feed` tasks with it and `--event-feed` prints it.
//!
//! Messages and their meaning: baton-sdk `proto/c1/connector/v2/event_feed.proto` (repository
//! conductorone/baton-sdk). Events are change hints that ConductorOne follows with a sync, so
//! they carry ids and names, not annotations: a grant event's grant names its entitlement,
//! the entitlement's resource and the principal. Entitlement and resource type changes follow
//! from resource changes and have no event of their own.
//!
//! The log keeps entries only back to the oldest retained export (`store::RETAINED_EXPORTS`);
//! a cursor older than that resumes at the oldest entry still kept, with a warning.

use anyhow::{Context, bail};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

use crate::model::connector::{
    Event, EventFeedMetadata, EventKind, EventType, GrantEvent, ListEventFeedsResponse,
    ListEventsResponse, ResourceChangeEvent, RevokeEvent,
};
use crate::model::proto::{Entitlement, Grant, Resource, ResourceId, Timestamp};
use crate::model::record::{Record, Table};
use crate::store::{LoggedChange, Store};

/// The one feed: baton's legacy feed id, what an empty `event_feed_id` means.
pub const FEED_ID: &str = "baton_feed_event";
/// `ListEventsRequest.page_size` is at most 250.
pub const MAX_PAGE_SIZE: usize = 250;
pub const DEFAULT_PAGE_SIZE: usize = 100;

/// Where a listing starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StartAt {
    /// After the event a previous page's cursor names.
    Cursor(String),
    /// With the changes written at or after this time.
    Time(OffsetDateTime),
    /// With the oldest change the log keeps.
    Oldest,
}

pub fn list_event_feeds() -> ListEventFeedsResponse {
    ListEventFeedsResponse {
        list: vec![EventFeedMetadata {
            id: FEED_ID.to_string(),
            supported_event_types: vec![EventType::ResourceChange as i32],
        }],
        annotations: Vec::new(),
    }
}

/// One page of events: at most `page_size` (capped at [`MAX_PAGE_SIZE`]).
pub fn list_events(
    store: &Store,
    start: &StartAt,
    page_size: usize,
) -> anyhow::Result<ListEventsResponse> {
    let page_size = page_size.clamp(1, MAX_PAGE_SIZE);
    let mut after = match start {
        StartAt::Cursor(cursor) => parse_cursor(cursor)?,
        StartAt::Time(at) => store.log_seq_before(*at)?,
        StartAt::Oldest => 0,
    };
    let mut events = Vec::new();
    loop {
        let page = store.log_after(after, page_size)?;
        if after < page.floor && matches!(start, StartAt::Cursor(_)) && events.is_empty() {
            tracing::warn!(
                cursor = after,
                oldest_kept = page.floor,
                "the event cursor is older than the change log reaches; resuming at the oldest change kept"
            );
        }
        after = after.max(page.floor);
        let Some(last) = page.changes.last().map(|c| c.seq) else {
            return Ok(response(events, after, false));
        };
        for change in &page.changes {
            if let Some(event) = event_of(change)? {
                events.push(event);
            }
            after = change.seq;
            if events.len() == page_size {
                return Ok(response(events, after, after < page.head));
            }
        }
        debug_assert_eq!(after, last);
        if after >= page.head {
            return Ok(response(events, after, false));
        }
    }
}

fn response(events: Vec<Event>, after: u64, has_more: bool) -> ListEventsResponse {
    ListEventsResponse {
        events,
        cursor: after.to_string(),
        has_more,
        annotations: Vec::new(),
    }
}

fn parse_cursor(cursor: &str) -> anyhow::Result<u64> {
    match cursor.parse::<u64>() {
        Ok(seq) => Ok(seq),
        Err(_) => bail!(
            "event feed cursor '{cursor}' is not one this connector issued (it issues decimal sequence numbers)"
        ),
    }
}

/// The event a logged change means, if any.
fn event_of(change: &LoggedChange) -> anyhow::Result<Option<Event>> {
    let entry = &change.entry;
    let decode = |bytes: &Option<Vec<u8>>| -> anyhow::Result<Option<Record>> {
        bytes
            .as_deref()
            .map(|b| Record::decode(entry.table, b))
            .transpose()
            .with_context(|| format!("decoding change-log entry {}", change.seq))
    };
    let (old, new) = (decode(&entry.old)?, decode(&entry.new)?);
    let kind = match (entry.table, old, new) {
        (Table::Grants, _, Some(Record::Grant(grant))) => EventKind::GrantEvent(GrantEvent {
            grant: Some(slim_grant(&grant)),
        }),
        (Table::Grants, Some(Record::Grant(grant)), None) => EventKind::RevokeEvent(RevokeEvent {
            entitlement: grant.entitlement.as_ref().map(slim_entitlement),
            principal: grant.principal.as_ref().map(slim_resource),
        }),
        (Table::Resources, old, new) => {
            let resource = match (new, old) {
                (Some(Record::Resource(r)), _) | (None, Some(Record::Resource(r))) => r,
                _ => return Ok(None),
            };
            EventKind::ResourceChangeEvent(ResourceChangeEvent {
                resource_id: resource.id.clone(),
                parent_resource_id: resource.parent_resource_id.clone(),
            })
        }
        _ => return Ok(None),
    };
    Ok(Some(Event {
        id: change.seq.to_string(),
        occurred_at: change.written_at.map(timestamp),
        annotations: Vec::new(),
        event: Some(kind),
    }))
}

fn slim_resource(resource: &Resource) -> Resource {
    Resource {
        id: resource.id.clone(),
        parent_resource_id: resource.parent_resource_id.clone(),
        display_name: resource.display_name.clone(),
        ..Resource::default()
    }
}

fn slim_entitlement(entitlement: &Entitlement) -> Entitlement {
    Entitlement {
        resource: entitlement.resource.as_ref().map(slim_resource),
        id: entitlement.id.clone(),
        display_name: entitlement.display_name.clone(),
        slug: entitlement.slug.clone(),
        ..Entitlement::default()
    }
}

fn slim_grant(grant: &Grant) -> Grant {
    Grant {
        entitlement: grant.entitlement.as_ref().map(slim_entitlement),
        principal: grant.principal.as_ref().map(slim_resource),
        id: grant.id.clone(),
        ..Grant::default()
    }
}

fn timestamp(at: OffsetDateTime) -> Timestamp {
    Timestamp {
        seconds: at.unix_timestamp(),
        nanos: at.nanosecond() as i32,
    }
}

/// An event as protojson (what baton's `--event-feed` prints, one per line): lowerCamelCase
/// names, default values left out, timestamps in RFC 3339 with 0, 3, 6 or 9 fraction digits.
pub fn event_json(event: &Event) -> Value {
    let mut object = Map::new();
    put_str(&mut object, "id", &event.id);
    if let Some(at) = &event.occurred_at {
        object.insert("occurredAt".into(), Value::String(timestamp_json(at)));
    }
    match &event.event {
        Some(EventKind::GrantEvent(e)) => {
            let mut inner = Map::new();
            if let Some(grant) = &e.grant {
                inner.insert("grant".into(), grant_json(grant));
            }
            object.insert("grantEvent".into(), Value::Object(inner));
        }
        Some(EventKind::RevokeEvent(e)) => {
            let mut inner = Map::new();
            if let Some(entitlement) = &e.entitlement {
                inner.insert("entitlement".into(), entitlement_json(entitlement));
            }
            if let Some(principal) = &e.principal {
                inner.insert("principal".into(), resource_json(principal));
            }
            object.insert("revokeEvent".into(), Value::Object(inner));
        }
        Some(EventKind::ResourceChangeEvent(e)) => {
            let mut inner = Map::new();
            if let Some(id) = &e.resource_id {
                inner.insert("resourceId".into(), resource_id_json(id));
            }
            if let Some(id) = &e.parent_resource_id {
                inner.insert("parentResourceId".into(), resource_id_json(id));
            }
            object.insert("resourceChangeEvent".into(), Value::Object(inner));
        }
        None => {}
    }
    Value::Object(object)
}

fn put_str(object: &mut Map<String, Value>, key: &str, value: &str) {
    if !value.is_empty() {
        object.insert(key.into(), Value::String(value.to_string()));
    }
}

fn resource_id_json(id: &ResourceId) -> Value {
    let mut object = Map::new();
    put_str(&mut object, "resourceType", &id.resource_type);
    put_str(&mut object, "resource", &id.resource);
    Value::Object(object)
}

fn resource_json(resource: &Resource) -> Value {
    let mut object = Map::new();
    if let Some(id) = &resource.id {
        object.insert("id".into(), resource_id_json(id));
    }
    if let Some(id) = &resource.parent_resource_id {
        object.insert("parentResourceId".into(), resource_id_json(id));
    }
    put_str(&mut object, "displayName", &resource.display_name);
    Value::Object(object)
}

fn entitlement_json(entitlement: &Entitlement) -> Value {
    let mut object = Map::new();
    if let Some(resource) = &entitlement.resource {
        object.insert("resource".into(), resource_json(resource));
    }
    put_str(&mut object, "id", &entitlement.id);
    put_str(&mut object, "displayName", &entitlement.display_name);
    put_str(&mut object, "slug", &entitlement.slug);
    Value::Object(object)
}

fn grant_json(grant: &Grant) -> Value {
    let mut object = Map::new();
    if let Some(entitlement) = &grant.entitlement {
        object.insert("entitlement".into(), entitlement_json(entitlement));
    }
    if let Some(principal) = &grant.principal {
        object.insert("principal".into(), resource_json(principal));
    }
    put_str(&mut object, "id", &grant.id);
    Value::Object(object)
}

fn timestamp_json(at: &Timestamp) -> String {
    let Ok(time) = OffsetDateTime::from_unix_timestamp(at.seconds) else {
        return json!(null).to_string();
    };
    let base = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        time.year(),
        u8::from(time.month()),
        time.day(),
        time.hour(),
        time.minute(),
        time.second()
    );
    let nanos = at.nanos.max(0);
    let fraction = if nanos == 0 {
        String::new()
    } else if nanos % 1_000_000 == 0 {
        format!(".{:03}", nanos / 1_000_000)
    } else if nanos % 1_000 == 0 {
        format!(".{:06}", nanos / 1_000)
    } else {
        format!(".{nanos:09}")
    };
    format!("{base}{fraction}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_print_as_protojson_does() {
        let t = |seconds, nanos| timestamp_json(&Timestamp { seconds, nanos });
        assert_eq!(t(0, 0), "1970-01-01T00:00:00Z");
        assert_eq!(t(1_700_000_000, 500_000_000), "2023-11-14T22:13:20.500Z");
        assert_eq!(t(1_700_000_000, 1_000), "2023-11-14T22:13:20.000001Z");
        assert_eq!(t(1_700_000_000, 7), "2023-11-14T22:13:20.000000007Z");
    }

    #[test]
    fn a_cursor_that_is_not_a_sequence_number_is_refused() {
        assert!(parse_cursor("abc").is_err());
        assert_eq!(parse_cursor("42").unwrap(), 42);
    }
}
