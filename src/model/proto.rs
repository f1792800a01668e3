//! The `c1.connector.v2` messages that land in a `.c1z`, derived by hand with prost.
//!
//! Field numbers and types follow baton-sdk's protos (`pb/c1/connector/v2/*.proto` in
//! conductorone/baton-sdk). Only the messages the data model uses are
//! here. Maps are `BTreeMap` so that encoding is deterministic (sorted keys); prost writes fields in
//! field-number order. Annotations are `prost_types::Any` with `type.googleapis.com/c1.connector.v2.X`
//! URLs; use [`any`] to wrap one.

use std::collections::BTreeMap;

use prost::Message;
pub use prost_types::{Any, ListValue, Struct, Timestamp, Value};

/// `c1.connector.v2.ResourceType.Trait`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum Trait {
    Unspecified = 0,
    User = 1,
    Group = 2,
    Role = 3,
    App = 4,
    Secret = 5,
}

/// `c1.connector.v2.Entitlement.PurposeValue`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum Purpose {
    Unspecified = 0,
    Assignment = 1,
    Permission = 2,
    Ownership = 3,
}

/// `c1.connector.v2.UserTrait.Status.Status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum UserStatus {
    Unspecified = 0,
    Enabled = 1,
    Disabled = 2,
    Deleted = 3,
}

/// `c1.connector.v2.UserTrait.AccountType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum AccountType {
    Unspecified = 0,
    Human = 1,
    Service = 2,
    System = 3,
}

#[derive(Clone, PartialEq, Message)]
pub struct ResourceType {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(string, tag = "2")]
    pub display_name: String,
    #[prost(enumeration = "Trait", repeated, tag = "3")]
    pub traits: Vec<i32>,
    #[prost(message, repeated, tag = "4")]
    pub annotations: Vec<Any>,
    #[prost(string, tag = "5")]
    pub description: String,
}

#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Message)]
pub struct ResourceId {
    #[prost(string, tag = "1")]
    pub resource_type: String,
    #[prost(string, tag = "2")]
    pub resource: String,
}

#[derive(Clone, PartialEq, Message)]
pub struct Resource {
    #[prost(message, optional, tag = "1")]
    pub id: Option<ResourceId>,
    #[prost(message, optional, tag = "2")]
    pub parent_resource_id: Option<ResourceId>,
    #[prost(string, tag = "3")]
    pub display_name: String,
    #[prost(message, repeated, tag = "4")]
    pub annotations: Vec<Any>,
    #[prost(string, tag = "5")]
    pub description: String,
}

#[derive(Clone, PartialEq, Message)]
pub struct Entitlement {
    #[prost(message, optional, tag = "1")]
    pub resource: Option<Resource>,
    #[prost(string, tag = "2")]
    pub id: String,
    #[prost(string, tag = "3")]
    pub display_name: String,
    #[prost(string, tag = "4")]
    pub description: String,
    #[prost(message, repeated, tag = "5")]
    pub grantable_to: Vec<ResourceType>,
    #[prost(message, repeated, tag = "6")]
    pub annotations: Vec<Any>,
    #[prost(enumeration = "Purpose", tag = "7")]
    pub purpose: i32,
    #[prost(string, tag = "8")]
    pub slug: String,
}

#[derive(Clone, PartialEq, Message)]
pub struct Grant {
    #[prost(message, optional, tag = "1")]
    pub entitlement: Option<Entitlement>,
    #[prost(message, optional, tag = "2")]
    pub principal: Option<Resource>,
    #[prost(string, tag = "3")]
    pub id: String,
    #[prost(message, repeated, tag = "4")]
    pub annotations: Vec<Any>,
    #[prost(message, optional, tag = "5")]
    pub sources: Option<GrantSources>,
}

#[derive(Clone, PartialEq, Message)]
pub struct GrantSources {
    #[prost(btree_map = "string, message", tag = "1")]
    pub sources: BTreeMap<String, GrantSource>,
}

#[derive(Clone, PartialEq, Message)]
pub struct GrantSource {
    #[prost(bool, tag = "1")]
    pub is_direct: bool,
}

// ---- traits (carried as annotations) ----

