//! The Activity Log (`microsoft.insights/eventtypes/management/values`, api-version
//! 2015-04-01). `$filter` is required and takes only the documented forms:
//! `eventTimestamp ge '...' and eventTimestamp le '...'`, optionally with one of
//! `resourceProvider eq`, `resourceGroupName eq`, `resourceUri eq` or `correlationId eq`.
//! An event is visible only once its `submissionTimestamp` has passed on the emulator clock.

use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{ArmContext, ArmError, ArmReply, ArmRequest, arm_time, page};
use crate::tenant::ActivityLogEvent;

/// Events per page (the log pages past 200 records).
const EVENTS_PER_PAGE: usize = 200;

#[derive(Default)]
struct EventFilter {
    from: Option<OffsetDateTime>,
    to: Option<OffsetDateTime>,
    resource_provider: Option<String>,
    resource_group: Option<String>,
    resource_uri: Option<String>,
    correlation_id: Option<String>,
}

fn invalid(message: impl Into<String>) -> ArmError {
    ArmError::bad_request("BadRequest", message)
}

fn parse_filter(text: Option<&str>) -> Result<EventFilter, ArmError> {
    let text = text.ok_or_else(|| {
        invalid("The $filter query parameter is required and must contain 'eventTimestamp ge'.")
    })?;
    let mut filter = EventFilter::default();
    let mut extra = 0;
    for clause in text.split(" and ").map(str::trim) {
        let (field, rest) = clause
            .split_once(' ')
            .ok_or_else(|| invalid(format!("The filter clause '{clause}' is not valid.")))?;
        let (op, value) = rest
            .trim()
            .split_once(' ')
            .ok_or_else(|| invalid(format!("The filter clause '{clause}' is not valid.")))?;
        let value = value.trim().trim_matches('\'').to_string();
        let time = || {
            OffsetDateTime::parse(&value, &Rfc3339).map_err(|_| {
                invalid(format!(
                    "The time '{value}' in the filter is not a valid ISO 8601 timestamp."
                ))
            })
        };
        match (
            field.to_ascii_lowercase().as_str(),
            op.to_ascii_lowercase().as_str(),
        ) {
            ("eventtimestamp", "ge") => filter.from = Some(time()?),
            ("eventtimestamp", "le") => filter.to = Some(time()?),
            ("resourceprovider", "eq") => {
                filter.resource_provider = Some(value);
                extra += 1;
            }
            ("resourcegroupname", "eq") => {
                filter.resource_group = Some(value);
                extra += 1;
            }
            ("resourceuri", "eq") => {
                filter.resource_uri = Some(value);
                extra += 1;
            }
            ("correlationid", "eq") => {
                filter.correlation_id = Some(value);
                extra += 1;
            }
            _ => {
                return Err(invalid(format!(
                    "The filter clause '{clause}' is not supported. You cannot filter on '{field}'."
                )));
            }
        }
    }
    if filter.from.is_none() {
        return Err(invalid(
            "The $filter must contain a start time: 'eventTimestamp ge'.",
        ));
    }
    if extra > 1 {
        return Err(invalid(
            "The $filter can contain at most one of resourceProvider, resourceGroupName, resourceUri or correlationId.",
        ));
    }
    Ok(filter)
}

fn resource_group_of(resource_id: &str) -> String {
    let lower = resource_id.to_ascii_lowercase();
    lower
        .find("/resourcegroups/")
        .map(|at| {
            resource_id[at + "/resourcegroups/".len()..]
                .split('/')
                .next()
                .unwrap_or_default()
                .to_string()
        })
        .unwrap_or_default()
}

