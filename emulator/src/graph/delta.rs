//! Graph delta queries for users, groups, servicePrincipals and directoryRoles, answered from the
//! tenant's change journal as Microsoft documents them
//! (https://learn.microsoft.com/en-us/graph/delta-query-overview, delta-query-groups):
//!
//! - A round is a sequence of pages linked by `@odata.nextLink` (`$skiptoken`) and ends with an
//!   `@odata.deltaLink` (`$deltatoken`). Both tokens are opaque and carry the query (`$select`,
//!   the `id` filter), the journal seq the round covers and when it was issued.
//! - The initial round lists every live object; a later round lists objects changed after the
//!   token's seq: live ones with their properties (only the changed ones under
//!   `Prefer: return=minimal`), soft-deleted ones as `@removed: {"reason": "changed"}`, gone ones
//!   as `"deleted"`. A change to a property outside `$select` does not bring an object back.
//! - `members@delta` / `owners@delta` (when selected) list every link in the initial round and
//!   the added and removed links (`@removed: {"reason": "deleted"}`) later. A page holds at most
//!   200 objects and 500 links; a large group is split over pages and repeated on each.
//! - Initial rounds repeat an object at page boundaries (Graph documents duplicates).
//! - `$deltatoken=latest` answers only a deltaLink. A token older than the configured age gets
//!   400 `syncStateNotFound`; while the resync switch is on, older tokens get 410 Gone with a
//!   `Location` holding the query and an empty `$deltatoken`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;
use std::sync::atomic::Ordering;

use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use uuid::Uuid;

use super::odata::{self, GraphError};
use super::render;
use super::{GraphContext, GraphReply, GraphRequest};
use crate::tenant::{DeltaKind, LinkRelation, ObjectChange, Tenant};

/// Objects per delta page.
pub const MAX_OBJECTS_PER_PAGE: usize = 200;
/// Member and owner links per delta page.
pub const MAX_LINKS_PER_PAGE: usize = 500;

/// Everything a delta token carries.
#[derive(Serialize, Deserialize, Clone, Debug)]
struct DeltaToken {
    /// Collection: users, groups, servicePrincipals, directoryRoles.
    k: String,
    sel: Option<Vec<String>>,
    /// Object ids as `u128` (`Uuid::as_u128`), so tokens stay short.
    ids: Option<Vec<u128>>,
    /// The round lists changes with seq in (from, upto]; `full` lists every live object instead.
    from: u64,
    upto: u64,
    full: bool,
    /// `Prefer: return=minimal` was asked for at the start of the round.
    min: bool,
    /// When the token was issued, in unix nanoseconds on the emulator clock.
    issued: i128,
    /// The last container fully served, and a container served up to a link offset.
    after: Option<u128>,
    partial: Option<(u128, usize)>,
}

fn kind_of(collection: &str) -> Option<DeltaKind> {
    match collection {
        "users" => Some(DeltaKind::User),
        "groups" => Some(DeltaKind::Group),
        "servicePrincipals" => Some(DeltaKind::ServicePrincipal),
        "directoryRoles" => Some(DeltaKind::DirectoryRole),
        _ => None,
    }
}

fn wants_minimal(request: &GraphRequest) -> bool {
    request
        .headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| {
            v.split(',')
                .any(|p| p.trim().eq_ignore_ascii_case("return=minimal"))
        })
}

