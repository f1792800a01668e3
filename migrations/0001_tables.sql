-- c1z schema version 1: the seven v1_* tables of baton-sdk's newest SQLite layout
-- (../shared/reference/c1z-format.md section 2). Column names, declared types and defaults match
-- baton's exactly: readers re-run CREATE ... IF NOT EXISTS, so the schema must already be theirs.
-- Indexes live in 0002, applied after the bulk load (one sorted build instead of a b-tree insert
-- per row).

create table if not exists v1_resource_types (
    id integer primary key, external_id text not null, data blob not null,
    sync_id text not null, discovered_at datetime not null);

create table if not exists v1_resources (
    id integer primary key, resource_type_id text not null, external_id text not null,
    parent_resource_type_id text, parent_resource_id text, data blob not null,
    sync_id text not null, discovered_at datetime not null);

create table if not exists v1_entitlements (
    id integer primary key, resource_type_id text not null, resource_id text not null,
    external_id text not null, data blob not null, sync_id text not null, discovered_at datetime not null);

create table if not exists v1_sync_runs (
    id integer primary key, sync_id text not null, started_at datetime not null, ended_at datetime,
    sync_token text not null, sync_type text not null default 'full', parent_sync_id text not null default '',
    linked_sync_id text not null default '', supports_diff integer not null default 0,
    grants_backfilled integer not null default 0, stats text,
    ingest_invariant_generation text not null default '', ingest_invariant_coverage text not null default '',
    ingest_invariant_mode text not null default '');

create table if not exists v1_grants (
    id integer primary key, resource_type_id text not null, resource_id text not null,
    entitlement_id text not null, principal_resource_type_id text not null, principal_resource_id text not null,
    external_id text not null, expansion blob, needs_expansion integer not null default 0,
    data blob not null, sync_id text not null, discovered_at datetime not null);

create table if not exists v1_assets (
    id integer primary key, external_id text not null, content_type text not null, data blob not null,
    sync_id text not null, discovered_at datetime not null);

create table if not exists v1_connector_sessions (
    id integer primary key, sync_id text not null, key text not null, value blob not null);
