//! Graph's read endpoints other than delta: collections with paging (`@odata.nextLink` carrying
//! an opaque `$skiptoken`), `$select`, `$filter`, `$top`, `$count` and the documented `$expand`s,
//! and single-object reads. Soft-deleted users and groups are invisible here, as in Graph.

use std::collections::BTreeMap;
use std::ops::Bound;

use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::odata::{self, GraphError, ODataQuery};
use super::render;
use super::{GraphContext, GraphReply, GraphRequest};
use crate::tenant::Tenant;

/// Page size when `$top` is absent.
const DEFAULT_TOP: usize = 100;
/// A page of directory objects with `$expand` holds at most this many objects.
const EXPANDED_PAGE_LIMIT: usize = 100;
/// Graph returns at most this many related objects through `$expand`.
const EXPAND_LIMIT: usize = 20;

/// Where a list page resumes: after the key of the last object served.
#[derive(Serialize, Deserialize)]
struct ListToken {
    after: String,
    /// When the token was issued (emulator clock, unix nanoseconds).
    #[serde(default)]
    issued: i128,
}

/// Where the page resumes. A token older than `page_token_max_age` (when switched on) is
/// refused as Graph refuses expired directory page tokens: 400 `Directory_ExpiredPageToken`
/// (seen on large tenants mid-pass, msgraph-sdk-dotnet issue 2254).
fn resume_after(ctx: &GraphContext, q: &ODataQuery) -> Result<Option<String>, GraphError> {
    let Some(token) = q.skiptoken.as_deref() else {
        return Ok(None);
    };
    let token = odata::decode_token::<ListToken>(token)?;
    if let Some(max_age) = ctx.state.wire().page_token_max_age {
        let age = ctx.state.clock.now().unix_timestamp_nanos() - token.issued;
        if age > max_age.as_nanos() as i128 {
            return Err(GraphError::new(
                StatusCode::BAD_REQUEST,
                "Directory_ExpiredPageToken",
                "The specified page token value has expired and can no longer be included in your request.",
            ));
        }
    }
    Ok(Some(token.after))
}

fn resume_offset(ctx: &GraphContext, q: &ODataQuery) -> Result<usize, GraphError> {
    match resume_after(ctx, q)? {
        None => Ok(0),
        Some(key) => key
            .parse::<usize>()
            .map_err(|_| GraphError::bad_request("The $skiptoken is not valid for this request.")),
    }
}

fn context_url(ctx: &GraphContext, request: &GraphRequest, entity_set: &str) -> String {
    format!(
        "{}/{}/$metadata#{entity_set}",
        ctx.base_url, request.version
    )
}

/// `$count` on directory objects is an advanced query.
fn check_count(q: &ODataQuery) -> Result<(), GraphError> {
    if q.count && !q.eventual {
        return Err(GraphError::unsupported_query(
            "$count is only supported with the ConsistencyLevel: eventual header.",
        ));
    }
    Ok(())
}

/// Builds one page from `items` (already positioned after the skiptoken): filters, takes `$top`,
/// and adds a nextLink when a further matching item exists. `project` turns a full object into
/// its served form. `count_all` is called on the first page when `$count=true`.
fn page<I, P>(
    ctx: &GraphContext,
    request: &GraphRequest,
    q: &ODataQuery,
    entity_set: &str,
    items: I,
    mut project: P,
    count_all: impl FnOnce() -> usize,
) -> Result<GraphReply, GraphError>
where
    I: Iterator<Item = (String, Map<String, Value>)>,
    P: FnMut(Map<String, Value>) -> Result<Value, GraphError>,
{
    check_count(q)?;
    let mut top = q.top.unwrap_or(DEFAULT_TOP);
    if q.expand.is_some() {
        // Graph's known issue 13635: "$expand on directory objects returns a maximum of 100
        // objects" a page, whatever `$top` asks; the rest follows through the nextLink.
        top = top.min(EXPANDED_PAGE_LIMIT);
    }
    let mut matching = items.filter(|(_, obj)| q.filter.as_ref().is_none_or(|f| f.matches(obj)));
    let mut value = Vec::new();
    let mut last_key = None;
    for (key, obj) in matching.by_ref().take(top) {
        value.push(project(obj)?);
        last_key = Some(key);
    }
    let more = matching.next().is_some();
    let mut body = Map::new();
    body.insert(
        "@odata.context".into(),
        Value::String(context_url(ctx, request, entity_set)),
    );
    if q.count && q.skiptoken.is_none() {
        body.insert("@odata.count".into(), Value::from(count_all()));
    }
    if more && let Some(key) = last_key {
        let token = odata::encode_token(&ListToken {
            after: key,
            issued: ctx.state.clock.now().unix_timestamp_nanos(),
        });
        body.insert(
            "@odata.nextLink".into(),
            Value::String(odata::next_link(
                &ctx.base_url,
                &request.versioned_path(),
                &q.raw,
                &token,
            )),
        );
    }
    body.insert("value".into(), Value::Array(value));
    Ok(GraphReply::ok(Value::Object(body)))
}