pub fn handle(
    ctx: &GraphContext,
    request: &GraphRequest,
    collection: &str,
) -> Result<GraphReply, GraphError> {
    let Some(kind) = kind_of(collection) else {
        return Err(GraphError::no_route(&request.versioned_path()));
    };
    let raw: HashMap<String, String> = url::form_urlencoded::parse(request.raw_query.as_bytes())
        .into_owned()
        .collect();
    let now = ctx.state.clock.now();
    let now_nanos = now.unix_timestamp_nanos();
    // servicePrincipal-delta documents neither `Prefer: return=minimal` nor
    // `$deltatoken=latest` (delta-query-overview documents them for users and groups only).
    let documented_only = kind == DeltaKind::ServicePrincipal
        && ctx.state.wire().service_principal_delta_as_documented;
    let minimal_header = wants_minimal(request) && !documented_only;
    let select_in_url = raw.get("$select").map(|s| {
        s.split(',')
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty())
            .collect::<Vec<_>>()
    });
    // `$expand=members` (the groups tutorial's form) tracks members like `$select=members`.
    let select_in_url = match raw.get("$expand").map(String::as_str) {
        None => select_in_url,
        Some("members") if kind == DeltaKind::Group => select_in_url.map(|mut sel| {
            sel.push("members".to_string());
            sel
        }),
        Some(other) => {
            return Err(GraphError::bad_request(format!(
                "$expand={other} is not supported on this delta query."
            )));
        }
    };
    let ids_in_url = raw.get("$filter").map(|f| id_filter(f, kind)).transpose()?;

    let tenant = ctx.state.read_tenant();
    let current_seq = tenant.journal.current_seq();

    let fresh = |sel: Option<Vec<String>>, ids: Option<Vec<u128>>| DeltaToken {
        k: collection.to_string(),
        sel,
        ids,
        from: 0,
        upto: current_seq,
        full: true,
        min: false,
        issued: now_nanos,
        after: None,
        partial: None,
    };

    let state = if let Some(token) = raw.get("$skiptoken") {
        if select_in_url.is_some() {
            return Err(GraphError::bad_request(
                "$select is not supported together with a $skiptoken.",
            ));
        }
        let state: DeltaToken = odata::decode_token(token)?;
        check_token(ctx, request, &state, collection, now)?;
        state
    } else if let Some(token) = raw.get("$deltatoken") {
        match token.as_str() {
            "latest" if documented_only => {
                return Err(GraphError::bad_request(
                    "The $deltatoken is not valid for this request.",
                ));
            }
            "latest" => {
                let state = fresh(select_in_url, ids_in_url);
                return Ok(delta_link_only(
                    ctx,
                    request,
                    &state,
                    current_seq,
                    now_nanos,
                ));
            }
            // An empty token (the Location of a 410) starts over with a full round.
            "" => fresh(select_in_url, ids_in_url),
            token => {
                let previous: DeltaToken = odata::decode_token(token)?;
                check_token(ctx, request, &previous, collection, now)?;
                DeltaToken {
                    sel: select_in_url.or(previous.sel),
                    ids: previous.ids,
                    from: previous.from,
                    upto: current_seq,
                    full: false,
                    min: minimal_header,
                    issued: now_nanos,
                    after: None,
                    partial: None,
                    k: previous.k,
                }
            }
        }
    } else {
        fresh(select_in_url, ids_in_url)
    };
    if state.k != collection {
        return Err(GraphError::bad_request(
            "The delta token belongs to another collection.",
        ));
    }
    let minimal = !state.full && (state.min || minimal_header);
    let mut reply = serve_page(ctx, request, &tenant, kind, state, minimal, now_nanos)?;
    if minimal {
        reply
            .headers
            .push(("Preference-Applied", "return=minimal".into()));
    }
    Ok(reply)
}

/// `$filter=id eq '...' or id eq '...'`, the only filter delta accepts (at most 50 ids for
/// users and groups).
fn id_filter(text: &str, kind: DeltaKind) -> Result<Vec<u128>, GraphError> {
    let filter = odata::Filter::parse(text)?;
    let ids = filter.id_list().ok_or_else(|| {
        GraphError::unsupported_query(
            "Delta queries support $filter only on id, as id eq '{id}' joined with or.",
        )
    })?;
    if ids.len() > 50 && matches!(kind, DeltaKind::User | DeltaKind::Group) {
        return Err(GraphError::unsupported_query(
            "A delta $filter can name at most 50 ids.",
        ));
    }
    ids.iter()
        .map(|id| {
            Uuid::parse_str(id).map(|u| u.as_u128()).map_err(|_| {
                GraphError::bad_request(format!("Invalid object id '{id}' in $filter."))
            })
        })
        .collect()
}

