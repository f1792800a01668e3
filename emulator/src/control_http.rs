//! The HTTP control surface under the reserved `/_emulator/` path of the authority host, for
//! tools outside the test process. Every route calls the same [`Control`] methods tests use:
//!
//! | route | body / query | answer |
//! |---|---|---|
//! | `GET /_emulator/counts` | | request counters and Graph RU spent |
//! | `POST /_emulator/counts/reset` | | 204 |
//! | `POST /_emulator/clock/advance` | `{"seconds": n}` | 204 |
//! | `POST /_emulator/changes` | one change, `{"change": "add_member", ...}` (see [`HttpChange`]) | 204, or 400 naming why |
//! | `POST /_emulator/churn` | `{"seed": n, "fraction": f}` | counts of changes made |
//! | `GET /_emulator/expected` | `?mailbox_settings&skip_ad_groups&skip_unused_roles&skip_storage_containers&skip_p2` (true/false) | the expected access graph |
//! | `PUT /_emulator/faults` | a `FaultConfig` | 204 |
//! | `PUT /_emulator/delta-resync`, `PUT /_emulator/p2-license` | `{"on": bool}` | 204 |

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use std::sync::Arc;

use super::EmulatorState;
use super::changes::{Control, TenantChange, UserPatch};
use super::expected::ExpectedOptions;
use super::faults::FaultConfig;
use super::tenant::{ArmPrincipalType, Group, GroupAccess, Mailbox, User, UserType};

/// The control routes, served on the authority host.
pub fn router(state: Arc<EmulatorState>) -> Router {
    let control = Control::new(state.clone());
    Router::new()
        .route("/_emulator/counts", get(counts))
        .route("/_emulator/counts/reset", post(reset_counts))
        .route("/_emulator/clock/advance", post(advance_clock))
        .route(
            "/_emulator/changes",
            post(move |body: bytes::Bytes| apply_change(state.clone(), body)),
        )
        .route("/_emulator/churn", post(churn))
        .route("/_emulator/expected", get(expected))
        .route("/_emulator/faults", put(set_faults))
        .route("/_emulator/delta-resync", put(delta_resync))
        .route("/_emulator/p2-license", put(p2_license))
        .with_state(control)
}

fn bad_request(message: String) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": {"code": "BadRequest", "message": message}})),
    )
        .into_response()
}

async fn counts(State(control): State<Control>) -> Response {
    Json(control.request_counts()).into_response()
}

async fn reset_counts(State(control): State<Control>) -> StatusCode {
    control.reset_counts();
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
struct Advance {
    seconds: u64,
}

async fn advance_clock(State(control): State<Control>, Json(body): Json<Advance>) -> StatusCode {
    control.advance_clock(std::time::Duration::from_secs(body.seconds));
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
struct Switch {
    on: bool,
}

async fn delta_resync(State(control): State<Control>, Json(body): Json<Switch>) -> StatusCode {
    control.force_delta_resync(body.on);
    StatusCode::NO_CONTENT
}

async fn p2_license(State(control): State<Control>, Json(body): Json<Switch>) -> StatusCode {
    control.set_p2_license(body.on);
    StatusCode::NO_CONTENT
}

async fn set_faults(State(control): State<Control>, Json(faults): Json<FaultConfig>) -> Response {
    if let Err(err) = faults.validate() {
        return bad_request(err.to_string());
    }
    control.set_faults(faults);
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Deserialize)]
struct Churn {
    seed: u64,
    fraction: f64,
}

async fn churn(State(control): State<Control>, Json(body): Json<Churn>) -> Response {
    if !(0.0..=1.0).contains(&body.fraction) {
        return bad_request(format!(
            "fraction must be between 0.0 and 1.0, got {}",
            body.fraction
        ));
    }
    let s =
        tokio::task::spawn_blocking(move || control.random_churn(body.seed, body.fraction)).await;
    match s {
        Ok(s) => Json(json!({
            "users_created": s.users_created,
            "users_updated": s.users_updated,
            "users_soft_deleted": s.users_soft_deleted,
            "users_restored": s.users_restored,
            "users_hard_deleted": s.users_hard_deleted,
            "members_added": s.members_added,
            "members_removed": s.members_removed,
            "owners_changed": s.owners_changed,
            "app_role_assignments_changed": s.app_role_assignments_changed,
            "directory_role_assignments_changed": s.directory_role_assignments_changed,
            "role_assignments_changed": s.role_assignments_changed,
        }))
        .into_response(),
        Err(err) => (StatusCode::INTERNAL_SERVER_ERROR, err.to_string()).into_response(),
    }
}

async fn expected(
    State(control): State<Control>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let flag = |name: &str| -> Result<bool, String> {
        match query.get(name).map(String::as_str) {
            None | Some("false") => Ok(false),
            Some("true") | Some("") => Ok(true),
            Some(other) => Err(format!(
                "option {name} must be true or false, got '{other}'"
            )),
        }
    };
    let options = (|| -> Result<ExpectedOptions, String> {
        Ok(ExpectedOptions {
            mailbox_settings: flag("mailbox_settings")?,
            skip_ad_groups: flag("skip_ad_groups")?,
            skip_unused_roles: flag("skip_unused_roles")?,
            skip_storage_containers: flag("skip_storage_containers")?,
            skip_p2: flag("skip_p2")?,
        })
    })();
    let options = match options {
        Ok(o) => o,
        Err(message) => return bad_request(message),
    };
    let graph = tokio::task::spawn_blocking(move || control.expected_graph(&options)).await;
    let Ok(graph) = graph else {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            "computing the expected graph failed",
        )
            .into_response();
    };
    let resources: serde_json::Map<String, serde_json::Value> = graph
        .resources
        .iter()
        .map(|(k, r)| {
            (
                k.clone(),
                json!({"parent": r.parent, "display_name": r.display_name}),
            )
        })
        .collect();
    let entitlements: serde_json::Map<String, serde_json::Value> = graph
        .entitlements
        .iter()
        .map(|(k, e)| (k.clone(), json!({"resource": e.resource, "slug": e.slug})))
        .collect();
    let grants: serde_json::Map<String, serde_json::Value> = graph
        .grants
        .iter()
        .map(|(k, g)| (k.clone(), json!({"entitlement": g.entitlement, "principal": g.principal, "expandable": g.expandable})))
        .collect();
    Json(json!({
        "resource_types": graph.resource_types,
        "resources": resources,
        "entitlements": entitlements,
        "grants": grants,
    }))
    .into_response()
}

