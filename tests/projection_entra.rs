//! The Entra ID records of docs/DATA_MODEL.md, one test per resource type, from items
//! shaped as Graph returns them.

mod projection_support;

use baton_azure_delta::item::Collection;
use baton_azure_delta::model::projection::ProjectionOptions;
use baton_azure_delta::model::proto::{self, AccountType, Purpose, UserStatus};
use baton_azure_delta::model::{Record, Table};
use projection_support::*;

fn defaults() -> ProjectionOptions {
    ProjectionOptions::default()
}

fn user_trait(r: &proto::Resource) -> proto::UserTrait {
    proto::find_annotation::<proto::UserTrait>(&r.annotations).expect("user trait")
}

#[test]
fn resource_types_follow_the_options() {
    let all = snapshot(&MemItems::default(), &defaults());
    let types = ids(&all, Table::ResourceTypes);
    assert_eq!(types.len(), 13, "{types:?}");
    for t in [
        "tenant",
        "user",
        "group",
        "enterprise_application",
        "managed_identity",
        "directory_role",
        "management_group",
        "subscription",
        "resource_group",
        "role",
        "storage_account",
        "container",
        "azure_resource",
    ] {
        assert!(types.contains(t), "missing {t}");
    }
    let Some(Record::ResourceType(mi)) =
        all.get(&(Table::ResourceTypes, "managed_identity".into()))
    else {
        panic!("managed_identity type")
    };
    assert_eq!(mi.traits, vec![proto::Trait::User as i32]);
    assert!(proto::find_annotation::<proto::SkipEntitlementsAndGrants>(&mi.annotations).is_some());

    let no_containers = ProjectionOptions {
        skip_storage_containers: true,
        ..defaults()
    };
    assert!(
        !ids(
            &snapshot(&MemItems::default(), &no_containers),
            Table::ResourceTypes
        )
        .contains("container")
    );
    let external = ProjectionOptions {
        external_principals: true,
        ..defaults()
    };
    let types = ids(
        &snapshot(&MemItems::default(), &external),
        Table::ResourceTypes,
    );
    // Grants still name users, groups and managed identities, so their types stay declared.
    assert_eq!(types.len(), 13);
}

#[test]
fn users_carry_identity_profile_and_manager() {
    let s = snapshot(&tenant(), &defaults());
    let alice = resource(&s, &format!("user:{ALICE}"));
    assert_eq!(alice.display_name, "Alice");
    assert_eq!(alice.parent_resource_id, None);
    let t = user_trait(alice);
    assert_eq!(t.login, "alice@contoso.com");
    assert_eq!(
        t.emails,
        vec![proto::Email {
            address: "alice@contoso.com".into(),
            is_primary: true
        }]
    );
    assert_eq!(
        t.status.as_ref().map(|s| s.status),
        Some(UserStatus::Enabled as i32)
    );
    assert_eq!(t.account_type, AccountType::Human as i32);
    assert_eq!(t.employee_ids, vec!["E-Alice".to_string()]);
    assert_eq!(
        t.structured_name.as_ref().map(|n| n.family_name.as_str()),
        Some("Example")
    );
    assert_eq!(
        t.created_at.as_ref().map(|c| c.seconds),
        Some(1_709_285_400)
    );
    assert_eq!(
        t.last_login.as_ref().map(|c| c.seconds),
        Some(1_735_787_045)
    );
    let profile = profile_strings(t.profile.as_ref().expect("profile"));
    assert_eq!(profile.get("userType").map(String::as_str), Some("Member"));
    assert_eq!(profile.get("managerId").map(String::as_str), Some(BOB));
    // Bob has no `mail`; his UPN is an address.
    assert_eq!(
        profile.get("managerEmail").map(String::as_str),
        Some("bob@contoso.com")
    );
    let link = proto::find_annotation::<proto::ExternalLink>(&alice.annotations).expect("link");
    assert!(
        link.url.starts_with("https://portal.azure.com/#") && link.url.ends_with(ALICE),
        "{}",
        link.url
    );

    let bob = user_trait(resource(&s, &format!("user:{BOB}")));
    assert_eq!(bob.emails.len(), 1);
    assert_eq!(bob.emails[0].address, "bob@contoso.com");
    assert!(bob.last_login.is_none());
    // A guest's UPN is no address.
    let guest = user_trait(resource(&s, &format!("user:{GUEST}")));
    assert!(guest.emails.is_empty());
    assert_eq!(
        profile_strings(guest.profile.as_ref().unwrap())
            .get("userType")
            .map(String::as_str),
        Some("Guest")
    );
}

