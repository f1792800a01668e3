//! Grant expansion, as a baton run materializes it (reference section 5.3).
//!
//! A grant on entitlement `E_dst` to principal `P` whose `GrantExpandable` names `E_src` (an
//! entitlement of `P` itself) is an edge `E_src -> E_dst`: whoever holds `E_src` also holds
//! `E_dst`. For every principal holding a source entitlement we walk the edges breadth-first, at
//! most [`MAX_DEPTH`] hops (baton's `BATON_GRAPH_EXPAND_MAX_DEPTH` default), which also settles
//! cycles: every entitlement of a cycle reaches all the others, as baton's merged cycle nodes do.
//! A shallow edge only carries grants that are direct for its source; an edge with
//! `resource_type_ids` only carries principals of those types.
//!
//! For every (entitlement, principal) reached the grant's `sources` gain `E_src` (with
//! `is_direct` = the principal's grant on `E_src` is direct); a grant that did not exist is
//! created with the full stored entitlement, the source grant's principal, those sources and a
//! `GrantImmutable` annotation; an existing grant with no sources first gets itself as a direct
//! source.
//!
//! Everything runs over the staging tables in SQLite, one principal at a time, so memory holds
//! only the edges, not the grants.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use anyhow::{Context, Result, bail};
use prost::Message;
use rusqlite::{Connection, OptionalExtension, params};

use crate::model::proto::{self, GrantExpandable, GrantImmutable, GrantSource, GrantSources};

/// baton's default maximum expansion depth.
pub const MAX_DEPTH: u32 = 20;

struct Edge {
    dst: u32,
    shallow: bool,
    /// Principal types the edge carries; empty = all.
    principal_types: Vec<String>,
}

/// The expansion graph over interned entitlement ids.
#[derive(Default)]
struct Graph {
    ids: Vec<String>,
    index: HashMap<String, u32>,
    /// Edges by source entitlement.
    edges: HashMap<u32, Vec<Edge>>,
}

impl Graph {
    fn intern(&mut self, id: &str) -> u32 {
        if let Some(&i) = self.index.get(id) {
            return i;
        }
        let i = self.ids.len() as u32;
        self.ids.push(id.to_string());
        self.index.insert(id.to_string(), i);
        i
    }
}

/// Expands the staged grants in place; returns how many grants it created.
pub(crate) fn expand_staged(conn: &Connection) -> Result<u64> {
    let graph = load_graph(conn)?;
    if graph.edges.is_empty() {
        return Ok(0);
    }
    conn.execute_batch(
        "create index stage.grants_by_entitlement_principal
             on grants (entitlement_id, principal_resource_type_id, principal_resource_id);
         create table stage.expand_sources (entitlement_id text primary key) without rowid;
         create table stage.expanded (entitlement_id text not null,
             principal_resource_type_id text not null, principal_resource_id text not null,
             principal_grant text not null, sources blob not null);",
    )
    .context("preparing grant expansion")?;
    {
        let mut insert = conn.prepare("insert into stage.expand_sources values (?1)")?;
        for src in graph.edges.keys() {
            insert.execute([&graph.ids[*src as usize]])?;
        }
    }
    walk_principals(conn, &graph)?;
    let created = apply_expanded(conn)?;
    conn.execute_batch(
        "drop table stage.expanded; drop table stage.expand_sources;
         drop index stage.grants_by_entitlement_principal;",
    )?;
    Ok(created)
}