/// Expiry and the forced-resync switch.
fn check_token(
    ctx: &GraphContext,
    request: &GraphRequest,
    token: &DeltaToken,
    collection: &str,
    now: OffsetDateTime,
) -> Result<(), GraphError> {
    let age_nanos = now.unix_timestamp_nanos() - token.issued;
    if age_nanos > ctx.state.delta_token_max_age.as_nanos() as i128 {
        return Err(GraphError::new(
            StatusCode::BAD_REQUEST,
            "syncStateNotFound",
            "The sync state generation is not found. Data must be synchronized again.",
        ));
    }
    let mut since = ctx.resync_since.lock().unwrap_or_else(|e| e.into_inner());
    if ctx.state.force_delta_resync.load(Ordering::SeqCst) {
        let since = *since.get_or_insert(now.unix_timestamp_nanos());
        if token.issued < since {
            let mut query = Vec::new();
            if let Some(sel) = &token.sel {
                query.push(format!(
                    "$select={}",
                    odata::encode_component(&sel.join(","))
                ));
            }
            if let Some(ids) = &token.ids {
                let clauses: Vec<String> = ids
                    .iter()
                    .map(|id| format!("id eq '{}'", Uuid::from_u128(*id)))
                    .collect();
                query.push(format!(
                    "$filter={}",
                    odata::encode_component(&clauses.join(" or "))
                ));
            }
            query.push("$deltatoken=".to_string());
            let location = format!(
                "{}/{}/{collection}/delta?{}",
                ctx.base_url,
                request.version,
                query.join("&")
            );
            return Err(GraphError::new(
                StatusCode::GONE,
                "resyncRequired",
                "The delta token is no longer valid; a full resynchronization is required.",
            )
            .with_header("Location", location));
        }
    } else {
        *since = None;
    }
    Ok(())
}

fn link(
    ctx: &GraphContext,
    request: &GraphRequest,
    collection: &str,
    marker: &str,
    token: &DeltaToken,
) -> String {
    format!(
        "{}/{}/{collection}/delta?{marker}={}",
        ctx.base_url,
        request.version,
        odata::encode_token(token)
    )
}

fn delta_link_only(
    ctx: &GraphContext,
    request: &GraphRequest,
    state: &DeltaToken,
    seq: u64,
    now_nanos: i128,
) -> GraphReply {
    let next = DeltaToken {
        from: seq,
        upto: seq,
        full: false,
        issued: now_nanos,
        after: None,
        partial: None,
        ..state.clone()
    };
    GraphReply::ok(json!({
        "@odata.context": format!("{}/{}/$metadata#{}", ctx.base_url, request.version, state.k),
        "@odata.deltaLink": link(ctx, request, &state.k, "$deltatoken", &next),
        "value": [],
    }))
}

/// What happened to one container in (from, upto].
#[derive(Default, Debug)]
struct ContainerChanges {
    /// Created, restored or deleted within the window: list all selected properties.
    whole: bool,
    /// Properties updated within the window.
    properties: BTreeSet<&'static str>,
    /// Net link changes: (relation, target) -> added.
    links: BTreeMap<(u8, Uuid), bool>,
}

fn relation_code(relation: LinkRelation) -> u8 {
    match relation {
        LinkRelation::Member => 0,
        LinkRelation::Owner => 1,
    }
}

fn relation_selected(kind: DeltaKind, relation: LinkRelation, sel: Option<&[String]>) -> bool {
    let name = match relation {
        LinkRelation::Member => "members",
        LinkRelation::Owner => "owners",
    };
    match sel {
        Some(sel) => sel.iter().any(|s| s.eq_ignore_ascii_case(name)),
        // Without `$select`, groups and directory roles report their members
        // (https://learn.microsoft.com/en-us/graph/delta-query-groups); owners only when selected.
        None => {
            matches!(kind, DeltaKind::Group | DeltaKind::DirectoryRole)
                && relation == LinkRelation::Member
        }
    }
}