#[test]
fn disabled_user_and_national_cloud_link() {
    let mut items = tenant();
    let mut bob = items
        .get(&baton_azure_delta::item::ItemKey::new(
            Collection::User,
            BOB,
        ))
        .cloned()
        .unwrap();
    bob["accountEnabled"] = serde_json::json!(false);
    items.put(Collection::User, BOB, bob);
    let options = ProjectionOptions {
        graph_domain: "graph.microsoft.us".into(),
        ..defaults()
    };
    let s = snapshot(&items, &options);
    let bob = resource(&s, &format!("user:{BOB}"));
    assert_eq!(
        user_trait(bob).status.map(|s| s.status),
        Some(UserStatus::Disabled as i32)
    );
    let link = proto::find_annotation::<proto::ExternalLink>(&bob.annotations).unwrap();
    assert!(
        link.url.starts_with("https://portal.azure.us/#"),
        "{}",
        link.url
    );
}

#[test]
fn mailbox_purpose_makes_service_accounts_only_with_the_option() {
    let items = tenant();
    let with = ProjectionOptions {
        mailbox_settings: true,
        ..defaults()
    };
    let s = snapshot(&items, &with);
    assert_eq!(
        user_trait(resource(&s, &format!("user:{ROOM}"))).account_type,
        AccountType::Service as i32
    );
    // `noMailbox` (a 404) is still emitted, as HUMAN.
    assert_eq!(
        user_trait(resource(&s, &format!("user:{BOB}"))).account_type,
        AccountType::Human as i32
    );
    let s = snapshot(&items, &defaults());
    assert_eq!(
        user_trait(resource(&s, &format!("user:{ROOM}"))).account_type,
        AccountType::Human as i32
    );
}

#[test]
fn groups_have_member_owner_and_eligible_entitlements() {
    let s = snapshot(&tenant(), &defaults());
    let eng = resource(&s, &format!("group:{ENG}"));
    assert!(proto::find_annotation::<proto::GroupTrait>(&eng.annotations).is_some());
    let members = entitlement(&s, &format!("group:{ENG}:members"));
    assert_eq!(members.purpose, Purpose::Assignment as i32);
    assert_eq!(members.slug, "members");
    assert_eq!(
        members
            .resource
            .as_ref()
            .and_then(|r| r.id.clone())
            .unwrap()
            .resource,
        ENG
    );
    assert_eq!(
        entitlement(&s, &format!("group:{ENG}:owners")).purpose,
        Purpose::Ownership as i32
    );
    entitlement(&s, &format!("group:{ENG}:eligible_members"));
    entitlement(&s, &format!("group:{ENG}:eligible_owners"));
    grant(&s, &format!("group:{ENG}:eligible_members:user:{BOB}"));

    let no_p2 = snapshot(
        &tenant(),
        &ProjectionOptions {
            skip_p2: true,
            ..defaults()
        },
    );
    let ents = ids(&no_p2, Table::Entitlements);
    assert!(ents.contains(&format!("group:{ENG}:members")));
    assert!(!ents.iter().any(|e| e.contains("eligible")), "{ents:?}");
    assert!(
        !ids(&no_p2, Table::Grants)
            .iter()
            .any(|g| g.contains("eligible"))
    );
}

#[test]
fn member_grants_name_principals_by_their_real_type() {
    let s = snapshot(&tenant(), &defaults());
    let g = grant(&s, &format!("group:{ENG}:members:user:{ALICE}"));
    let e = g.entitlement.as_ref().unwrap();
    assert_eq!(e.id, format!("group:{ENG}:members"));
    assert_eq!(
        e.resource.as_ref().unwrap().id.as_ref().unwrap().resource,
        ENG
    );
    assert_eq!(
        g.principal
            .as_ref()
            .unwrap()
            .id
            .as_ref()
            .unwrap()
            .resource_type,
        "user"
    );
    assert!(g.annotations.is_empty());

    let nested = grant(&s, &format!("group:{ENG}:members:group:{ADG}"));
    let expandable = proto::find_annotation::<proto::GrantExpandable>(&nested.annotations).unwrap();
    assert_eq!(
        expandable.entitlement_ids,
        vec![format!("group:{ADG}:members")]
    );
    grant(
        &s,
        &format!("group:{ENG}:members:enterprise_application:{APP}"),
    );
    grant(&s, &format!("group:{ENG}:members:managed_identity:{MI}"));
    grant(&s, &format!("group:{ENG}:owners:user:{BOB}"));
    let grants = ids(&s, Table::Grants);
    // Legacy service principals and principals that are not stored are left out.
    assert!(
        !grants
            .iter()
            .any(|g| g.contains(LEGACY) || g.contains(GHOST)),
        "{grants:?}"
    );
}