/// The changes the HTTP surface accepts: every [`TenantChange`] except creating service
/// principals, with users and groups created from their essential fields.
#[derive(Deserialize, Debug)]
#[serde(tag = "change", rename_all = "snake_case", deny_unknown_fields)]
pub enum HttpChange {
    /// A member (or guest) user with a mailbox of type `user`.
    CreateUser {
        id: Uuid,
        user_principal_name: String,
        display_name: String,
        #[serde(default)]
        mail: Option<String>,
        #[serde(default)]
        guest: bool,
    },
    /// A security group, or a Microsoft 365 group with `unified`.
    CreateGroup {
        id: Uuid,
        display_name: String,
        #[serde(default)]
        unified: bool,
        #[serde(default)]
        members: Vec<Uuid>,
        #[serde(default)]
        owners: Vec<Uuid>,
    },
    UpdateUser {
        id: Uuid,
        display_name: Option<String>,
        given_name: Option<String>,
        surname: Option<String>,
        mail: Option<String>,
        account_enabled: Option<bool>,
        employee_id: Option<String>,
        manager: Option<Uuid>,
    },
    SoftDeleteUser {
        id: Uuid,
    },
    RestoreUser {
        id: Uuid,
    },
    HardDeleteUser {
        id: Uuid,
    },
    UpdateGroup {
        id: Uuid,
        display_name: Option<String>,
        description: Option<String>,
    },
    DeleteGroup {
        id: Uuid,
    },
    RestoreGroup {
        id: Uuid,
    },
    HardDeleteGroup {
        id: Uuid,
    },
    AddMember {
        group: Uuid,
        member: Uuid,
    },
    RemoveMember {
        group: Uuid,
        member: Uuid,
    },
    AddOwner {
        group: Uuid,
        owner: Uuid,
    },
    RemoveOwner {
        group: Uuid,
        owner: Uuid,
    },
    DeleteServicePrincipal {
        id: Uuid,
    },
    AddServicePrincipalOwner {
        service_principal: Uuid,
        owner: Uuid,
    },
    RemoveServicePrincipalOwner {
        service_principal: Uuid,
        owner: Uuid,
    },
    AssignAppRole {
        resource: Uuid,
        principal: Uuid,
        app_role: Uuid,
    },
    UnassignAppRole {
        resource: Uuid,
        principal: Uuid,
        app_role: Uuid,
    },
    AssignDirectoryRole {
        role_definition: Uuid,
        principal: Uuid,
        directory_scope_id: String,
    },
    UnassignDirectoryRole {
        role_definition: Uuid,
        principal: Uuid,
        directory_scope_id: String,
    },
    AddDirectoryRoleEligibility {
        role_definition: Uuid,
        principal: Uuid,
        directory_scope_id: String,
    },
    RemoveDirectoryRoleEligibility {
        role_definition: Uuid,
        principal: Uuid,
        directory_scope_id: String,
    },
    AddGroupEligibility {
        group: Uuid,
        principal: Uuid,
        access: String,
    },
    RemoveGroupEligibility {
        group: Uuid,
        principal: Uuid,
        access: String,
    },
    CreateRoleAssignment {
        name: Uuid,
        scope: String,
        role_definition: Uuid,
        principal: Uuid,
        principal_type: String,
    },
    DeleteRoleAssignment {
        name: Uuid,
    },
    AddRoleEligibility {
        name: Uuid,
        scope: String,
        role_definition: Uuid,
        principal: Uuid,
        principal_type: String,
    },
    RemoveRoleEligibility {
        name: Uuid,
    },
    CreateSubscription {
        id: Uuid,
        display_name: String,
        management_group: String,
    },
    DeleteSubscription {
        id: Uuid,
    },
    CreateResourceGroup {
        subscription: Uuid,
        name: String,
        location: String,
    },
    DeleteResourceGroup {
        subscription: Uuid,
        name: String,
    },
    CreateStorageAccount {
        subscription: Uuid,
        resource_group: String,
        name: String,
        kind: String,
        sku: String,
    },
    DeleteStorageAccount {
        subscription: Uuid,
        resource_group: String,
        name: String,
    },
    CreateContainer {
        subscription: Uuid,
        resource_group: String,
        account: String,
        name: String,
    },
    DeleteContainer {
        subscription: Uuid,
        resource_group: String,
        account: String,
        name: String,
    },
}