fn changed_containers(
    tenant: &Tenant,
    kind: DeltaKind,
    token: &DeltaToken,
) -> BTreeMap<Uuid, ContainerChanges> {
    let sel = token.sel.as_deref();
    let mut out: BTreeMap<Uuid, ContainerChanges> = BTreeMap::new();
    for entry in tenant
        .journal
        .objects_changed_after(kind, token.from)
        .iter()
        .take_while(|e| e.seq <= token.upto)
    {
        match &entry.change {
            ObjectChange::Updated(props) => {
                let relevant: Vec<&'static str> = props
                    .iter()
                    .copied()
                    .filter(|p| sel.is_none_or(|s| s.iter().any(|x| x.eq_ignore_ascii_case(p))))
                    .collect();
                if !relevant.is_empty() {
                    out.entry(entry.id).or_default().properties.extend(relevant);
                }
            }
            _ => out.entry(entry.id).or_default().whole = true,
        }
    }
    for entry in tenant
        .journal
        .link_changes_after(token.from)
        .iter()
        .take_while(|e| e.seq <= token.upto)
        .filter(|e| e.container_kind == kind && relation_selected(kind, e.relation, sel))
    {
        out.entry(entry.container)
            .or_default()
            .links
            .insert((relation_code(entry.relation), entry.target), entry.added);
    }
    if let Some(ids) = &token.ids {
        out.retain(|id, _| ids.contains(&id.as_u128()));
    }
    out
}

/// Whether a container is live, in deleted items, or gone.
enum Presence {
    Live(Map<String, Value>),
    SoftDeleted,
    Gone,
}

fn presence(tenant: &Tenant, kind: DeltaKind, id: Uuid) -> Presence {
    let premium = tenant.organization.has_p2_license;
    match kind {
        DeltaKind::User => match tenant.users.get(&id) {
            Some(u) if u.deleted.is_some() => Presence::SoftDeleted,
            Some(u) => Presence::Live(render::user(u, premium)),
            None => Presence::Gone,
        },
        DeltaKind::Group => match tenant.groups.get(&id) {
            Some(g) if g.deleted.is_some() => Presence::SoftDeleted,
            Some(g) => Presence::Live(render::group(g)),
            None => Presence::Gone,
        },
        DeltaKind::ServicePrincipal => match tenant.service_principals.get(&id) {
            Some(sp) => Presence::Live(render::service_principal(sp)),
            None => Presence::Gone,
        },
        DeltaKind::DirectoryRole => match tenant.directory_roles.get(&id) {
            Some(r) => Presence::Live(render::directory_role(r)),
            None => Presence::Gone,
        },
    }
}

fn defaults(kind: DeltaKind) -> &'static [&'static str] {
    match kind {
        DeltaKind::User => render::USER_DEFAULTS,
        DeltaKind::Group => render::GROUP_DEFAULTS,
        DeltaKind::ServicePrincipal => render::SERVICE_PRINCIPAL_DEFAULTS,
        DeltaKind::DirectoryRole => render::DIRECTORY_ROLE_DEFAULTS,
    }
}

/// `@odata.type` of a link target, including objects in deleted items.
fn target_type(tenant: &Tenant, id: Uuid) -> &'static str {
    if tenant.users.contains_key(&id) {
        "#microsoft.graph.user"
    } else if tenant.groups.contains_key(&id) {
        "#microsoft.graph.group"
    } else if tenant.service_principals.contains_key(&id) {
        "#microsoft.graph.servicePrincipal"
    } else {
        "#microsoft.graph.directoryObject"
    }
}

/// One link entry of `members@delta` / `owners@delta`.
fn link_entry(tenant: &Tenant, target: Uuid, added: bool) -> Value {
    let mut entry = json!({"@odata.type": target_type(tenant, target), "id": target.to_string()});
    if !added && let Value::Object(map) = &mut entry {
        map.insert("@removed".into(), json!({"reason": "deleted"}));
    }
    entry
}