#[test]
fn skip_ad_groups_hides_the_group_and_grants_on_it_only() {
    let s = snapshot(
        &tenant(),
        &ProjectionOptions {
            skip_ad_groups: true,
            ..defaults()
        },
    );
    assert!(!ids(&s, Table::Resources).contains(&format!("group:{ADG}")));
    let grants = ids(&s, Table::Grants);
    assert!(!grants.iter().any(|g| g.contains(ADG)), "{grants:?}");
    assert!(!ids(&s, Table::Entitlements).iter().any(|e| e.contains(ADG)));
    // Bob's other grants stay.
    assert!(grants.contains(&format!("group:{ENG}:owners:user:{BOB}")));
    let s = snapshot(&tenant(), &defaults());
    grant(&s, &format!("group:{ADG}:members:user:{BOB}"));
}

#[test]
fn enterprise_applications_have_owners_and_one_entitlement_per_app_role() {
    let s = snapshot(&tenant(), &defaults());
    let app = resource(&s, &format!("enterprise_application:{APP}"));
    assert!(proto::find_annotation::<proto::AppTrait>(&app.annotations).is_some());
    let app_ents: Vec<String> = ids(&s, Table::Entitlements)
        .into_iter()
        .filter(|e| e.starts_with(&format!("enterprise_application:{APP}:")))
        .collect();
    assert_eq!(
        app_ents,
        vec![
            format!("enterprise_application:{APP}:assignment:{DEFAULT_ROLE}"),
            format!("enterprise_application:{APP}:assignment:{APP_ROLE}"),
            format!("enterprise_application:{APP}:owners"),
        ]
    );
    assert_eq!(
        entitlement(
            &s,
            &format!("enterprise_application:{APP}:assignment:{APP_ROLE}")
        )
        .display_name,
        "Payroll Approver"
    );
    grant(
        &s,
        &format!("enterprise_application:{APP}:owners:user:{ALICE}"),
    );
    let to_group = grant(
        &s,
        &format!("enterprise_application:{APP}:assignment:{APP_ROLE}:group:{ENG}"),
    );
    assert!(proto::find_annotation::<proto::GrantExpandable>(&to_group.annotations).is_some());
    grant(
        &s,
        &format!("enterprise_application:{APP}:assignment:{DEFAULT_ROLE}:user:{ALICE}"),
    );
    // A managed identity is a USER-trait resource without entitlements.
    let mi = resource(&s, &format!("managed_identity:{MI}"));
    assert_eq!(user_trait(mi).account_type, AccountType::Service as i32);
    assert!(!ids(&s, Table::Entitlements).iter().any(|e| e.contains(MI)));
    assert!(!ids(&s, Table::Resources).iter().any(|r| r.contains(LEGACY)));
}

#[test]
fn app_role_assignment_to_an_undefined_role_is_left_out() {
    let mut items = tenant();
    items.put(
        Collection::AppRoleAssignment,
        &format!("{APP}/asg-3"),
        serde_json::json!({
            "id": "asg-3", "appRoleId": "12345678-0000-4000-8000-000000000000",
            "principalId": BOB, "principalType": "User", "resourceId": APP
        }),
    );
    let s = snapshot(&items, &defaults());
    assert!(
        !ids(&s, Table::Grants)
            .iter()
            .any(|g| g.contains("12345678"))
    );
}