#[derive(Clone, PartialEq, Message)]
pub struct UserTrait {
    #[prost(message, repeated, tag = "1")]
    pub emails: Vec<Email>,
    #[prost(message, optional, tag = "2")]
    pub status: Option<Status>,
    #[prost(message, optional, tag = "3")]
    pub profile: Option<Struct>,
    #[prost(enumeration = "AccountType", tag = "5")]
    pub account_type: i32,
    #[prost(string, tag = "6")]
    pub login: String,
    #[prost(string, repeated, tag = "7")]
    pub login_aliases: Vec<String>,
    #[prost(message, optional, tag = "8")]
    pub created_at: Option<Timestamp>,
    #[prost(message, optional, tag = "9")]
    pub last_login: Option<Timestamp>,
    #[prost(message, optional, tag = "12")]
    pub structured_name: Option<StructuredName>,
    #[prost(string, repeated, tag = "13")]
    pub employee_ids: Vec<String>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Email {
    #[prost(string, tag = "1")]
    pub address: String,
    #[prost(bool, tag = "2")]
    pub is_primary: bool,
}

/// `c1.connector.v2.UserTrait.Status`.
#[derive(Clone, PartialEq, Message)]
pub struct Status {
    #[prost(enumeration = "UserStatus", tag = "1")]
    pub status: i32,
    #[prost(string, tag = "2")]
    pub details: String,
}

#[derive(Clone, PartialEq, Message)]
pub struct StructuredName {
    #[prost(string, tag = "1")]
    pub given_name: String,
    #[prost(string, tag = "2")]
    pub family_name: String,
}

#[derive(Clone, PartialEq, Message)]
pub struct GroupTrait {
    #[prost(message, optional, tag = "2")]
    pub profile: Option<Struct>,
}

#[derive(Clone, PartialEq, Message)]
pub struct RoleTrait {
    #[prost(message, optional, tag = "1")]
    pub profile: Option<Struct>,
}

#[derive(Clone, PartialEq, Message)]
pub struct AppTrait {
    #[prost(string, tag = "1")]
    pub help_url: String,
    #[prost(message, optional, tag = "4")]
    pub profile: Option<Struct>,
}

// ---- annotations ----

#[derive(Clone, PartialEq, Message)]
pub struct GrantExpandable {
    #[prost(string, repeated, tag = "1")]
    pub entitlement_ids: Vec<String>,
    #[prost(bool, tag = "2")]
    pub shallow: bool,
    #[prost(string, repeated, tag = "3")]
    pub resource_type_ids: Vec<String>,
}

#[derive(Clone, PartialEq, Message)]
pub struct GrantImmutable {
    #[prost(string, tag = "1")]
    pub source_id: String,
    #[prost(message, optional, tag = "2")]
    pub metadata: Option<Struct>,
}

#[derive(Clone, PartialEq, Message)]
pub struct GrantMetadata {
    #[prost(message, optional, tag = "1")]
    pub metadata: Option<Struct>,
}

#[derive(Clone, PartialEq, Message)]
pub struct ChildResourceType {
    #[prost(string, tag = "1")]
    pub resource_type_id: String,
}

#[derive(Clone, PartialEq, Message)]
pub struct ExternalLink {
    #[prost(string, tag = "1")]
    pub url: String,
}

#[derive(Clone, PartialEq, Message)]
pub struct SkipEntitlementsAndGrants {}

#[derive(Clone, PartialEq, Message)]
pub struct ExternalResourceMatchId {
    #[prost(string, tag = "1")]
    pub id: String,
}

/// Annotation of a Grant answer: the principal already held the entitlement (an empty message;
/// baton-sdk `proto/c1/connector/v2/annotation_grant.proto`).
#[derive(Clone, PartialEq, Message)]
pub struct GrantAlreadyExists {}

/// Annotation of a Revoke answer: the grant was already gone (same file).
#[derive(Clone, PartialEq, Message)]
pub struct GrantAlreadyRevoked {}

/// What a connector answers baton's `Grant` with; service mode sends it back in `FinishTask`
/// for a grant task (baton-sdk `proto/c1/connector/v2/grant.proto`, and
/// `pkg/tasks/c1api/grant.go` for where it is sent).
#[derive(Clone, PartialEq, Message)]
pub struct GrantManagerServiceGrantResponse {
    #[prost(message, repeated, tag = "1")]
    pub annotations: Vec<Any>,
    #[prost(message, repeated, tag = "2")]
    pub grants: Vec<Grant>,
}

/// What a connector answers baton's `Revoke` with (same file; `pkg/tasks/c1api/revoke.go`).
#[derive(Clone, PartialEq, Message)]
pub struct GrantManagerServiceRevokeResponse {
    #[prost(message, repeated, tag = "1")]
    pub annotations: Vec<Any>,
}

/// A message that knows its fully qualified protobuf name, so it can be wrapped in an `Any`.
pub trait Named: Message {
    const FULL_NAME: &'static str;
}

macro_rules! named {
    ($($ty:ident => $name:literal),* $(,)?) => {
        $(impl Named for $ty { const FULL_NAME: &'static str = $name; })*
    };
}

named! {
    ResourceType => "c1.connector.v2.ResourceType",
    Resource => "c1.connector.v2.Resource",
    Entitlement => "c1.connector.v2.Entitlement",
    Grant => "c1.connector.v2.Grant",
    UserTrait => "c1.connector.v2.UserTrait",
    GroupTrait => "c1.connector.v2.GroupTrait",
    RoleTrait => "c1.connector.v2.RoleTrait",
    AppTrait => "c1.connector.v2.AppTrait",
    GrantExpandable => "c1.connector.v2.GrantExpandable",
    GrantImmutable => "c1.connector.v2.GrantImmutable",
    GrantMetadata => "c1.connector.v2.GrantMetadata",
    ChildResourceType => "c1.connector.v2.ChildResourceType",
    ExternalLink => "c1.connector.v2.ExternalLink",
    SkipEntitlementsAndGrants => "c1.connector.v2.SkipEntitlementsAndGrants",
    ExternalResourceMatchId => "c1.connector.v2.ExternalResourceMatchID",
    GrantAlreadyExists => "c1.connector.v2.GrantAlreadyExists",
    GrantAlreadyRevoked => "c1.connector.v2.GrantAlreadyRevoked",
    GrantManagerServiceGrantResponse => "c1.connector.v2.GrantManagerServiceGrantResponse",
    GrantManagerServiceRevokeResponse => "c1.connector.v2.GrantManagerServiceRevokeResponse",
}

/// Wraps an annotation in an `Any` with baton's type URL.
pub fn any<M: Named>(message: &M) -> Any {
    Any {
        type_url: format!("type.googleapis.com/{}", M::FULL_NAME),
        value: message.encode_to_vec(),
    }
}

/// Unwraps an annotation of type `M` from a list of `Any`s, if one is there.
pub fn find_annotation<M: Named + Default>(annotations: &[Any]) -> Option<M> {
    let url = format!("type.googleapis.com/{}", M::FULL_NAME);
    annotations
        .iter()
        .find(|a| a.type_url == url)
        .and_then(|a| M::decode(a.value.as_slice()).ok())
}