/// The links a container reports in this round: all current ones in a full round, the net
/// changes otherwise. Ordered members first, then owners.
fn container_links(
    tenant: &Tenant,
    kind: DeltaKind,
    id: Uuid,
    token: &DeltaToken,
    changes: Option<&ContainerChanges>,
    offset: usize,
    limit: usize,
) -> (Vec<(u8, Value)>, usize) {
    let sel = token.sel.as_deref();
    // Only the requested slice is rendered: a group of 100,000+ members is served 500 links
    // at a time, and rendering all of them for every page would be quadratic.
    if token.full {
        let (members, owners): (&[Uuid], &[Uuid]) = match kind {
            DeltaKind::Group => tenant
                .groups
                .get(&id)
                .map(|g| (g.members.as_slice(), g.owners.as_slice()))
                .unwrap_or_default(),
            DeltaKind::DirectoryRole => tenant
                .directory_roles
                .get(&id)
                .map(|r| (r.members.as_slice(), &[][..]))
                .unwrap_or_default(),
            _ => (&[], &[]),
        };
        let members = if relation_selected(kind, LinkRelation::Member, sel) {
            members
        } else {
            &[]
        };
        let owners = if relation_selected(kind, LinkRelation::Owner, sel) {
            owners
        } else {
            &[]
        };
        let total = members.len() + owners.len();
        let slice = members
            .iter()
            .map(|m| (0u8, *m))
            .chain(owners.iter().map(|o| (1u8, *o)))
            .skip(offset)
            .take(limit)
            .map(|(rel, target)| (rel, link_entry(tenant, target, true)))
            .collect();
        (slice, total)
    } else {
        let Some(c) = changes else {
            return (Vec::new(), 0);
        };
        let slice = c
            .links
            .iter()
            .skip(offset)
            .take(limit)
            .map(|((rel, target), added)| (*rel, link_entry(tenant, *target, *added)))
            .collect();
        (slice, c.links.len())
    }
}

/// Renders one container entry with an optional slice of links.
fn entry(
    tenant: &Tenant,
    kind: DeltaKind,
    id: Uuid,
    token: &DeltaToken,
    minimal: bool,
    changes: Option<&ContainerChanges>,
    links: &[(u8, Value)],
) -> Value {
    match presence(tenant, kind, id) {
        Presence::SoftDeleted => json!({"id": id.to_string(), "@removed": {"reason": "changed"}}),
        Presence::Gone => json!({"id": id.to_string(), "@removed": {"reason": "deleted"}}),
        Presence::Live(full) => {
            let mut object = match (minimal, changes) {
                (true, Some(c)) if !c.whole => {
                    let props: Vec<String> = c.properties.iter().map(|p| p.to_string()).collect();
                    odata::project(full, Some(&props), &[])
                }
                _ => odata::project(full, token.sel.as_deref(), defaults(kind)),
            };
            if let Value::Object(map) = &mut object {
                if kind == DeltaKind::User
                    && token
                        .sel
                        .as_deref()
                        .is_some_and(|s| s.iter().any(|p| p == "manager"))
                {
                    let manager_changed = token.full
                        || changes.is_some_and(|c| c.whole || c.properties.contains("manager"));
                    if manager_changed {
                        let manager = tenant.users.get(&id).and_then(|u| u.manager);
                        let list: Vec<Value> = manager
                            .map(|m| json!({"@odata.type": "#microsoft.graph.user", "id": m.to_string()}))
                            .into_iter()
                            .collect();
                        map.insert("manager@delta".into(), Value::Array(list));
                    }
                }
                for (code, name) in [(0u8, "members@delta"), (1u8, "owners@delta")] {
                    let slice: Vec<Value> = links
                        .iter()
                        .filter(|(c, _)| *c == code)
                        .map(|(_, v)| v.clone())
                        .collect();
                    if !slice.is_empty() {
                        map.insert(name.into(), Value::Array(slice));
                    }
                }
            }
            object
        }
    }
}

