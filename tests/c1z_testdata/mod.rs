//! Realistic baton records for tests and benchmarks: Entra-shaped users (UserTrait, ExternalLink)
//! and groups (GroupTrait) with `members` and `owners` entitlements, and membership grants that
//! carry `GrantExpandable` when the member is itself a group (DATA_MODEL.md).
//!
//! [`Tenant`] generates its records on the fly from indices, so a benchmark can feed a million
//! grants to the writer without holding them.
#![allow(dead_code)] // each test crate uses a different part

use anyhow::Result;

use baton_azure_delta::model::Record;
use baton_azure_delta::model::proto::{
    self, AccountType, Email, Entitlement, ExternalLink, Grant, GrantExpandable, GroupTrait,
    Purpose, Resource, ResourceId, ResourceType, Status, Struct, Trait, UserStatus, UserTrait,
    Value, any,
};

/// The resource types of a tenant: `user` and `group`.
pub fn resource_types() -> Vec<Record> {
    [
        ("user", "User", Trait::User),
        ("group", "Group", Trait::Group),
    ]
    .into_iter()
    .map(|(id, name, t)| {
        Record::ResourceType(ResourceType {
            id: id.into(),
            display_name: name.into(),
            traits: vec![t as i32],
            annotations: Vec::new(),
            description: String::new(),
        })
    })
    .collect()
}

fn resource_id(resource_type: &str, id: &str) -> ResourceId {
    ResourceId {
        resource_type: resource_type.into(),
        resource: id.into(),
    }
}

fn portal_link(kind: &str, id: &str) -> proto::Any {
    any(&ExternalLink {
        url: format!(
            "https://portal.azure.com/#view/Microsoft_AAD_IAM/{kind}.ReactView/objectId/{id}"
        ),
    })
}

/// A user with its UserTrait and portal link; `name` varies the display name and login.
pub fn user(id: &str, name: &str) -> Record {
    let login = format!("{name}@contoso.example");
    let mut profile = Struct::default();
    profile.fields.insert(
        "userType".into(),
        Value {
            kind: Some(prost_types::value::Kind::StringValue("Member".into())),
        },
    );
    let trait_ = UserTrait {
        emails: vec![Email {
            address: login.clone(),
            is_primary: true,
        }],
        status: Some(Status {
            status: UserStatus::Enabled as i32,
            details: String::new(),
        }),
        profile: Some(profile),
        account_type: AccountType::Human as i32,
        login,
        ..UserTrait::default()
    };
    Record::Resource(Resource {
        id: Some(resource_id("user", id)),
        parent_resource_id: None,
        display_name: name.into(),
        annotations: vec![any(&trait_), portal_link("UserDetailsMenuBlade", id)],
        description: String::new(),
    })
}

/// A group with its GroupTrait and portal link.
pub fn group(id: &str, name: &str) -> Record {
    Record::Resource(Resource {
        id: Some(resource_id("group", id)),
        parent_resource_id: None,
        display_name: name.into(),
        annotations: vec![
            any(&GroupTrait { profile: None }),
            portal_link("GroupDetailsMenuBlade", id),
        ],
        description: String::new(),
    })
}

fn group_entitlement(group_id: &str, slug: &str, purpose: Purpose) -> Entitlement {
    Entitlement {
        resource: Some(Resource {
            id: Some(resource_id("group", group_id)),
            ..Resource::default()
        }),
        id: format!("group:{group_id}:{slug}"),
        display_name: format!("{group_id} {slug}"),
        description: String::new(),
        grantable_to: Vec::new(),
        annotations: Vec::new(),
        purpose: purpose as i32,
        slug: slug.into(),
    }
}

/// `group:<id>:members` (ASSIGNMENT).
pub fn members_entitlement(group_id: &str) -> Record {
    Record::Entitlement(group_entitlement(group_id, "members", Purpose::Assignment))
}

/// `group:<id>:owners` (OWNERSHIP).
pub fn owners_entitlement(group_id: &str) -> Record {
    Record::Entitlement(group_entitlement(group_id, "owners", Purpose::Ownership))
}

fn grant(entitlement: Entitlement, principal_type: &str, principal_id: &str) -> Grant {
    Grant {
        id: format!("{}:{principal_type}:{principal_id}", entitlement.id),
        entitlement: Some(Entitlement {
            resource: entitlement.resource,
            id: entitlement.id,
            ..Entitlement::default()
        }),
        principal: Some(Resource {
            id: Some(resource_id(principal_type, principal_id)),
            ..Resource::default()
        }),
        annotations: Vec::new(),
        sources: None,
    }
}

/// A membership of `group_id`; a group member's grant carries `GrantExpandable` naming the
/// member group's own `members` entitlement.
pub fn membership(group_id: &str, principal_type: &str, principal_id: &str) -> Record {
    let mut g = grant(
        group_entitlement(group_id, "members", Purpose::Assignment),
        principal_type,
        principal_id,
    );
    if principal_type == "group" {
        g.annotations.push(any(&GrantExpandable {
            entitlement_ids: vec![format!("group:{principal_id}:members")],
            shallow: false,
            resource_type_ids: Vec::new(),
        }));
    }
    Record::Grant(g)
}

/// An ownership of `group_id`.
pub fn ownership(group_id: &str, principal_type: &str, principal_id: &str) -> Record {
    Record::Grant(grant(
        group_entitlement(group_id, "owners", Purpose::Ownership),
        principal_type,
        principal_id,
    ))
}

/// The object id of user or group `i`, shaped like an Entra GUID.
pub fn object_id(kind: u8, i: u32) -> String {
    format!(
        "{i:08x}-{kind:04x}-4000-8000-{:012x}",
        u64::from(i) * 2_654_435_761 % (1 << 48)
    )
}

/// A generated tenant: `users` users, `groups` groups each with `members_per_group` user members
/// and one user owner, and every `nested_every`-th group holding the next group as a member
/// (0 = no nesting).
#[derive(Clone, Copy, Debug)]
pub struct Tenant {
    pub users: u32,
    pub groups: u32,
    pub members_per_group: u32,
    pub nested_every: u32,
}

impl Tenant {
    fn user_id(&self, i: u32) -> String {
        object_id(1, i % self.users.max(1))
    }

    /// Every record of the tenant, generated on the fly.
    pub fn for_each_record(&self, sink: &mut dyn FnMut(Record) -> Result<()>) -> Result<()> {
        for rt in resource_types() {
            sink(rt)?;
        }
        for i in 0..self.users {
            sink(user(&self.user_id(i), &format!("user{i}")))?;
        }
        for j in 0..self.groups {
            let gid = object_id(2, j);
            sink(group(&gid, &format!("group{j}")))?;
            sink(members_entitlement(&gid))?;
            sink(owners_entitlement(&gid))?;
            // Distinct members: consecutive users from a group-specific offset.
            let offset = j.wrapping_mul(7919);
            for k in 0..self.members_per_group.min(self.users) {
                sink(membership(
                    &gid,
                    "user",
                    &self.user_id(offset.wrapping_add(k)),
                ))?;
            }
            if self.users > 0 {
                sink(ownership(
                    &gid,
                    "user",
                    &self.user_id(offset.wrapping_add(1)),
                ))?;
            }
            if self.nested_every > 0 && j % self.nested_every == 0 && j + 1 < self.groups {
                sink(membership(&gid, "group", &object_id(2, j + 1)))?;
            }
        }
        Ok(())
    }

    pub fn records(&self) -> Result<Vec<Record>> {
        let mut out = Vec::new();
        self.for_each_record(&mut |r| {
            out.push(r);
            Ok(())
        })?;
        Ok(out)
    }
}
