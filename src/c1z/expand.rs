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
//! The grants are already in the output table `v1_grants`, written in the order they arrived:
//! the expansion finds them by rowid. One sequential scan of the sync's grants collects who holds
//! the expandable entitlements, so memory grows with the grants on those entitlements only, not
//! with all grants; existing grants gain their sources in place and new grants are appended to
//! the same sync.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use anyhow::{Context, Result, bail};
use prost::Message;
use rusqlite::{Connection, params};

use super::rows::GRANT_INSERT;
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
    /// The `v1_entitlements` row of each destination entitlement, which expanded grants embed.
    entitlement_rows: HashMap<u32, i64>,
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

/// The grants of the sync being written, as the writer saw them arrive.
pub(crate) struct SyncGrants<'a> {
    pub sync_id: &'a str,
    pub discovered_at: &'a str,
    /// This sync's rows have rowids above these; lower ones belong to earlier syncs of the file.
    pub grants_after: i64,
    pub entitlements_after: i64,
    /// Grants with a `GrantExpandable` naming at least one entitlement: the graph's edges.
    pub expandable: &'a [i64],
    /// Grants that are not direct for their own entitlement (sources without it): rare, so
    /// kept as a set of the exceptions.
    pub indirect: &'a HashSet<i64>,
}

/// Expands the sync's grants in place; returns how many grants it created.
pub(crate) fn expand(conn: &Connection, sync: &SyncGrants) -> Result<u64> {
    let graph = load_graph(conn, sync)?;
    if graph.edges.is_empty() {
        return Ok(0);
    }
    let held = scan_holdings(conn, &graph, sync)?;
    apply(conn, &graph, held, sync)
}

/// An expandable grant, read back by rowid.
struct ExpandableGrant {
    grant_id: String,
    entitlement: String,
    principal: (String, String),
    expandable: GrantExpandable,
}

fn load_graph(conn: &Connection, sync: &SyncGrants) -> Result<Graph> {
    let mut read = conn.prepare(
        "select external_id, entitlement_id, principal_resource_type_id, principal_resource_id,
             expansion from v1_grants where id = ?1",
    )?;
    let mut grants = Vec::with_capacity(sync.expandable.len());
    let mut named: HashSet<String> = HashSet::new();
    for rowid in sync.expandable {
        let (grant_id, entitlement, principal, blob): (String, String, _, Vec<u8>) = read
            .query_row([rowid], |row| {
                Ok((
                    row.get(0)?,
                    row.get(1)?,
                    (row.get(2)?, row.get(3)?),
                    row.get(4)?,
                ))
            })?;
        let expandable = GrantExpandable::decode(blob.as_slice())
            .with_context(|| format!("grant {grant_id:?}: GrantExpandable does not decode"))?;
        named.insert(entitlement.clone());
        named.extend(expandable.entitlement_ids.iter().cloned());
        grants.push(ExpandableGrant {
            grant_id,
            entitlement,
            principal,
            expandable,
        });
    }
    let entitlements = find_entitlements(conn, sync, &named)?;

    let mut graph = Graph::default();
    for grant in grants {
        let mut seen = HashSet::new();
        for src in &grant.expandable.entitlement_ids {
            if src.trim().is_empty() || !seen.insert(src.as_str()) {
                continue;
            }
            // baton drops edges from entitlements that do not exist, and fails the sync on an
            // edge from an entitlement of someone other than the grant's principal.
            let Some(source) = entitlements.get(src) else {
                continue;
            };
            if source.owner != grant.principal {
                bail!(
                    "grant {:?} expands from entitlement {src:?}, which belongs to {}:{}, not to \
                     the grant's principal {}:{}",
                    grant.grant_id,
                    source.owner.0,
                    source.owner.1,
                    grant.principal.0,
                    grant.principal.1
                );
            }
            let (s, d) = (graph.intern(src), graph.intern(&grant.entitlement));
            if let Some(destination) = entitlements.get(&grant.entitlement) {
                graph.entitlement_rows.insert(d, destination.rowid);
            }
            graph.edges.entry(s).or_default().push(Edge {
                dst: d,
                shallow: grant.expandable.shallow,
                principal_types: grant.expandable.resource_type_ids.clone(),
            });
        }
    }
    Ok(graph)
}