fn serve_page(
    ctx: &GraphContext,
    request: &GraphRequest,
    tenant: &Tenant,
    kind: DeltaKind,
    token: DeltaToken,
    minimal: bool,
    now_nanos: i128,
) -> Result<GraphReply, GraphError> {
    let changes = if token.full {
        BTreeMap::new()
    } else {
        changed_containers(tenant, kind, &token)
    };
    let start = match (token.partial, token.after) {
        (Some((id, _)), _) => Bound::Included(Uuid::from_u128(id)),
        (None, Some(after)) => Bound::Excluded(Uuid::from_u128(after)),
        (None, None) => Bound::Unbounded,
    };
    let candidates: Box<dyn Iterator<Item = Uuid> + '_> = if token.full {
        let ids = token.ids.clone();
        let keep = move |id: &Uuid| ids.as_ref().is_none_or(|list| list.contains(&id.as_u128()));
        match kind {
            DeltaKind::User => Box::new(
                tenant
                    .users
                    .range((start, Bound::Unbounded))
                    .filter(|(_, u)| u.deleted.is_none())
                    .map(|(id, _)| *id)
                    .filter(keep),
            ),
            DeltaKind::Group => Box::new(
                tenant
                    .groups
                    .range((start, Bound::Unbounded))
                    .filter(|(_, g)| g.deleted.is_none())
                    .map(|(id, _)| *id)
                    .filter(keep),
            ),
            DeltaKind::ServicePrincipal => Box::new(
                tenant
                    .service_principals
                    .range((start, Bound::Unbounded))
                    .map(|(id, _)| *id)
                    .filter(keep),
            ),
            DeltaKind::DirectoryRole => Box::new(
                tenant
                    .directory_roles
                    .range((start, Bound::Unbounded))
                    .map(|(id, _)| *id)
                    .filter(keep),
            ),
        }
    } else {
        Box::new(changes.range((start, Bound::Unbounded)).map(|(id, _)| *id))
    };

    let mut value = Vec::new();
    // Graph repeats objects now and then in initial rounds; here the last object of the
    // previous page opens the next one (not for link-carrying containers, whose repeat
    // would look like an empty member list).
    let carries_links = relation_selected(kind, LinkRelation::Member, token.sel.as_deref())
        || relation_selected(kind, LinkRelation::Owner, token.sel.as_deref());
    if token.full
        && !carries_links
        && token.partial.is_none()
        && let Some(previous) = token.after
    {
        value.push(entry(
            tenant,
            kind,
            Uuid::from_u128(previous),
            &token,
            minimal,
            None,
            &[],
        ));
    }

    let mut objects = 0usize;
    let mut links_used = 0usize;
    let mut last_done: Option<u128> = token.after;
    let mut next_partial: Option<(u128, usize)> = None;
    let mut candidates = candidates.peekable();
    while let Some(&id) = candidates.peek() {
        if objects == MAX_OBJECTS_PER_PAGE || (links_used == MAX_LINKS_PER_PAGE) {
            break;
        }
        let offset = match token.partial {
            Some((pid, off)) if pid == id.as_u128() => off,
            _ => 0,
        };
        let container_changes = changes.get(&id);
        let room = MAX_LINKS_PER_PAGE - links_used;
        let (slice, total) =
            container_links(tenant, kind, id, &token, container_changes, offset, room);
        let remaining = total.saturating_sub(offset);
        value.push(entry(
            tenant,
            kind,
            id,
            &token,
            minimal,
            container_changes,
            &slice,
        ));
        objects += 1;
        links_used += slice.len();
        if slice.len() < remaining {
            next_partial = Some((id.as_u128(), offset + slice.len()));
            break;
        }
        last_done = Some(id.as_u128());
        candidates.next();
    }
    let more = next_partial.is_some() || candidates.peek().is_some();
    let mut body = Map::new();
    body.insert(
        "@odata.context".into(),
        json!(format!(
            "{}/{}/$metadata#{}",
            ctx.base_url, request.version, token.k
        )),
    );
    if more {
        let next = DeltaToken {
            after: last_done,
            partial: next_partial,
            min: minimal,
            ..token.clone()
        };
        body.insert(
            "@odata.nextLink".into(),
            json!(link(ctx, request, &token.k, "$skiptoken", &next)),
        );
    } else {
        let next = DeltaToken {
            from: token.upto,
            upto: token.upto,
            full: false,
            min: false,
            issued: now_nanos,
            after: None,
            partial: None,
            ..token.clone()
        };
        body.insert(
            "@odata.deltaLink".into(),
            json!(link(ctx, request, &token.k, "$deltatoken", &next)),
        );
    }
    body.insert("value".into(), Value::Array(value));
    Ok(GraphReply::ok(Value::Object(body)))
}