fn load_graph(conn: &Connection) -> Result<Graph> {
    let mut graph = Graph::default();
    let mut grants = conn.prepare(
        "select external_id, entitlement_id, principal_resource_type_id, principal_resource_id,
             expansion from stage.grants where expansion is not null order by external_id",
    )?;
    let mut owner = conn.prepare_cached(
        "select resource_type_id, resource_id from stage.entitlements where external_id = ?1",
    )?;
    let mut rows = grants.query([])?;
    while let Some(row) = rows.next()? {
        let grant_id: String = row.get(0)?;
        let dst: String = row.get(1)?;
        let principal = (row.get::<_, String>(2)?, row.get::<_, String>(3)?);
        let expandable = GrantExpandable::decode(row.get_ref(4)?.as_blob()?)
            .with_context(|| format!("grant {grant_id:?}: GrantExpandable does not decode"))?;
        let mut seen = HashSet::new();
        for src in &expandable.entitlement_ids {
            if src.trim().is_empty() || !seen.insert(src.as_str()) {
                continue;
            }
            let src_owner: Option<(String, String)> = owner
                .query_row([src], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            // baton drops edges from entitlements that do not exist, and fails the sync on an
            // edge from an entitlement of someone other than the grant's principal.
            let Some(src_owner) = src_owner else { continue };
            if src_owner != principal {
                bail!(
                    "grant {grant_id:?} expands from entitlement {src:?}, which belongs to \
                     {}:{}, not to the grant's principal {}:{}",
                    src_owner.0,
                    src_owner.1,
                    principal.0,
                    principal.1
                );
            }
            let (s, d) = (graph.intern(src), graph.intern(&dst));
            graph.edges.entry(s).or_default().push(Edge {
                dst: d,
                shallow: expandable.shallow,
                principal_types: expandable.resource_type_ids.clone(),
            });
        }
    }
    Ok(graph)
}

/// A principal holding source entitlements: what it holds, and one of its grants (whose
/// principal message expanded grants copy).
struct Holder {
    principal: (String, String),
    grant_id: String,
    /// Source entitlement -> the principal's grant on it is direct.
    holds: HashMap<u32, bool>,
}

fn walk_principals(conn: &Connection, graph: &Graph) -> Result<()> {
    let mut held = conn.prepare(
        "select g.principal_resource_type_id, g.principal_resource_id, g.entitlement_id,
             g.direct, g.external_id
         from stage.expand_sources s join stage.grants g on g.entitlement_id = s.entitlement_id
         order by g.principal_resource_type_id, g.principal_resource_id, g.external_id",
    )?;
    let mut insert = conn.prepare("insert into stage.expanded values (?1, ?2, ?3, ?4, ?5)")?;
    let mut rows = held.query([])?;
    let mut holder: Option<Holder> = None;
    while let Some(row) = rows.next()? {
        let principal = (row.get::<_, String>(0)?, row.get::<_, String>(1)?);
        let entitlement: String = row.get(2)?;
        let direct: bool = row.get(3)?;
        if holder.as_ref().is_some_and(|h| h.principal != principal)
            && let Some(done) = holder.take()
        {
            emit(graph, &done, &mut insert)?;
        }
        let current = match &mut holder {
            Some(h) => h,
            None => holder.insert(Holder {
                principal,
                grant_id: row.get(4)?,
                holds: HashMap::new(),
            }),
        };
        if let Some(&e) = graph.index.get(&entitlement) {
            *current.holds.entry(e).or_insert(false) |= direct;
        }
    }
    if let Some(done) = holder {
        emit(graph, &done, &mut insert)?;
    }
    Ok(())
}

/// Walks the edges from what `holder` holds and stages the sources each reached entitlement
/// gains.
fn emit(graph: &Graph, holder: &Holder, insert: &mut rusqlite::Statement) -> Result<()> {
    let mut gains: BTreeMap<u32, BTreeMap<u32, bool>> = BTreeMap::new();
    let mut reached: HashSet<u32> = holder.holds.keys().copied().collect();
    let mut queue: VecDeque<(u32, u32)> = holder.holds.keys().map(|&e| (e, 0)).collect();
    while let Some((entitlement, depth)) = queue.pop_front() {
        if depth >= MAX_DEPTH {
            continue;
        }
        let direct = holder.holds.get(&entitlement).copied().unwrap_or(false);
        for edge in graph.edges.get(&entitlement).into_iter().flatten() {
            if edge.shallow && !direct {
                continue;
            }
            if !edge.principal_types.is_empty()
                && !edge.principal_types.contains(&holder.principal.0)
            {
                continue;
            }
            *gains
                .entry(edge.dst)
                .or_default()
                .entry(entitlement)
                .or_insert(false) |= direct;
            if reached.insert(edge.dst) {
                queue.push_back((edge.dst, depth + 1));
            }
        }
    }
    for (dst, sources) in gains {
        let sources = GrantSources {
            sources: sources
                .into_iter()
                .map(|(src, is_direct)| {
                    (graph.ids[src as usize].clone(), GrantSource { is_direct })
                })
                .collect(),
        };
        insert.execute(params![
            graph.ids[dst as usize],
            holder.principal.0,
            holder.principal.1,
            holder.grant_id,
            sources.encode_to_vec()
        ])?;
    }
    Ok(())
}

/// Merges the staged gains into the grants; returns how many grants were created.
fn apply_expanded(conn: &Connection) -> Result<u64> {
    let mut gains = conn.prepare(
        "select entitlement_id, principal_resource_type_id, principal_resource_id,
             principal_grant, sources from stage.expanded order by rowid",
    )?;
    let mut existing = conn.prepare(
        "select external_id, data from stage.grants where entitlement_id = ?1
             and principal_resource_type_id = ?2 and principal_resource_id = ?3
         order by external_id limit 1",
    )?;
    let mut grant_data = conn.prepare("select data from stage.grants where external_id = ?1")?;
    let mut entitlement_data =
        conn.prepare("select data from stage.entitlements where external_id = ?1")?;
    let mut update = conn.prepare("update stage.grants set data = ?2 where external_id = ?1")?;
    let mut insert =
        conn.prepare("insert into stage.grants values (?1, ?2, ?3, ?4, ?5, ?6, null, 0, ?7)")?;

    let mut created = 0;
    let mut rows = gains.query([])?;
    while let Some(row) = rows.next()? {
        let dst: String = row.get(0)?;
        let principal_type: String = row.get(1)?;
        let principal_id: String = row.get(2)?;
        let principal_grant: String = row.get(3)?;
        let gained = GrantSources::decode(row.get_ref(4)?.as_blob()?)?;

        let found: Option<(String, Vec<u8>)> = existing
            .query_row(params![dst, principal_type, principal_id], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?;
        if let Some((grant_id, data)) = found {
            let mut grant = proto::Grant::decode(data.as_slice())
                .with_context(|| format!("staged grant {grant_id:?} does not decode"))?;
            let sources = grant.sources.get_or_insert_with(GrantSources::default);
            let before = sources.clone();
            if sources.sources.is_empty() {
                sources
                    .sources
                    .insert(dst.clone(), GrantSource { is_direct: true });
            }
            for (src, source) in gained.sources {
                sources.sources.entry(src).or_default().is_direct |= source.is_direct;
            }
            if *sources != before {
                update.execute(params![grant_id, grant.encode_to_vec()])?;
            }
            continue;
        }

        let principal_data: Vec<u8> = grant_data.query_row([&principal_grant], |r| r.get(0))?;
        let principal = proto::Grant::decode(principal_data.as_slice())
            .with_context(|| format!("staged grant {principal_grant:?} does not decode"))?
            .principal;
        let entitlement_bytes: Vec<u8> = entitlement_data.query_row([&dst], |r| r.get(0))?;
        let entitlement = proto::Entitlement::decode(entitlement_bytes.as_slice())
            .with_context(|| format!("staged entitlement {dst:?} does not decode"))?;
        let (resource_type_id, resource_id) = entitlement
            .resource
            .as_ref()
            .and_then(|r| r.id.as_ref())
            .map(|id| (id.resource_type.clone(), id.resource.clone()))
            .with_context(|| format!("entitlement {dst:?} has no resource id"))?;
        let grant = proto::Grant {
            id: format!("{dst}:{principal_type}:{principal_id}"),
            entitlement: Some(entitlement),
            principal,
            annotations: vec![proto::any(&GrantImmutable::default())],
            sources: Some(gained),
        };
        insert
            .execute(params![
                grant.id,
                resource_type_id,
                resource_id,
                dst,
                principal_type,
                principal_id,
                grant.encode_to_vec()
            ])
            .with_context(|| format!("adding expanded grant {:?}", grant.id))?;
        created += 1;
    }
    Ok(created)
}