fn event_json(tenant_id: &str, e: &ActivityLogEvent) -> Value {
    let verb = e.operation_name.rsplit('/').next().unwrap_or_default();
    let localized = match verb {
        "write" => "Create role assignment",
        "delete" => "Delete role assignment",
        _ => e.operation_name.as_str(),
    };
    let (event_name, sub_status) = match e.status.as_str() {
        "Started" => (
            json!({"value": "BeginRequest", "localizedValue": "Begin request"}),
            json!({"value": "", "localizedValue": ""}),
        ),
        _ => (
            json!({"value": "EndRequest", "localizedValue": "End request"}),
            if verb == "write" {
                json!({"value": "Created", "localizedValue": "Created (HTTP Status Code: 201)"})
            } else {
                json!({"value": "OK", "localizedValue": "OK (HTTP Status Code: 200)"})
            },
        ),
    };
    let ticks = (e.event_timestamp.unix_timestamp_nanos() / 100) + 621_355_968_000_000_000;
    json!({
        "authorization": {"action": e.operation_name, "role": "Owner", "scope": e.resource_id},
        "httpRequest": {
            "clientRequestId": e.correlation_id.to_string(),
            "clientIpAddress": "127.0.0.1",
            "method": if verb == "delete" { "DELETE" } else { "PUT" },
        },
        "caller": e.caller,
        "channels": "Operation",
        "claims": {"appid": e.caller, "http://schemas.microsoft.com/identity/claims/tenantid": tenant_id},
        "correlationId": e.correlation_id.to_string(),
        "description": "",
        "eventDataId": e.event_data_id.to_string(),
        "eventName": event_name,
        "category": {"value": "Administrative", "localizedValue": "Administrative"},
        "id": format!("{}/events/{}/ticks/{ticks}", e.resource_id, e.event_data_id),
        "level": "Informational",
        "resourceGroupName": resource_group_of(&e.resource_id),
        "resourceProviderName": {"value": e.resource_provider, "localizedValue": "Microsoft Authorization"},
        "resourceId": e.resource_id,
        "resourceType": {"value": "Microsoft.Authorization/roleAssignments", "localizedValue": "Microsoft.Authorization/roleAssignments"},
        "operationId": e.correlation_id.to_string(),
        "operationName": {"value": e.operation_name, "localizedValue": localized},
        "properties": {"statusCode": if e.status == "Started" { "" } else if verb == "write" { "Created" } else { "OK" }},
        "status": {"value": e.status, "localizedValue": e.status},
        "subStatus": sub_status,
        "eventTimestamp": arm_time(e.event_timestamp),
        "submissionTimestamp": arm_time(e.submission_timestamp),
        "subscriptionId": e.subscription.to_string(),
        "tenantId": tenant_id,
    })
}

/// Events of one subscription (or, with `None`, tenant-level events, of which the emulator
/// records none: management-group and root writes are not logged per subscription).
pub fn list_events(
    ctx: &ArmContext,
    request: &ArmRequest,
    subscription: Option<&str>,
) -> Result<ArmReply, ArmError> {
    let filter = parse_filter(request.param("$filter"))?;
    let now = ctx.state.clock.now();
    let tenant = ctx.state.read_tenant();
    let subscription = subscription
        .map(|s| super::subscription_id(&tenant, s))
        .transpose()?;
    let tenant_id = tenant.tenant_id().to_string();
    let mut items: Vec<Value> = Vec::new();
    if let Some(sub) = subscription {
        for e in tenant.activity_log.iter().filter(|e| e.subscription == sub) {
            let visible = e.submission_timestamp <= now;
            let in_window = filter.from.is_none_or(|f| e.event_timestamp >= f)
                && filter.to.is_none_or(|t| e.event_timestamp <= t);
            let matches = filter
                .resource_provider
                .as_ref()
                .is_none_or(|p| p.eq_ignore_ascii_case(&e.resource_provider))
                && filter
                    .resource_group
                    .as_ref()
                    .is_none_or(|g| g.eq_ignore_ascii_case(&resource_group_of(&e.resource_id)))
                && filter
                    .resource_uri
                    .as_ref()
                    .is_none_or(|u| u.eq_ignore_ascii_case(&e.resource_id))
                && filter
                    .correlation_id
                    .as_ref()
                    .is_none_or(|c| c.eq_ignore_ascii_case(&e.correlation_id.to_string()));
            if visible && in_window && matches {
                items.push(event_json(&tenant_id, e));
            }
        }
    }
    // The log lists the newest events first.
    items.reverse();
    page(ctx, request, items, EVENTS_PER_PAGE)
}