#[test]
fn directory_roles_merge_scoped_assignments_into_one_grant() {
    let s = snapshot(&tenant(), &defaults());
    let ga = resource(&s, &format!("directory_role:{GLOBAL_ADMIN}"));
    assert_eq!(ga.display_name, "Global Administrator");
    assert_eq!(
        ga.parent_resource_id
            .as_ref()
            .map(|p| (p.resource_type.as_str(), p.resource.as_str())),
        Some(("tenant", TENANT))
    );
    entitlement(&s, &format!("directory_role:{GLOBAL_ADMIN}:assigned"));
    entitlement(&s, &format!("directory_role:{GLOBAL_ADMIN}:eligible"));
    let tenant_wide = grant(
        &s,
        &format!("directory_role:{GLOBAL_ADMIN}:assigned:user:{ALICE}"),
    );
    assert!(proto::find_annotation::<proto::GrantMetadata>(&tenant_wide.annotations).is_none());
    grant(
        &s,
        &format!("directory_role:{GLOBAL_ADMIN}:eligible:user:{BOB}"),
    );
    // Two assignments at two administrative units: one grant, both scopes in its metadata.
    let scoped = grant(
        &s,
        &format!("directory_role:{USER_ADMIN}:assigned:user:{BOB}"),
    );
    let metadata = proto::find_annotation::<proto::GrantMetadata>(&scoped.annotations).unwrap();
    let Some(prost_types::value::Kind::ListValue(list)) = metadata
        .metadata
        .unwrap()
        .fields
        .get("directoryScopeIds")
        .and_then(|v| v.kind.clone())
    else {
        panic!("scope list")
    };
    let scopes: Vec<_> = list
        .values
        .iter()
        .filter_map(|v| match &v.kind {
            Some(prost_types::value::Kind::StringValue(s)) => Some(s.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(
        scopes,
        vec!["/administrativeUnits/au-1", "/administrativeUnits/au-2"]
    );

    // One scoped assignment keeps its directoryScopeId.
    let mut items = tenant();
    items.remove(Collection::DirectoryRoleAssignment, "dra-3");
    let s = snapshot(&items, &defaults());
    let scoped = grant(
        &s,
        &format!("directory_role:{USER_ADMIN}:assigned:user:{BOB}"),
    );
    let metadata = proto::find_annotation::<proto::GrantMetadata>(&scoped.annotations).unwrap();
    assert_eq!(
        profile_strings(&metadata.metadata.unwrap())
            .get("directoryScopeId")
            .map(String::as_str),
        Some("/administrativeUnits/au-2")
    );
}

#[test]
fn external_principals_are_matched_by_id_not_emitted() {
    let s = snapshot(
        &tenant(),
        &ProjectionOptions {
            external_principals: true,
            ..defaults()
        },
    );
    let resources = ids(&s, Table::Resources);
    assert!(!resources.iter().any(|r| r.starts_with("user:")
        || r.starts_with("group:")
        || r.starts_with("managed_identity:")));
    assert!(resources.contains(&format!("enterprise_application:{APP}")));
    let g = grant(
        &s,
        &format!("directory_role:{GLOBAL_ADMIN}:assigned:user:{ALICE}"),
    );
    let m = proto::find_annotation::<proto::ExternalResourceMatchId>(&g.annotations).unwrap();
    assert_eq!(m.id, ALICE);
    // A principal whose kind the source does not give is typed by the collection holding it.
    let to_group = grant(
        &s,
        &format!("directory_role:{GLOBAL_ADMIN}:assigned:group:{ENG}"),
    );
    assert!(
        proto::find_annotation::<proto::ExternalResourceMatchId>(&to_group.annotations).is_some()
    );
    assert!(!ids(&s, Table::Grants).contains(&format!(
        "directory_role:{GLOBAL_ADMIN}:assigned:user:{ENG}"
    )));
    // Group entitlements live with the groups, in the external file.
    assert!(
        !ids(&s, Table::Entitlements)
            .iter()
            .any(|e| e.starts_with("group:"))
    );
}

#[test]
fn tenant_resource_from_organization() {
    let s = snapshot(&tenant(), &defaults());
    let t = resource(&s, &format!("tenant:{TENANT}"));
    assert_eq!(t.display_name, "Contoso");
    let children: Vec<String> = t
        .annotations
        .iter()
        .filter(|a| a.type_url.ends_with("ChildResourceType"))
        .map(|a| {
            <proto::ChildResourceType as prost::Message>::decode(a.value.as_slice())
                .unwrap()
                .resource_type_id
        })
        .collect();
    assert!(children.contains(&"directory_role".to_string()));
}

#[test]
fn output_is_deterministic() {
    let a = encoded(&snapshot(&tenant(), &defaults()));
    // Same items inserted in reverse order.
    let mut reversed = MemItems::default();
    for (k, v) in tenant().entries().rev() {
        reversed.set(k.clone(), Some(v.clone()));
    }
    assert_eq!(a, encoded(&snapshot(&reversed, &defaults())));
}

/// Graph annotates every link of `members@delta`/`owners@delta` with `@odata.type`, but a link
/// without it still names a directory object: it is found among the stored principals (a
/// user, a group, a service principal) instead of being dropped. A link typed as something
/// that is no principal here (an organizational contact, a device) is left out.
#[test]
fn member_links_without_a_type_are_resolved_from_the_store_and_other_types_left_out() {
    let mut items = tenant();
    items.put(
        Collection::GroupMember,
        &format!("{ADG}/{ALICE}"),
        serde_json::json!({}),
    );
    items.put(
        Collection::GroupOwner,
        &format!("{ADG}/{APP}"),
        serde_json::json!({}),
    );
    items.put(
        Collection::GroupMember,
        &format!("{ADG}/c1000000-0000-4000-8000-000000000001"),
        member("orgContact"),
    );
    items.put(
        Collection::GroupMember,
        &format!("{ADG}/d1000000-0000-4000-8000-000000000001"),
        member("device"),
    );
    let s = snapshot(&items, &defaults());
    grant(&s, &format!("group:{ADG}:members:user:{ALICE}"));
    grant(
        &s,
        &format!("group:{ADG}:owners:enterprise_application:{APP}"),
    );
    let grants = ids(&s, Table::Grants);
    assert!(
        !grants
            .iter()
            .any(|g| g.contains("c1000000-") || g.contains("d1000000-")),
        "{grants:?}"
    );
}
