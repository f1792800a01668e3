//! The `c1.connectorapi.baton.v1` messages of ConductorOne's `BatonService`, derived by hand
//! with prost, and `google.rpc.Status`.
//!
//! Field numbers follow baton-sdk's `proto/c1/connectorapi/baton/v1/baton.proto` (repository
//! conductorone/baton-sdk, the version with `sync_partial = 121`). Task types this connector
//! does not handle are decoded as [`Opaque`]: their variant is known, their content ignored.
//! A task type newer than that file decodes as a task without a type, which is answered as
//! unimplemented like any other.

use prost::Message;
use prost_types::{Any, Duration, Timestamp};

use crate::model::connector::ConnectorMetadata;
use crate::model::proto::{Entitlement, Grant, Resource};

/// The service's full name, the prefix of every method path.
pub const SERVICE: &str = "c1.connectorapi.baton.v1.BatonService";

pub const HELLO: &str = "/c1.connectorapi.baton.v1.BatonService/Hello";
pub const GET_TASK: &str = "/c1.connectorapi.baton.v1.BatonService/GetTask";
pub const HEARTBEAT: &str = "/c1.connectorapi.baton.v1.BatonService/Heartbeat";
pub const FINISH_TASK: &str = "/c1.connectorapi.baton.v1.BatonService/FinishTask";
pub const UPLOAD_ASSET: &str = "/c1.connectorapi.baton.v1.BatonService/UploadAsset";

#[derive(Clone, PartialEq, Message)]
pub struct Task {
    #[prost(string, tag = "1")]
    pub id: String,
    #[prost(int32, tag = "2")]
    pub status: i32,
    #[prost(bool, tag = "3")]
    pub debug: bool,
    #[prost(
        oneof = "TaskType",
        tags = "100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111, 112, 113, 114, 115, 116, 117, 118, 119, 120, 121"
    )]
    pub task_type: Option<TaskType>,
}

/// A task type whose content this connector does not read.
#[derive(Clone, PartialEq, Message)]
pub struct Opaque {}

#[derive(Clone, PartialEq, prost::Oneof)]
pub enum TaskType {
    #[prost(message, tag = "100")]
    None(Opaque),
    #[prost(message, tag = "101")]
    Hello(Opaque),
    #[prost(message, tag = "102")]
    SyncFull(SyncFullTask),
    #[prost(message, tag = "103")]
    Grant(GrantTask),
    #[prost(message, tag = "104")]
    Revoke(RevokeTask),
    #[prost(message, tag = "105")]
    CreateAccount(Opaque),
    #[prost(message, tag = "106")]
    CreateResource(Opaque),
    #[prost(message, tag = "107")]
    DeleteResource(Opaque),
    #[prost(message, tag = "108")]
    RotateCredentials(Opaque),
    #[prost(message, tag = "109")]
    EventFeed(EventFeedTask),
    #[prost(message, tag = "110")]
    CreateTicket(Opaque),
    #[prost(message, tag = "111")]
    ListTicketSchemas(Opaque),
    #[prost(message, tag = "112")]
    GetTicket(Opaque),
    #[prost(message, tag = "113")]
    BulkCreateTickets(Opaque),
    #[prost(message, tag = "114")]
    BulkGetTickets(Opaque),
    #[prost(message, tag = "115")]
    ActionListSchemas(Opaque),
    #[prost(message, tag = "116")]
    ActionGetSchema(Opaque),
    #[prost(message, tag = "117")]
    ActionInvoke(Opaque),
    #[prost(message, tag = "118")]
    ActionStatus(Opaque),
    #[prost(message, tag = "119")]
    CreateSyncDiff(Opaque),
    #[prost(message, tag = "120")]
    CompactSyncs(Opaque),
    #[prost(message, tag = "121")]
    SyncPartial(Opaque),
}