fn access(text: &str) -> Result<GroupAccess, String> {
    match text {
        "member" => Ok(GroupAccess::Member),
        "owner" => Ok(GroupAccess::Owner),
        other => Err(format!("access must be 'member' or 'owner', got '{other}'")),
    }
}

fn principal_type(text: &str) -> Result<ArmPrincipalType, String> {
    ArmPrincipalType::parse(text).ok_or_else(|| {
        format!("principal_type must be User, Group, ServicePrincipal, ForeignGroup or Device, got '{text}'")
    })
}

impl HttpChange {
    /// The Rust change this stands for; `now` stamps created objects.
    fn into_tenant_change(self, now: time::OffsetDateTime) -> Result<TenantChange, String> {
        use HttpChange as H;
        Ok(match self {
            H::CreateUser {
                id,
                user_principal_name,
                display_name,
                mail,
                guest,
            } => TenantChange::CreateUser(Box::new(User {
                id,
                user_principal_name,
                mail,
                display_name,
                given_name: None,
                surname: None,
                account_enabled: true,
                user_type: if guest {
                    UserType::Guest
                } else {
                    UserType::Member
                },
                employee_id: None,
                created: now,
                manager: None,
                on_premises_sync_enabled: false,
                mailbox: Mailbox::User,
                last_sign_in: None,
                deleted: None,
            })),
            H::CreateGroup {
                id,
                display_name,
                unified,
                members,
                owners,
            } => TenantChange::CreateGroup(Box::new(Group {
                id,
                display_name,
                description: None,
                mail_enabled: unified,
                security_enabled: !unified,
                group_types: if unified {
                    vec!["Unified".to_string()]
                } else {
                    Vec::new()
                },
                on_premises_sync_enabled: false,
                created: now,
                members,
                owners,
                deleted: None,
            })),
            H::UpdateUser {
                id,
                display_name,
                given_name,
                surname,
                mail,
                account_enabled,
                employee_id,
                manager,
            } => TenantChange::UpdateUser {
                id,
                patch: UserPatch {
                    display_name,
                    given_name,
                    surname,
                    mail,
                    account_enabled,
                    employee_id,
                    manager,
                    ..UserPatch::default()
                },
            },
            H::SoftDeleteUser { id } => TenantChange::SoftDeleteUser(id),
            H::RestoreUser { id } => TenantChange::RestoreUser(id),
            H::HardDeleteUser { id } => TenantChange::HardDeleteUser(id),
            H::UpdateGroup {
                id,
                display_name,
                description,
            } => TenantChange::UpdateGroup {
                id,
                display_name,
                description,
            },
            H::DeleteGroup { id } => TenantChange::DeleteGroup(id),
            H::RestoreGroup { id } => TenantChange::RestoreGroup(id),
            H::HardDeleteGroup { id } => TenantChange::HardDeleteGroup(id),
            H::AddMember { group, member } => TenantChange::AddMember { group, member },
            H::RemoveMember { group, member } => TenantChange::RemoveMember { group, member },
            H::AddOwner { group, owner } => TenantChange::AddOwner { group, owner },
            H::RemoveOwner { group, owner } => TenantChange::RemoveOwner { group, owner },
            H::DeleteServicePrincipal { id } => TenantChange::DeleteServicePrincipal(id),
            H::AddServicePrincipalOwner {
                service_principal,
                owner,
            } => TenantChange::AddServicePrincipalOwner {
                service_principal,
                owner,
            },
            H::RemoveServicePrincipalOwner {
                service_principal,
                owner,
            } => TenantChange::RemoveServicePrincipalOwner {
                service_principal,
                owner,
            },
            H::AssignAppRole {
                resource,
                principal,
                app_role,
            } => TenantChange::AssignAppRole {
                resource,
                principal,
                app_role,
            },
            H::UnassignAppRole {
                resource,
                principal,
                app_role,
            } => TenantChange::UnassignAppRole {
                resource,
                principal,
                app_role,
            },
            H::AssignDirectoryRole {
                role_definition,
                principal,
                directory_scope_id,
            } => TenantChange::AssignDirectoryRole {
                role_definition,
                principal,
                directory_scope_id,
            },
            H::UnassignDirectoryRole {
                role_definition,
                principal,
                directory_scope_id,
            } => TenantChange::UnassignDirectoryRole {
                role_definition,
                principal,
                directory_scope_id,
            },
            H::AddDirectoryRoleEligibility {
                role_definition,
                principal,
                directory_scope_id,
            } => TenantChange::AddDirectoryRoleEligibility {
                role_definition,
                principal,
                directory_scope_id,
            },
            H::RemoveDirectoryRoleEligibility {
                role_definition,
                principal,
                directory_scope_id,
            } => TenantChange::RemoveDirectoryRoleEligibility {
                role_definition,
                principal,
                directory_scope_id,
            },
            H::AddGroupEligibility {
                group,
                principal,
                access: a,
            } => TenantChange::AddGroupEligibility {
                group,
                principal,
                access: access(&a)?,
            },
            H::RemoveGroupEligibility {
                group,
                principal,
                access: a,
            } => TenantChange::RemoveGroupEligibility {
                group,
                principal,
                access: access(&a)?,
            },
            H::CreateRoleAssignment {
                name,
                scope,
                role_definition,
                principal,
                principal_type: t,
            } => TenantChange::CreateRoleAssignment {
                name,
                scope,
                role_definition,
                principal,
                principal_type: principal_type(&t)?,
            },
            H::DeleteRoleAssignment { name } => TenantChange::DeleteRoleAssignment { name },
            H::AddRoleEligibility {
                name,
                scope,
                role_definition,
                principal,
                principal_type: t,
            } => TenantChange::AddRoleEligibility {
                name,
                scope,
                role_definition,
                principal,
                principal_type: principal_type(&t)?,
            },
            H::RemoveRoleEligibility { name } => TenantChange::RemoveRoleEligibility { name },
            H::CreateSubscription {
                id,
                display_name,
                management_group,
            } => TenantChange::CreateSubscription {
                id,
                display_name,
                management_group,
            },
            H::DeleteSubscription { id } => TenantChange::DeleteSubscription(id),
            H::CreateResourceGroup {
                subscription,
                name,
                location,
            } => TenantChange::CreateResourceGroup {
                subscription,
                name,
                location,
            },
            H::DeleteResourceGroup { subscription, name } => {
                TenantChange::DeleteResourceGroup { subscription, name }
            }
            H::CreateStorageAccount {
                subscription,
                resource_group,
                name,
                kind,
                sku,
            } => TenantChange::CreateStorageAccount {
                subscription,
                resource_group,
                name,
                kind,
                sku,
            },
            H::DeleteStorageAccount {
                subscription,
                resource_group,
                name,
            } => TenantChange::DeleteStorageAccount {
                subscription,
                resource_group,
                name,
            },
            H::CreateContainer {
                subscription,
                resource_group,
                account,
                name,
            } => TenantChange::CreateContainer {
                subscription,
                resource_group,
                account,
                name,
            },
            H::DeleteContainer {
                subscription,
                resource_group,
                account,
                name,
            } => TenantChange::DeleteContainer {
                subscription,
                resource_group,
                account,
                name,
            },
        })
    }
}

async fn apply_change(state: Arc<EmulatorState>, body: bytes::Bytes) -> Response {
    let change: HttpChange = match serde_json::from_slice(&body) {
        Ok(c) => c,
        Err(err) => return bad_request(format!("not a change: {err}")),
    };
    let change = match change.into_tenant_change(state.clock.now()) {
        Ok(c) => c,
        Err(message) => return bad_request(message),
    };
    match Control::new(state).apply(change) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(err) => bad_request(format!("{err:#}")),
    }
}