/// One page of a collection kept in a `BTreeMap`, resuming after the key in the skiptoken:
/// `live` hides objects Graph does not list (deleted items), `render` gives the full JSON and
/// `project` the served form.
#[allow(clippy::too_many_arguments)]
fn keyed_page<K, T, R, P>(
    ctx: &GraphContext,
    request: &GraphRequest,
    q: &ODataQuery,
    entity_set: &str,
    map: &BTreeMap<K, T>,
    live: fn(&T) -> bool,
    render: R,
    project: P,
) -> Result<GraphReply, GraphError>
where
    K: Ord + Clone + ToString + std::str::FromStr,
    R: Fn(&T) -> Map<String, Value> + Copy,
    P: FnMut(Map<String, Value>) -> Result<Value, GraphError>,
{
    let start = match resume_after(ctx, q)? {
        None => Bound::Unbounded,
        Some(key) => Bound::Excluded(key.parse::<K>().map_err(|_| {
            GraphError::bad_request("The $skiptoken is not valid for this request.")
        })?),
    };
    let items = map
        .range((start, Bound::Unbounded))
        .filter(|(_, v)| live(v))
        .map(|(k, v)| (k.to_string(), render(v)));
    page(ctx, request, q, entity_set, items, project, || {
        count_matching(q, map.values().filter(|v| live(v)).map(render))
    })
}

fn always<T>(_: &T) -> bool {
    true
}

fn count_matching<I: Iterator<Item = Map<String, Value>>>(q: &ODataQuery, items: I) -> usize {
    items
        .filter(|obj| q.filter.as_ref().is_none_or(|f| f.matches(obj)))
        .count()
}

fn single(ctx: &GraphContext, request: &GraphRequest, entity_set: &str, body: Value) -> GraphReply {
    let mut body = body;
    if let Value::Object(map) = &mut body {
        map.insert(
            "@odata.context".into(),
            Value::String(format!("{}/$entity", context_url(ctx, request, entity_set))),
        );
    }
    GraphReply::ok(body)
}

pub fn organization(ctx: &GraphContext, request: &GraphRequest) -> Result<GraphReply, GraphError> {
    let q = request.query()?;
    let tenant = ctx.state.read_tenant();
    let org = render::organization(&tenant.organization, tenant.organization.has_p2_license);
    let item = (tenant.tenant_id().to_string(), org);
    page(
        ctx,
        request,
        &q,
        "organization",
        std::iter::once(item),
        |o| {
            Ok(q.project(
                o,
                &[
                    "id",
                    "displayName",
                    "verifiedDomains",
                    "createdDateTime",
                    "tenantType",
                    "assignedPlans",
                ],
            ))
        },
        || 1,
    )
}

fn check_sign_in_activity(q: &ODataQuery, tenant: &Tenant) -> Result<(), GraphError> {
    if q.selects("signInActivity") && !tenant.organization.has_p2_license {
        return Err(GraphError::new(
            StatusCode::FORBIDDEN,
            "Authentication_RequestFromNonPremiumTenantOrB2CTenant",
            "Neither tenant is B2C or tenant doesn't have premium license",
        ));
    }
    Ok(())
}