impl TaskType {
    /// The oneof field's name in baton.proto, for logs and error messages.
    pub fn name(&self) -> &'static str {
        match self {
            TaskType::None(_) => "none",
            TaskType::Hello(_) => "hello",
            TaskType::SyncFull(_) => "sync_full",
            TaskType::Grant(_) => "grant",
            TaskType::Revoke(_) => "revoke",
            TaskType::CreateAccount(_) => "create_account",
            TaskType::CreateResource(_) => "create_resource",
            TaskType::DeleteResource(_) => "delete_resource",
            TaskType::RotateCredentials(_) => "rotate_credentials",
            TaskType::EventFeed(_) => "event_feed",
            TaskType::CreateTicket(_) => "create_ticket_task",
            TaskType::ListTicketSchemas(_) => "list_ticket_schemas",
            TaskType::GetTicket(_) => "get_ticket",
            TaskType::BulkCreateTickets(_) => "bulk_create_tickets",
            TaskType::BulkGetTickets(_) => "bulk_get_tickets",
            TaskType::ActionListSchemas(_) => "action_list_schemas",
            TaskType::ActionGetSchema(_) => "action_get_schema",
            TaskType::ActionInvoke(_) => "action_invoke",
            TaskType::ActionStatus(_) => "action_status",
            TaskType::CreateSyncDiff(_) => "create_sync_diff",
            TaskType::CompactSyncs(_) => "compact_syncs",
            TaskType::SyncPartial(_) => "sync_partial",
        }
    }
}

#[derive(Clone, PartialEq, Message)]
pub struct SyncFullTask {
    #[prost(message, repeated, tag = "1")]
    pub annotations: Vec<Any>,
    #[prost(bool, tag = "2")]
    pub skip_expand_grants: bool,
    #[prost(bool, tag = "3")]
    pub skip_entitlements_and_grants: bool,
    #[prost(message, repeated, tag = "4")]
    pub targeted_sync_resources: Vec<Resource>,
}

#[derive(Clone, PartialEq, Message)]
pub struct EventFeedTask {
    #[prost(message, repeated, tag = "1")]
    pub annotations: Vec<Any>,
    #[prost(message, optional, tag = "2")]
    pub start_at: Option<Timestamp>,
}

#[derive(Clone, PartialEq, Message)]
pub struct GrantTask {
    #[prost(message, optional, tag = "1")]
    pub entitlement: Option<Entitlement>,
    #[prost(message, optional, tag = "2")]
    pub principal: Option<Resource>,
    #[prost(message, repeated, tag = "3")]
    pub annotations: Vec<Any>,
    #[prost(message, optional, tag = "4")]
    pub duration: Option<Duration>,
}

#[derive(Clone, PartialEq, Message)]
pub struct RevokeTask {
    #[prost(message, optional, tag = "1")]
    pub grant: Option<Grant>,
    #[prost(message, repeated, tag = "2")]
    pub annotations: Vec<Any>,
}

#[derive(Clone, PartialEq, Message)]
pub struct HelloRequest {
    #[prost(string, tag = "1")]
    pub host_id: String,
    #[prost(string, tag = "2")]
    pub task_id: String,
    #[prost(message, optional, tag = "3")]
    pub build_info: Option<BuildInfo>,
    #[prost(message, optional, tag = "4")]
    pub os_info: Option<OsInfo>,
    #[prost(message, optional, tag = "5")]
    pub connector_metadata: Option<ConnectorMetadata>,
    #[prost(message, repeated, tag = "6")]
    pub annotations: Vec<Any>,
}

#[derive(Clone, PartialEq, Message)]
pub struct BuildInfo {
    #[prost(string, tag = "1")]
    pub lang_version: String,
    #[prost(string, tag = "2")]
    pub package: String,
    #[prost(string, tag = "3")]
    pub package_version: String,
}

#[derive(Clone, PartialEq, Message)]
pub struct OsInfo {
    #[prost(string, tag = "1")]
    pub hostname: String,
    #[prost(string, tag = "2")]
    pub os: String,
    #[prost(string, tag = "3")]
    pub platform: String,
    #[prost(string, tag = "4")]
    pub platform_version: String,
    #[prost(string, tag = "5")]
    pub platform_family: String,
    #[prost(string, tag = "6")]
    pub kernel_version: String,
    #[prost(string, tag = "7")]
    pub kernel_arch: String,
    #[prost(string, tag = "8")]
    pub virtualization_system: String,
}

#[derive(Clone, PartialEq, Message)]
pub struct HelloResponse {
    #[prost(message, repeated, tag = "1")]
    pub annotations: Vec<Any>,
}

