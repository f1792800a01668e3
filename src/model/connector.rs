//! The `c1.connector.v2` messages a connector sends outside a `.c1z`: its metadata and
//! capabilities (said in service mode's `Hello`) and the event feed (`ListEventsResponse`).
//!
//! Field numbers are those of baton-sdk's `proto/c1/connector/v2/connector.proto` and
//! `proto/c1/connector/v2/event_feed.proto` (repository conductorone/baton-sdk), derived by
//! hand with prost like [`super::proto`].

use prost::Message;

use super::proto::{Any, Entitlement, Grant, Resource, ResourceId, ResourceType, Timestamp};

/// `c1.connector.v2.Capability`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, prost::Enumeration)]
#[repr(i32)]
pub enum Capability {
    Unspecified = 0,
    Provision = 1,
    Sync = 2,
    EventFeed = 3,
}

#[derive(Clone, PartialEq, Message)]
pub struct ConnectorMetadata {
    #[prost(string, tag = "1")]
    pub display_name: String,
    #[prost(string, tag = "2")]
    pub help_url: String,
    #[prost(message, repeated, tag = "6")]
    pub annotations: Vec<Any>,
    #[prost(string, tag = "7")]
    pub description: String,
    #[prost(message, optional, tag = "8")]
    pub capabilities: Option<ConnectorCapabilities>,
}

#[derive(Clone, PartialEq, Message)]
pub struct ConnectorCapabilities {
    #[prost(message, repeated, tag = "1")]
    pub resource_type_capabilities: Vec<ResourceTypeCapability>,
    #[prost(enumeration = "Capability", repeated, tag = "2")]
    pub connector_capabilities: Vec<i32>,
}

#[derive(Clone, PartialEq, Message)]
pub struct ResourceTypeCapability {
    #[prost(message, optional, tag = "1")]
    pub resource_type: Option<ResourceType>,
    #[prost(enumeration = "Capability", repeated, tag = "2")]
    pub capabilities: Vec<i32>,
}

/// `c1.connector.v2.EventType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, prost::Enumeration)]
#[repr(i32)]
pub enum EventType {
    Unspecified = 0,
    Usage = 1,
    ResourceChange = 4,
}

#[derive(Clone, PartialEq, Message)]
pub struct ListEventsResponse {
    #[prost(message, repeated, tag = "1")]
    pub events: Vec<Event>,
    #[prost(string, tag = "2")]
    pub cursor: String,
    #[prost(bool, tag = "3")]
    pub has_more: bool,
    #[prost(message, repeated, tag = "4")]
    pub annotations: Vec<Any>,
}

#[derive(Clone, PartialEq, Message)]
pub struct ListEventFeedsResponse {
    #[prost(message, repeated, tag = "1")]
    pub list: Vec<EventFeedMetadata>,
    #[prost(message, repeated, tag = "2")]
    pub annotations: Vec<Any>,
}

#[derive(Clone, PartialEq, Message)]
pub struct EventFeedMetadata {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(enumeration = "EventType", repeated, tag = "2")]
    pub supported_event_types: Vec<i32>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Event {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(message, optional, tag = "2")]
    pub occurred_at: Option<Timestamp>,
    #[prost(message, repeated, tag = "3")]
    pub annotations: Vec<Any>,
    #[prost(oneof = "EventKind", tags = "101, 102, 103")]
    pub event: Option<EventKind>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
pub enum EventKind {
    #[prost(message, tag = "101")]
    GrantEvent(GrantEvent),
    #[prost(message, tag = "102")]
    RevokeEvent(RevokeEvent),
    #[prost(message, tag = "103")]
    ResourceChangeEvent(ResourceChangeEvent),
}

#[derive(Clone, PartialEq, Message)]
pub struct GrantEvent {
    #[prost(message, optional, tag = "1")]
    pub grant: Option<Grant>,
}

#[derive(Clone, PartialEq, Message)]
pub struct RevokeEvent {
    #[prost(message, optional, tag = "1")]
    pub entitlement: Option<Entitlement>,
    #[prost(message, optional, tag = "2")]
    pub principal: Option<Resource>,
}

#[derive(Clone, PartialEq, Message)]
pub struct ResourceChangeEvent {
    #[prost(message, optional, tag = "1")]
    pub resource_id: Option<ResourceId>,
    #[prost(message, optional, tag = "2")]
    pub parent_resource_id: Option<ResourceId>,
}
