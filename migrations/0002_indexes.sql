-- c1z schema version 2: baton's indexes and unique keys with baton's (historical) names
-- (../shared/reference/c1z-format.md sections 2.1-2.8). The writer applies this after the rows
-- are loaded.

create unique index if not exists idx_resource_types_external_sync_v1 on v1_resource_types (external_id, sync_id);
create index if not exists idx_resources_resource_type_id_v1 on v1_resources (resource_type_id);
create index if not exists idx_resources_external_sync_v1 on v1_resources (parent_resource_type_id, parent_resource_id);
create unique index if not exists idx_resources_parent_resource_id_v1 on v1_resources (external_id, sync_id);
create index if not exists idx_entitlements_resource_id_v1 on v1_entitlements (resource_type_id, resource_id);
create unique index if not exists idx_entitlements_external_sync_v1 on v1_entitlements (external_id, sync_id);
create unique index if not exists idx_sync_runs_sync_id_v1 on v1_sync_runs (sync_id);
create index if not exists idx_grants_resource_type_id_resource_id_v1 on v1_grants (resource_type_id, resource_id);
create index if not exists idx_grants_principal_id_v1 on v1_grants (principal_resource_type_id, principal_resource_id);
create index if not exists idx_grants_entitlement_id_principal_id_v1 on v1_grants (entitlement_id, principal_resource_type_id, principal_resource_id);
create unique index if not exists idx_grants_external_sync_v1 on v1_grants (external_id, sync_id);
create index if not exists idx_grants_entitlement_sync_grant_v1 on v1_grants (entitlement_id, sync_id, id);
create index if not exists idx_grants_sync_expansion_v1 on v1_grants (sync_id) where expansion is not null;
create index if not exists idx_grants_sync_needs_expansion_v1 on v1_grants (sync_id) where needs_expansion = 1;
create unique index if not exists idx_assets_external_sync_v1 on v1_assets (external_id, sync_id);
create unique index if not exists idx_session_store_sync_key_v1 on v1_connector_sessions (sync_id, key);