#[derive(Clone, PartialEq, Message)]
pub struct GetTaskRequest {
    #[prost(string, tag = "1")]
    pub host_id: String,
}

#[derive(Clone, PartialEq, Message)]
pub struct GetTaskResponse {
    #[prost(message, optional, tag = "1")]
    pub task: Option<Task>,
    #[prost(message, optional, tag = "2")]
    pub next_poll: Option<Duration>,
    #[prost(message, optional, tag = "3")]
    pub next_heartbeat: Option<Duration>,
    #[prost(message, repeated, tag = "4")]
    pub annotations: Vec<Any>,
}

#[derive(Clone, PartialEq, Message)]
pub struct HeartbeatRequest {
    #[prost(string, tag = "1")]
    pub host_id: String,
    #[prost(string, tag = "2")]
    pub task_id: String,
    #[prost(message, repeated, tag = "3")]
    pub annotations: Vec<Any>,
}

#[derive(Clone, PartialEq, Message)]
pub struct HeartbeatResponse {
    #[prost(message, optional, tag = "1")]
    pub next_heartbeat: Option<Duration>,
    #[prost(bool, tag = "2")]
    pub cancelled: bool,
    #[prost(message, repeated, tag = "3")]
    pub annotations: Vec<Any>,
}

#[derive(Clone, PartialEq, Message)]
pub struct UploadAssetRequest {
    #[prost(oneof = "UploadMsg", tags = "100, 101, 102")]
    pub msg: Option<UploadMsg>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
pub enum UploadMsg {
    #[prost(message, tag = "100")]
    Metadata(UploadMetadata),
    #[prost(message, tag = "101")]
    Data(UploadData),
    #[prost(message, tag = "102")]
    Eof(UploadEof),
}

#[derive(Clone, PartialEq, Message)]
pub struct UploadMetadata {
    #[prost(string, tag = "1")]
    pub host_id: String,
    #[prost(string, tag = "2")]
    pub task_id: String,
    #[prost(message, repeated, tag = "4")]
    pub annotations: Vec<Any>,
}

#[derive(Clone, PartialEq, Message)]
pub struct UploadData {
    #[prost(bytes = "vec", tag = "1")]
    pub data: Vec<u8>,
}

#[derive(Clone, PartialEq, Message)]
pub struct UploadEof {
    #[prost(bytes = "vec", tag = "1")]
    pub sha256_checksum: Vec<u8>,
    #[prost(message, repeated, tag = "2")]
    pub annotations: Vec<Any>,
}

#[derive(Clone, PartialEq, Message)]
pub struct UploadAssetResponse {
    #[prost(message, repeated, tag = "1")]
    pub annotations: Vec<Any>,
}

/// `google.rpc.Status`.
#[derive(Clone, PartialEq, Message)]
pub struct RpcStatus {
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(string, tag = "2")]
    pub message: String,
    #[prost(message, repeated, tag = "3")]
    pub details: Vec<Any>,
}

#[derive(Clone, PartialEq, Message)]
pub struct FinishTaskRequest {
    #[prost(string, tag = "1")]
    pub host_id: String,
    #[prost(string, tag = "2")]
    pub task_id: String,
    #[prost(message, optional, tag = "3")]
    pub status: Option<RpcStatus>,
    #[prost(oneof = "FinalState", tags = "100, 101")]
    pub final_state: Option<FinalState>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
pub enum FinalState {
    #[prost(message, tag = "100")]
    Error(FinishError),
    #[prost(message, tag = "101")]
    Success(FinishSuccess),
}

#[derive(Clone, PartialEq, Message)]
pub struct FinishError {
    #[prost(bool, tag = "1")]
    pub non_retryable: bool,
    #[prost(message, repeated, tag = "2")]
    pub annotations: Vec<Any>,
    #[prost(message, optional, tag = "3")]
    pub response: Option<Any>,
}

#[derive(Clone, PartialEq, Message)]
pub struct FinishSuccess {
    #[prost(message, repeated, tag = "1")]
    pub annotations: Vec<Any>,
    #[prost(message, optional, tag = "2")]
    pub response: Option<Any>,
}

#[derive(Clone, PartialEq, Message)]
pub struct FinishTaskResponse {
    #[prost(message, repeated, tag = "1")]
    pub annotations: Vec<Any>,
}
