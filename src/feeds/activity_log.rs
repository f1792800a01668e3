//! Reading a subscription's Activity Log as a change hint: which of its Azure RBAC lists must be
//! re-read. The query window is `[previous end - overlap, now]`, because an event becomes
//! queryable some time after its `eventTimestamp`; the overlap re-reads events already seen, so
//! events are deduplicated by `eventDataId`. Only `resourceProvider eq 'Microsoft.Authorization'`
//! is filtered on the server (the API cannot filter `operationName`); operations are matched here.
//! The log keeps 90 days: an older cursor means a full re-read instead.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::FeedError;

/// How long the Activity Log keeps events.
pub const RETENTION: Duration = Duration::from_secs(90 * 24 * 3600);

/// Which list of a subscription an event says is stale.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stale {
    RoleAssignments,
    RoleDefinitions,
    RoleEligibility,
}

/// The first page of a subscription's Authorization events between `from` and `to`.
pub fn query_url(
    subscription: &str,
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> Result<String, FeedError> {
    let format = |t: OffsetDateTime| {
        t.format(&Rfc3339)
            .map_err(|e| FeedError::Malformed(format!("cannot format an Activity Log time: {e}")))
    };
    let filter = format!(
        "eventTimestamp ge '{}' and eventTimestamp le '{}' and resourceProvider eq 'Microsoft.Authorization'",
        format(from)?,
        format(to)?
    );
    Ok(format!(
        "/subscriptions/{subscription}/providers/microsoft.insights/eventtypes/management/values?api-version=2015-04-01&$filter={}&$select=eventDataId,eventTimestamp,operationName,status",
        encode_query_value(&filter)
    ))
}

/// Percent-encodes a query value (spaces, quotes, `+` and `:` of the timestamps included).
fn encode_query_value(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// One Activity Log event, as far as the hint needs it.
#[derive(Debug, PartialEq)]
pub struct Event {
    pub id: String,
    pub timestamp: OffsetDateTime,
    /// The list it makes stale, if it is a succeeded RBAC write or delete.
    pub stale: Option<Stale>,
}

pub fn read_event(item: &Value) -> Result<Event, FeedError> {
    let id = item
        .get("eventDataId")
        .and_then(Value::as_str)
        .ok_or_else(|| FeedError::Malformed("Activity Log: an event has no eventDataId".into()))?;
    let timestamp = item
        .get("eventTimestamp")
        .and_then(Value::as_str)
        .and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok())
        .ok_or_else(|| {
            FeedError::Malformed(format!(
                "Activity Log: event {id} has no RFC 3339 eventTimestamp"
            ))
        })?;
    let localized = |field: &str| {
        item.get(field)
            .and_then(|f| f.get("value"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_ascii_lowercase()
    };
    let operation = localized("operationName");
    let stale = if localized("status") != "succeeded" {
        None
    } else if operation.starts_with("microsoft.authorization/roleassignments/")
        // A PIM active assignment or an activation is requested as a role assignment schedule
        // request (`roleAssignmentScheduleRequests/write`, Azure PIM REST); what it creates is a
        // role assignment, which the roleAssignments list returns. Whether PIM's own write also
        // shows as `roleAssignments/write` is not documented, so the request counts itself.
        || operation.starts_with("microsoft.authorization/roleassignmentschedule")
    {
        Some(Stale::RoleAssignments)
    } else if operation.starts_with("microsoft.authorization/roledefinitions/") {
        Some(Stale::RoleDefinitions)
    } else if operation.starts_with("microsoft.authorization/roleeligibilityschedule") {
        Some(Stale::RoleEligibility)
    } else {
        None
    };
    Ok(Event {
        id: id.to_string(),
        timestamp,
        stale,
    })
}

/// The event ids a window has seen, with their time (unix seconds), so that the next window,
/// which overlaps this one, skips them.
pub type Seen = BTreeMap<String, i64>;

/// Keeps only the ids the next window can return again (those at or after `window_end - overlap`).
pub fn prune(seen: &mut Seen, window_end: OffsetDateTime, overlap: Duration) {
    let oldest = (window_end - overlap).unix_timestamp();
    seen.retain(|_, at| *at >= oldest);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use time::macros::datetime;

    #[test]
    fn the_filter_is_percent_encoded() {
        let url = query_url(
            "s1",
            datetime!(2026-11-01 10:00 UTC),
            datetime!(2026-11-01 10:30 UTC),
        )
        .unwrap_or_default();
        assert!(
            url.contains("$filter=eventTimestamp%20ge%20%272026-11-01T10%3A00%3A00Z%27"),
            "{url}"
        );
        assert!(!url.contains(' '), "{url}");
    }

    #[test]
    fn only_succeeded_rbac_operations_make_a_list_stale() {
        let event = |op: &str, status: &str| {
            read_event(&json!({
                "eventDataId": "e", "eventTimestamp": "2026-11-01T10:00:00.1234567Z",
                "operationName": {"value": op}, "status": {"value": status}
            }))
            .ok()
            .and_then(|e| e.stale)
        };
        assert_eq!(
            event("Microsoft.Authorization/roleAssignments/write", "Succeeded"),
            Some(Stale::RoleAssignments)
        );
        assert_eq!(
            event("Microsoft.Authorization/roleAssignments/delete", "Started"),
            None
        );
        assert_eq!(
            event("Microsoft.Authorization/roleDefinitions/write", "Succeeded"),
            Some(Stale::RoleDefinitions)
        );
        assert_eq!(
            event(
                "Microsoft.Authorization/policyAssignments/write",
                "Succeeded"
            ),
            None
        );
        assert_eq!(
            event(
                "Microsoft.Authorization/roleAssignmentScheduleRequests/write",
                "Succeeded"
            ),
            Some(Stale::RoleAssignments)
        );
        assert_eq!(
            event(
                "Microsoft.Authorization/roleEligibilityScheduleRequests/write",
                "Succeeded"
            ),
            Some(Stale::RoleEligibility)
        );
    }
}