/// An entitlement of the sync that an edge names.
struct EntitlementRow {
    rowid: i64,
    owner: (String, String),
}

/// The sync's entitlements among `named`, in one scan of its entitlement rows.
fn find_entitlements(
    conn: &Connection,
    sync: &SyncGrants,
    named: &HashSet<String>,
) -> Result<HashMap<String, EntitlementRow>> {
    let mut found = HashMap::new();
    if named.is_empty() {
        return Ok(found);
    }
    let mut scan = conn.prepare(
        "select id, external_id, resource_type_id, resource_id from v1_entitlements
         where id > ?1",
    )?;
    let mut rows = scan.query([sync.entitlements_after])?;
    while let Some(row) = rows.next()? {
        let external_id = row.get_ref(1)?.as_str()?;
        if !named.contains(external_id) || found.contains_key(external_id) {
            continue;
        }
        found.insert(
            external_id.to_string(),
            EntitlementRow {
                rowid: row.get(0)?,
                owner: (row.get(2)?, row.get(3)?),
            },
        );
    }
    Ok(found)
}

/// What one sequential scan of the sync's grants tells the expansion.
#[derive(Default)]
struct Holdings {
    /// Interned principals `(type, id)`.
    principals: Vec<(String, String)>,
    principal_index: HashMap<(String, String), u32>,
    /// Per principal: the source entitlements it holds (-> its grant there is direct), and one
    /// grant of it on a source entitlement, whose principal message expanded grants copy.
    holders: BTreeMap<u32, Holder>,
    /// The existing grant (its rowid) of (destination entitlement, principal), if any.
    existing: HashMap<(u32, u32), i64>,
}

struct Holder {
    /// The rowid of one of its grants on a source entitlement.
    grant: i64,
    holds: HashMap<u32, bool>,
}

impl Holdings {
    fn principal(&mut self, principal: (String, String)) -> u32 {
        if let Some(&i) = self.principal_index.get(&principal) {
            return i;
        }
        let i = self.principals.len() as u32;
        self.principals.push(principal.clone());
        self.principal_index.insert(principal, i);
        i
    }
}

/// Collects, in one pass over the sync's grants, the grants on source entitlements (who holds
/// what) and on destination entitlements (what already exists). Memory grows with the grants
/// on expandable entitlements only.
fn scan_holdings(conn: &Connection, graph: &Graph, sync: &SyncGrants) -> Result<Holdings> {
    let destinations: HashSet<u32> = graph.edges.values().flatten().map(|e| e.dst).collect();
    let mut held = Holdings::default();
    let mut stmt = conn.prepare(
        "select id, entitlement_id, principal_resource_type_id, principal_resource_id
         from v1_grants where id > ?1",
    )?;
    let mut rows = stmt.query([sync.grants_after])?;
    while let Some(row) = rows.next()? {
        let Some(&entitlement) = graph.index.get(row.get_ref(1)?.as_str()?) else {
            continue;
        };
        let is_source = graph.edges.contains_key(&entitlement);
        let is_destination = destinations.contains(&entitlement);
        if !is_source && !is_destination {
            continue;
        }
        let grant: i64 = row.get(0)?;
        let principal = held.principal((row.get(2)?, row.get(3)?));
        if is_destination {
            held.existing
                .entry((entitlement, principal))
                .or_insert(grant);
        }
        if is_source {
            let direct = !sync.indirect.contains(&grant);
            let holder = held.holders.entry(principal).or_insert_with(|| Holder {
                grant,
                holds: HashMap::new(),
            });
            *holder.holds.entry(entitlement).or_insert(false) |= direct;
        }
    }
    Ok(held)
}