/// A user's JSON with the documented `$expand=manager`.
fn user_with_expand(
    tenant: &Tenant,
    q: &ODataQuery,
    full: Map<String, Value>,
    id: Uuid,
) -> Result<Value, GraphError> {
    let mut projected = q.project(full, render::USER_DEFAULTS);
    if let Some(expand) = &q.expand {
        if expand.property != "manager" {
            return Err(GraphError::bad_request(format!(
                "Could not find a property named '{}' on type 'microsoft.graph.user'.",
                expand.property
            )));
        }
        let manager = tenant
            .users
            .get(&id)
            .and_then(|u| u.manager)
            .and_then(|m| render::directory_object(tenant, m));
        if let (Value::Object(map), Some(manager)) = (&mut projected, manager) {
            let kind = tenant.directory_object_kind(
                Uuid::parse_str(
                    manager
                        .get("id")
                        .and_then(Value::as_str)
                        .unwrap_or_default(),
                )
                .unwrap_or_default(),
            );
            map.insert(
                "manager".into(),
                odata::project(
                    manager,
                    expand.select.as_deref(),
                    render::directory_object_defaults(kind),
                ),
            );
        }
    }
    Ok(projected)
}

pub fn users(ctx: &GraphContext, request: &GraphRequest) -> Result<GraphReply, GraphError> {
    let q = request.query()?;
    let tenant = ctx.state.read_tenant();
    check_sign_in_activity(&q, &tenant)?;
    let premium = tenant.organization.has_p2_license;
    keyed_page(
        ctx,
        request,
        &q,
        "users",
        &tenant.users,
        |u| u.deleted.is_none(),
        |u| render::user(u, premium),
        |full| {
            let id = full
                .get("id")
                .and_then(Value::as_str)
                .and_then(|s| Uuid::parse_str(s).ok())
                .unwrap_or_default();
            user_with_expand(&tenant, &q, full, id)
        },
    )
}

/// Finds a live user by object id or user principal name.
fn find_user(tenant: &Tenant, id_or_upn: &str) -> Option<Uuid> {
    match Uuid::parse_str(id_or_upn) {
        Ok(id) => tenant
            .users
            .get(&id)
            .filter(|u| u.deleted.is_none())
            .map(|u| u.id),
        Err(_) => tenant
            .live_users()
            .find(|u| u.user_principal_name.eq_ignore_ascii_case(id_or_upn))
            .map(|u| u.id),
    }
}

pub fn user(
    ctx: &GraphContext,
    request: &GraphRequest,
    id: &str,
) -> Result<GraphReply, GraphError> {
    let q = request.query()?;
    let tenant = ctx.state.read_tenant();
    check_sign_in_activity(&q, &tenant)?;
    let uid = find_user(&tenant, id).ok_or_else(|| GraphError::not_found(id))?;
    let full = tenant
        .users
        .get(&uid)
        .map(|u| render::user(u, tenant.organization.has_p2_license))
        .ok_or_else(|| GraphError::not_found(id))?;
    let body = user_with_expand(&tenant, &q, full, uid)?;
    Ok(single(ctx, request, "users", body))
}

pub fn mailbox_settings(
    ctx: &GraphContext,
    request: &GraphRequest,
    id: &str,
) -> Result<GraphReply, GraphError> {
    let q = request.query()?;
    let tenant = ctx.state.read_tenant();
    let uid = find_user(&tenant, id).ok_or_else(|| GraphError::not_found(id))?;
    let user = tenant
        .users
        .get(&uid)
        .ok_or_else(|| GraphError::not_found(id))?;
    let Some(purpose) = user.mailbox.user_purpose() else {
        return Err(GraphError::new(
            StatusCode::NOT_FOUND,
            "MailboxNotEnabledForRESTAPI",
            "REST API is not yet supported for this mailbox.",
        ));
    };
    let full = json!({
        "archiveFolder": "AAMkAGI2TGuLAAA=",
        "timeZone": "UTC",
        "delegateMeetingMessageDeliveryOptions": "sendToDelegateOnly",
        "dateFormat": "yyyy-MM-dd",
        "timeFormat": "HH:mm",
        "userPurpose": purpose,
        "automaticRepliesSetting": {"status": "disabled", "externalAudience": "all", "internalReplyMessage": "", "externalReplyMessage": ""},
        "language": {"locale": "en-US", "displayName": "English (United States)"},
        "workingHours": {"daysOfWeek": ["monday", "tuesday", "wednesday", "thursday", "friday"], "startTime": "08:00:00.0000000", "endTime": "17:00:00.0000000", "timeZone": {"name": "UTC"}},
    });
    let full = match full {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    let mut body = match q.select.as_deref() {
        Some(select) => odata::project(full, Some(select), &[]),
        None => Value::Object(full),
    };
    if let Value::Object(map) = &mut body {
        map.remove("id");
        map.insert(
            "@odata.context".into(),
            Value::String(format!(
                "{}/{}/$metadata#users('{uid}')/mailboxSettings",
                ctx.base_url, request.version
            )),
        );
    }
    Ok(GraphReply::ok(body))
}

fn expand_links(tenant: &Tenant, q: &ODataQuery, projected: &mut Value, ids: &[Uuid]) {
    let Some(expand) = &q.expand else { return };
    let related: Vec<Value> = ids
        .iter()
        .filter_map(|m| {
            let obj = render::directory_object(tenant, *m)?;
            let kind = tenant.directory_object_kind(*m);
            Some(odata::project(
                obj,
                expand.select.as_deref(),
                render::directory_object_defaults(kind),
            ))
        })
        .take(EXPAND_LIMIT)
        .collect();
    if let Value::Object(map) = projected {
        map.insert(expand.property.clone(), Value::Array(related));
    }
}

fn group_expand(
    tenant: &Tenant,
    q: &ODataQuery,
    full: Map<String, Value>,
) -> Result<Value, GraphError> {
    let mut projected = q.project(full, render::GROUP_DEFAULTS);
    if let Some(expand) = &q.expand {
        let id = projected
            .get("id")
            .and_then(Value::as_str)
            .and_then(|s| Uuid::parse_str(s).ok())
            .unwrap_or_default();
        let group = tenant.groups.get(&id);
        let ids = match expand.property.as_str() {
            "members" => group.map(|g| g.members.clone()),
            "owners" => group.map(|g| g.owners.clone()),
            other => {
                return Err(GraphError::bad_request(format!(
                    "Could not find a property named '{other}' on type 'microsoft.graph.group'."
                )));
            }
        }
        .unwrap_or_default();
        expand_links(tenant, q, &mut projected, &ids);
    }
    Ok(projected)
}

pub fn groups(ctx: &GraphContext, request: &GraphRequest) -> Result<GraphReply, GraphError> {
    let q = request.query()?;
    let tenant = ctx.state.read_tenant();
    keyed_page(
        ctx,
        request,
        &q,
        "groups",
        &tenant.groups,
        |g| g.deleted.is_none(),
        render::group,
        |full| group_expand(&tenant, &q, full),
    )
}

fn live_group(tenant: &Tenant, id: &str) -> Result<Uuid, GraphError> {
    Uuid::parse_str(id)
        .ok()
        .filter(|gid| tenant.groups.get(gid).is_some_and(|g| g.deleted.is_none()))
        .ok_or_else(|| GraphError::not_found(id))
}

pub fn group(
    ctx: &GraphContext,
    request: &GraphRequest,
    id: &str,
) -> Result<GraphReply, GraphError> {
    let q = request.query()?;
    let tenant = ctx.state.read_tenant();
    let gid = live_group(&tenant, id)?;
    let full = tenant
        .groups
        .get(&gid)
        .map(render::group)
        .ok_or_else(|| GraphError::not_found(id))?;
    let body = group_expand(&tenant, &q, full)?;
    Ok(single(ctx, request, "groups", body))
}

/// Lists directory objects by id, in the given order, paged by position.
fn link_page(
    ctx: &GraphContext,
    request: &GraphRequest,
    q: &ODataQuery,
    tenant: &Tenant,
    ids: &[Uuid],
) -> Result<GraphReply, GraphError> {
    let start = resume_offset(ctx, q)?;
    let items = ids
        .iter()
        .enumerate()
        .skip(start)
        .filter_map(|(i, m)| render::directory_object(tenant, *m).map(|o| (i.to_string(), o)));
    page(
        ctx,
        request,
        q,
        "directoryObjects",
        items,
        |full| {
            let kind = full
                .get("id")
                .and_then(Value::as_str)
                .and_then(|s| Uuid::parse_str(s).ok())
                .and_then(|id| tenant.directory_object_kind(id));
            Ok(q.project(full, render::directory_object_defaults(kind)))
        },
        || {
            count_matching(
                q,
                ids.iter()
                    .filter_map(|m| render::directory_object(tenant, *m)),
            )
        },
    )
}

pub fn group_links(
    ctx: &GraphContext,
    request: &GraphRequest,
    id: &str,
    relation: &str,
) -> Result<GraphReply, GraphError> {
    let q = request.query()?;
    let tenant = ctx.state.read_tenant();
    let gid = live_group(&tenant, id)?;
    let group = tenant
        .groups
        .get(&gid)
        .ok_or_else(|| GraphError::not_found(id))?;
    let ids = if relation == "members" {
        &group.members
    } else {
        &group.owners
    };
    link_page(ctx, request, &q, &tenant, ids)
}

fn sp_expand(
    tenant: &Tenant,
    q: &ODataQuery,
    full: Map<String, Value>,
) -> Result<Value, GraphError> {
    let mut projected = q.project(full, render::SERVICE_PRINCIPAL_DEFAULTS);
    if let Some(expand) = &q.expand {
        let id = projected
            .get("id")
            .and_then(Value::as_str)
            .and_then(|s| Uuid::parse_str(s).ok())
            .unwrap_or_default();
        let sp = tenant.service_principals.get(&id);
        match expand.property.as_str() {
            "appRoleAssignedTo" => {
                let related: Vec<Value> = sp
                    .map(|sp| {
                        sp.app_role_assigned_to
                            .iter()
                            .take(EXPAND_LIMIT)
                            .map(|a| {
                                odata::project(
                                    render::app_role_assignment(a),
                                    expand.select.as_deref(),
                                    &APP_ROLE_ASSIGNMENT_FIELDS,
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                if let Value::Object(map) = &mut projected {
                    map.insert("appRoleAssignedTo".into(), Value::Array(related));
                }
            }
            "owners" => {
                let ids = sp.map(|s| s.owners.clone()).unwrap_or_default();
                expand_links(tenant, q, &mut projected, &ids);
            }
            other => {
                return Err(GraphError::bad_request(format!(
                    "Could not find a property named '{other}' on type 'microsoft.graph.servicePrincipal'."
                )));
            }
        }
    }
    Ok(projected)
}

const APP_ROLE_ASSIGNMENT_FIELDS: [&str; 8] = [
    "deletedDateTime",
    "appRoleId",
    "createdDateTime",
    "principalDisplayName",
    "principalId",
    "principalType",
    "resourceDisplayName",
    "resourceId",
];

pub fn service_principals(
    ctx: &GraphContext,
    request: &GraphRequest,
) -> Result<GraphReply, GraphError> {
    let q = request.query()?;
    let tenant = ctx.state.read_tenant();
    keyed_page(
        ctx,
        request,
        &q,
        "servicePrincipals",
        &tenant.service_principals,
        always,
        render::service_principal,
        |full| sp_expand(&tenant, &q, full),
    )
}

fn find_service_principal(tenant: &Tenant, id: &str) -> Result<Uuid, GraphError> {
    Uuid::parse_str(id)
        .ok()
        .filter(|sid| tenant.service_principals.contains_key(sid))
        .ok_or_else(|| GraphError::not_found(id))
}

pub fn service_principal(
    ctx: &GraphContext,
    request: &GraphRequest,
    id: &str,
) -> Result<GraphReply, GraphError> {
    let q = request.query()?;
    let tenant = ctx.state.read_tenant();
    let sid = find_service_principal(&tenant, id)?;
    let full = tenant
        .service_principals
        .get(&sid)
        .map(render::service_principal)
        .ok_or_else(|| GraphError::not_found(id))?;
    let body = sp_expand(&tenant, &q, full)?;
    Ok(single(ctx, request, "servicePrincipals", body))
}

pub fn app_role_assigned_to(
    ctx: &GraphContext,
    request: &GraphRequest,
    id: &str,
) -> Result<GraphReply, GraphError> {
    let q = request.query()?;
    let tenant = ctx.state.read_tenant();
    let sid = find_service_principal(&tenant, id)?;
    let assignments = tenant
        .service_principals
        .get(&sid)
        .map(|sp| sp.app_role_assigned_to.as_slice())
        .unwrap_or_default();
    let start = resume_offset(ctx, &q)?;
    let items = assignments
        .iter()
        .enumerate()
        .skip(start)
        .map(|(i, a)| (i.to_string(), render::app_role_assignment(a)));
    page(
        ctx,
        request,
        &q,
        &format!("servicePrincipals('{sid}')/appRoleAssignedTo"),
        items,
        |full| Ok(q.project(full, &APP_ROLE_ASSIGNMENT_FIELDS)),
        || count_matching(&q, assignments.iter().map(render::app_role_assignment)),
    )
}

pub fn service_principal_owners(
    ctx: &GraphContext,
    request: &GraphRequest,
    id: &str,
) -> Result<GraphReply, GraphError> {
    let q = request.query()?;
    let tenant = ctx.state.read_tenant();
    let sid = find_service_principal(&tenant, id)?;
    let owners = tenant
        .service_principals
        .get(&sid)
        .map(|sp| sp.owners.clone())
        .unwrap_or_default();
    link_page(ctx, request, &q, &tenant, &owners)
}

pub fn directory_roles(
    ctx: &GraphContext,
    request: &GraphRequest,
) -> Result<GraphReply, GraphError> {
    let q = request.query()?;
    let tenant = ctx.state.read_tenant();
    keyed_page(
        ctx,
        request,
        &q,
        "directoryRoles",
        &tenant.directory_roles,
        always,
        render::directory_role,
        |full| Ok(q.project(full, render::DIRECTORY_ROLE_DEFAULTS)),
    )
}

pub fn directory_object(
    ctx: &GraphContext,
    request: &GraphRequest,
    id: &str,
) -> Result<GraphReply, GraphError> {
    let q = request.query()?;
    let tenant = ctx.state.read_tenant();
    let oid = Uuid::parse_str(id).map_err(|_| GraphError::not_found(id))?;
    let full = render::directory_object(&tenant, oid).ok_or_else(|| GraphError::not_found(id))?;
    let kind = tenant.directory_object_kind(oid);
    let body = q.project(full, render::directory_object_defaults(kind));
    Ok(single(ctx, request, "directoryObjects", body))
}

fn require_p2(tenant: &Tenant) -> Result<(), GraphError> {
    if tenant.organization.has_p2_license {
        Ok(())
    } else {
        Err(GraphError::license_required())
    }
}

/// `roleManagement/directory/{roleDefinitions|roleAssignments|roleEligibilitySchedules|roleEligibilityScheduleInstances}`.
pub fn role_management(
    ctx: &GraphContext,
    request: &GraphRequest,
    collection: &str,
) -> Result<GraphReply, GraphError> {
    let q = request.query()?;
    let tenant = ctx.state.read_tenant();
    let entity_set = format!("roleManagement/directory/{collection}");
    match collection {
        "roleDefinitions" => keyed_page(
            ctx,
            request,
            &q,
            &entity_set,
            &tenant.directory_role_definitions,
            always,
            render::role_definition,
            |full| Ok(q.project(full, &ROLE_DEFINITION_FIELDS)),
        ),
        "roleAssignments" => keyed_page(
            ctx,
            request,
            &q,
            &entity_set,
            &tenant.directory_role_assignments,
            always,
            render::role_assignment,
            |full| role_assignment_expand(&tenant, &q, full),
        ),
        "roleEligibilitySchedules" => {
            require_p2(&tenant)?;
            keyed_page(
                ctx,
                request,
                &q,
                &entity_set,
                &tenant.directory_role_eligibilities,
                always,
                render::role_eligibility_schedule,
                |full| Ok(Value::Object(full)),
            )
        }
        "roleEligibilityScheduleInstances" => {
            require_p2(&tenant)?;
            keyed_page(
                ctx,
                request,
                &q,
                &entity_set,
                &tenant.directory_role_eligibilities,
                always,
                render::role_eligibility_instance,
                |full| Ok(Value::Object(full)),
            )
        }
        other => Err(GraphError::no_route(&format!(
            "roleManagement/directory/{other}"
        ))),
    }
}

/// `roleAssignments` with the documented `$expand=principal` or `$expand=roleDefinition`.
fn role_assignment_expand(
    tenant: &Tenant,
    q: &ODataQuery,
    full: Map<String, Value>,
) -> Result<Value, GraphError> {
    let mut projected = q.project(full, &ROLE_ASSIGNMENT_FIELDS);
    let Some(expand) = &q.expand else {
        return Ok(projected);
    };
    let key = match expand.property.as_str() {
        "principal" => "principalId",
        "roleDefinition" => "roleDefinitionId",
        other => {
            return Err(GraphError::bad_request(format!(
                "Could not find a property named '{other}' on type 'microsoft.graph.unifiedRoleAssignment'."
            )));
        }
    };
    let id = projected
        .get(key)
        .and_then(Value::as_str)
        .and_then(|s| Uuid::parse_str(s).ok())
        .unwrap_or_default();
    let related = if key == "principalId" {
        render::directory_object(tenant, id).map(|o| {
            let defaults = render::directory_object_defaults(tenant.directory_object_kind(id));
            odata::project(o, expand.select.as_deref(), defaults)
        })
    } else {
        tenant.directory_role_definitions.get(&id).map(|d| {
            odata::project(
                render::role_definition(d),
                expand.select.as_deref(),
                &ROLE_DEFINITION_FIELDS,
            )
        })
    };
    if let Value::Object(map) = &mut projected {
        map.insert(expand.property.clone(), related.unwrap_or(Value::Null));
    }
    Ok(projected)
}

const ROLE_DEFINITION_FIELDS: [&str; 10] = [
    "description",
    "displayName",
    "isBuiltIn",
    "isEnabled",
    "resourceScopes",
    "templateId",
    "version",
    "rolePermissions",
    "inheritsPermissionsFrom",
    "id",
];

const ROLE_ASSIGNMENT_FIELDS: [&str; 5] = [
    "principalId",
    "directoryScopeId",
    "roleDefinitionId",
    "appScopeId",
    "condition",
];

/// PIM for Groups: `identityGovernance/privilegedAccess/group/eligibilitySchedules` and
/// `eligibilityScheduleInstances`. Graph requires a `groupId` or `principalId` filter.
pub fn group_eligibility(
    ctx: &GraphContext,
    request: &GraphRequest,
    collection: &str,
) -> Result<GraphReply, GraphError> {
    let q = request.query()?;
    let tenant = ctx.state.read_tenant();
    let instances = match collection {
        "eligibilitySchedules" => false,
        "eligibilityScheduleInstances" => true,
        other => {
            return Err(GraphError::no_route(&format!(
                "identityGovernance/privilegedAccess/group/{other}"
            )));
        }
    };
    let scoped = q
        .filter
        .as_ref()
        .is_some_and(|f| f.equality("groupId").is_some() || f.equality("principalId").is_some());
    if !scoped {
        return Err(GraphError::bad_request(
            "The request requires a $filter on groupId or principalId (for example $filter=groupId eq '{id}').",
        ));
    }
    require_p2(&tenant)?;
    let entity_set = format!("identityGovernance/privilegedAccess/group/{collection}");
    let render_one = if instances {
        render::group_eligibility_instance
    } else {
        render::group_eligibility_schedule
    };
    keyed_page(
        ctx,
        request,
        &q,
        &entity_set,
        &tenant.group_eligibilities,
        always,
        render_one,
        |full| Ok(Value::Object(full)),
    )
}