/// Walks the edges from what `holder` holds: the sources each reached entitlement gains.
fn walk(
    graph: &Graph,
    principal_type: &str,
    holder: &Holder,
) -> BTreeMap<u32, BTreeMap<String, GrantSource>> {
    let mut gains: BTreeMap<u32, BTreeMap<String, GrantSource>> = BTreeMap::new();
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
                && !edge.principal_types.iter().any(|t| t == principal_type)
            {
                continue;
            }
            gains
                .entry(edge.dst)
                .or_default()
                .entry(graph.ids[entitlement as usize].clone())
                .or_default()
                .is_direct |= direct;
            if reached.insert(edge.dst) {
                queue.push_back((edge.dst, depth + 1));
            }
        }
    }
    gains
}

/// Walks every holder and writes what it gains into the sync's grants; returns how many grants
/// were created.
fn apply(conn: &Connection, graph: &Graph, held: Holdings, sync: &SyncGrants) -> Result<u64> {
    let mut grant_data = conn.prepare("select data from v1_grants where id = ?1")?;
    let mut entitlement_data = conn.prepare("select data from v1_entitlements where id = ?1")?;
    let mut update = conn.prepare("update v1_grants set data = ?2 where id = ?1")?;
    let mut insert = conn.prepare(GRANT_INSERT)?;
    let mut entitlements: HashMap<u32, proto::Entitlement> = HashMap::new();

    let mut created = 0;
    for (principal, holder) in &held.holders {
        let (principal_type, principal_id) = &held.principals[*principal as usize];
        let mut principal_message = None;
        for (dst, gained) in walk(graph, principal_type, holder) {
            let dst_id = &graph.ids[dst as usize];
            if let Some(&grant_row) = held.existing.get(&(dst, *principal)) {
                let data: Vec<u8> = grant_data.query_row([grant_row], |r| r.get(0))?;
                let mut grant = proto::Grant::decode(data.as_slice()).with_context(|| {
                    format!(
                        "the grant of {principal_type}:{principal_id} on {dst_id:?} does not decode"
                    )
                })?;
                let sources = grant.sources.get_or_insert_with(GrantSources::default);
                let before = sources.clone();
                if sources.sources.is_empty() {
                    sources
                        .sources
                        .insert(dst_id.clone(), GrantSource { is_direct: true });
                }
                for (src, source) in gained {
                    sources.sources.entry(src).or_default().is_direct |= source.is_direct;
                }
                if *sources != before {
                    update.execute(params![grant_row, grant.encode_to_vec()])?;
                }
                continue;
            }

            if principal_message.is_none() {
                let data: Vec<u8> = grant_data.query_row([holder.grant], |r| r.get(0))?;
                principal_message = proto::Grant::decode(data.as_slice())
                    .with_context(|| {
                        format!("a grant of {principal_type}:{principal_id} does not decode")
                    })?
                    .principal;
            }
            let entitlement = match entitlements.get(&dst) {
                Some(e) => e.clone(),
                None => {
                    let row = graph.entitlement_rows.get(&dst).with_context(|| {
                        format!("grants expand into entitlement {dst_id:?}, which the sync lacks")
                    })?;
                    let data: Vec<u8> = entitlement_data.query_row([row], |r| r.get(0))?;
                    let e = proto::Entitlement::decode(data.as_slice())
                        .with_context(|| format!("entitlement {dst_id:?} does not decode"))?;
                    entitlements.insert(dst, e.clone());
                    e
                }
            };
            let (resource_type_id, resource_id) = entitlement
                .resource
                .as_ref()
                .and_then(|r| r.id.as_ref())
                .map(|id| (id.resource_type.clone(), id.resource.clone()))
                .with_context(|| format!("entitlement {dst_id:?} has no resource id"))?;
            let grant = proto::Grant {
                id: format!("{dst_id}:{principal_type}:{principal_id}"),
                entitlement: Some(entitlement),
                principal: principal_message.clone(),
                annotations: vec![proto::any(&GrantImmutable::default())],
                sources: Some(GrantSources { sources: gained }),
            };
            insert
                .execute(params![
                    resource_type_id,
                    resource_id,
                    dst_id,
                    principal_type,
                    principal_id,
                    grant.id,
                    None::<Vec<u8>>,
                    false,
                    grant.encode_to_vec(),
                    sync.sync_id,
                    sync.discovered_at
                ])
                .with_context(|| format!("adding expanded grant {:?}", grant.id))?;
            created += 1;
        }
    }
    Ok(created)
}
