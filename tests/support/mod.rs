//! Shared by the end-to-end tests: an emulator on loopback, configurations pointing at it (built
//! through the real command-line parser), in-process rounds, and comparisons of what the worker
//! holds with the emulator's expected access graph.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use baton_azure_delta::cli;
use baton_azure_delta::config::{Config, Needs, Settings};
use baton_azure_delta::model::proto;
use baton_azure_delta::model::{Record, Table};
use baton_azure_delta::store::{Store, StoreUse};
use baton_azure_delta::sync::engine::{Engine, RoundKind, RoundReport};
use baton_azure_delta::sync::{demo, setup};
use emulator::{Control, Emulator, EmulatorConfig, ExpectedGraph, ExpectedOptions, TenantSpec};

pub struct Harness {
    pub emulator: Emulator,
    pub dir: tempfile::TempDir,
}

impl Harness {
    pub async fn start(spec: TenantSpec) -> Harness {
        let dir = tempfile::tempdir().expect("temp dir");
        let emulator = Emulator::start(EmulatorConfig::new(spec, dir.path().join("emulator")))
            .await
            .expect("emulator starts");
        Harness { emulator, dir }
    }

    pub fn control(&self) -> Control {
        self.emulator.control()
    }

    /// Command-line arguments that point the worker at the emulator, with its own state dir.
    pub fn args(&self, state: &Path, extra: &[&str]) -> Vec<String> {
        let mut args = self.emulator.worker_args();
        args.extend([
            format!("--state-dir={}", state.display()),
            format!("--file={}", state.with_extension("c1z").display()),
            "--listen=off".to_string(),
        ]);
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    }

    /// The validated configuration those arguments give, through the real parser.
    pub fn config(&self, state: &Path, extra: &[&str]) -> Config {
        let argv = std::iter::once("baton-azure-delta".to_string())
            .chain(self.args(state, extra))
            .chain(std::iter::once("sync".to_string()));
        let matches = cli::command()
            .try_get_matches_from(argv)
            .expect("arguments parse");
        let settings = Settings::load(&matches, None).expect("settings load");
        Config::from_settings(&settings, Needs { credential: true }).expect("config validates")
    }

    /// A worker (store + engine) on the emulator's clock, with [`test_feed_options`].
    pub async fn worker(&self, state: &Path, extra: &[&str]) -> Worker {
        let config = self.config(state, extra);
        let options = test_feed_options(&config);
        self.worker_with(config, options).await
    }

    /// A worker with [`test_feed_options`] changed by `adjust`.
    pub async fn worker_adjusted(
        &self,
        state: &Path,
        extra: &[&str],
        adjust: impl FnOnce(&mut baton_azure_delta::feeds::FeedOptions),
    ) -> Worker {
        let config = self.config(state, extra);
        let mut options = test_feed_options(&config);
        adjust(&mut options);
        self.worker_with(config, options).await
    }

    /// A worker with the production feed options, exactly as `sync` builds it.
    pub async fn production_worker(&self, state: &Path, extra: &[&str]) -> Worker {
        let config = self.config(state, extra);
        let options = setup::feed_options(&config);
        self.worker_with(config, options).await
    }

    async fn worker_with(
        &self,
        config: Config,
        options: baton_azure_delta::feeds::FeedOptions,
    ) -> Worker {
        let client = setup::connect(&config).await.expect("credentials accepted");
        let store = Arc::new(
            setup::open_store(
                &config.state_dir,
                setup::projection_options(&config),
                StoreUse::Rounds,
            )
            .expect("store opens"),
        );
        let control = self.control();
        let engine = setup::engine_with_clock(
            store.clone(),
            client,
            options,
            Arc::new(move || control.now()),
        );
        Worker {
            config,
            store,
            engine: Arc::new(engine),
        }
    }

    /// Records of a fresh baseline of the tenant as it is now, in a new state dir.
    pub async fn fresh_records(
        &self,
        name: &str,
        extra: &[&str],
    ) -> BTreeMap<(Table, String), Vec<u8>> {
        let worker = self.worker(&self.dir.path().join(name), extra).await;
        let report = worker.round(RoundKind::Poll).await;
        assert!(
            report.failed.is_empty(),
            "fresh baseline failed: {:?}",
            report.failed
        );
        worker.records()
    }
}

/// Feed options for invariant tests: hint-driven feeds re-read everything every round, so
/// "incremental equals full" is exact (the production default refreshes them daily).
pub fn test_feed_options(config: &Config) -> baton_azure_delta::feeds::FeedOptions {
    baton_azure_delta::feeds::FeedOptions {
        full_pass_every: std::time::Duration::ZERO,
        ..setup::feed_options(config)
    }
}

pub struct Worker {
    pub config: Config,
    pub store: Arc<Store>,
    /// Shared, so that a page observer can hold it weakly (e.g. to stop a round mid-way).
    pub engine: Arc<Engine>,
}

impl Worker {
    pub async fn round(&self, kind: RoundKind) -> RoundReport {
        self.engine.round(kind).await.expect("round runs")
    }

    pub fn records(&self) -> BTreeMap<(Table, String), Vec<u8>> {
        demo::records(&self.store).expect("records read")
    }

    pub fn decoded(&self) -> Vec<Record> {
        let mut all = vec![];
        self.store
            .for_each_record(&mut |r| {
                all.push(r);
                Ok(())
            })
            .expect("records read");
        all
    }
}

/// The expected graph's options for a set of command-line flags.
pub fn expected_options(extra: &[&str]) -> ExpectedOptions {
    ExpectedOptions {
        mailbox_settings: extra.contains(&"--mailboxSettings"),
        skip_ad_groups: extra.contains(&"--skip-ad-groups"),
        skip_unused_roles: extra.contains(&"--skip-unused-roles"),
        skip_storage_containers: extra.contains(&"--skip-sync-storage-containers"),
        skip_p2: extra.contains(&"--skip-entra-id-p2-license-features"),
    }
}

/// Compares the worker's records with the emulator's expected access graph: the same ids in
/// every table, each resource's parent, each grant's entitlement, principal and expansion.
/// Returns the differences, described (empty when equal).
pub fn differences_from_expected(records: &[Record], expected: &ExpectedGraph) -> Vec<String> {
    let mut problems = vec![];
    let mut types = BTreeSet::new();
    let mut resources = BTreeMap::new();
    let mut entitlements = BTreeMap::new();
    let mut grants = BTreeMap::new();
    for record in records {
        match record {
            Record::ResourceType(rt) => {
                types.insert(rt.id.clone());
            }
            Record::Resource(r) => {
                let parent = r
                    .parent_resource_id
                    .as_ref()
                    .map(|p| format!("{}:{}", p.resource_type, p.resource));
                resources.insert(record.external_id(), parent);
            }
            Record::Entitlement(e) => {
                let resource = e
                    .resource
                    .as_ref()
                    .and_then(|r| r.id.as_ref())
                    .map(|id| format!("{}:{}", id.resource_type, id.resource))
                    .unwrap_or_default();
                entitlements.insert(e.id.clone(), (resource, e.slug.clone()));
            }
            Record::Grant(g) => {
                let entitlement = g
                    .entitlement
                    .as_ref()
                    .map(|e| e.id.clone())
                    .unwrap_or_default();
                let principal = g
                    .principal
                    .as_ref()
                    .and_then(|p| p.id.as_ref())
                    .map(|id| format!("{}:{}", id.resource_type, id.resource))
                    .unwrap_or_default();
                let expandable = proto::find_annotation::<proto::GrantExpandable>(&g.annotations)
                    .map(|x| x.entitlement_ids)
                    .unwrap_or_default();
                grants.insert(g.id.clone(), (entitlement, principal, expandable));
            }
        }
    }
    set_diff(
        &mut problems,
        "resource type",
        &types,
        &expected.resource_types,
    );
    let expected_resources: BTreeMap<String, Option<String>> = expected
        .resources
        .iter()
        .map(|(id, r)| (id.clone(), r.parent.clone()))
        .collect();
    map_diff(&mut problems, "resource", &resources, &expected_resources);
    let expected_entitlements: BTreeMap<String, (String, String)> = expected
        .entitlements
        .iter()
        .map(|(id, e)| (id.clone(), (e.resource.clone(), e.slug.clone())))
        .collect();
    map_diff(
        &mut problems,
        "entitlement",
        &entitlements,
        &expected_entitlements,
    );
    let expected_grants: BTreeMap<String, (String, String, Vec<String>)> = expected
        .grants
        .iter()
        .map(|(id, g)| {
            (
                id.clone(),
                (
                    g.entitlement.clone(),
                    g.principal.clone(),
                    g.expandable.clone(),
                ),
            )
        })
        .collect();
    map_diff(&mut problems, "grant", &grants, &expected_grants);
    problems
}

fn set_diff(
    problems: &mut Vec<String>,
    what: &str,
    ours: &BTreeSet<String>,
    theirs: &BTreeSet<String>,
) {
    for id in theirs.difference(ours) {
        problems.push(format!("missing {what} {id}"));
    }
    for id in ours.difference(theirs) {
        problems.push(format!("unexpected {what} {id}"));
    }
}

fn map_diff<V: PartialEq + std::fmt::Debug>(
    problems: &mut Vec<String>,
    what: &str,
    ours: &BTreeMap<String, V>,
    theirs: &BTreeMap<String, V>,
) {
    for (id, value) in theirs {
        match ours.get(id) {
            None => problems.push(format!("missing {what} {id}")),
            Some(v) if v != value => {
                problems.push(format!("{what} {id}: ours {v:?}, expected {value:?}"))
            }
            Some(_) => {}
        }
    }
    for id in ours.keys() {
        if !theirs.contains_key(id) {
            problems.push(format!("unexpected {what} {id}"));
        }
    }
}

/// Fails with the first differences, if any.
pub fn assert_no_differences(context: &str, problems: &[String]) {
    assert!(
        problems.is_empty(),
        "{context}: {} differences, first ones:\n  {}",
        problems.len(),
        problems
            .iter()
            .take(15)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n  ")
    );
}

pub fn state_path(h: &Harness, name: &str) -> PathBuf {
    h.dir.path().join(name)
}

/// Every record of one sync of a `.c1z`, by table and external id, as the `data` bytes.
pub fn c1z_sync_rows(path: &Path, sync_type: &str) -> BTreeMap<(Table, String), Vec<u8>> {
    use baton_azure_delta::c1z::reader::C1zReader;
    let reader = C1zReader::open(path).expect("c1z opens");
    let sync = reader
        .syncs()
        .expect("syncs listed")
        .into_iter()
        .rev()
        .find(|s| s.sync_type == sync_type)
        .unwrap_or_else(|| panic!("{} has a {sync_type} sync", path.display()));
    let mut rows = BTreeMap::new();
    for table in Table::ALL {
        for row in reader.rows(&sync.sync_id, table).expect("rows read") {
            rows.insert((table, row.external_id), row.data);
        }
    }
    rows
}

/// The records of a snapshot with a diff file's deletions removed and its upserts applied.
pub fn apply_diff(
    old: &BTreeMap<(Table, String), Vec<u8>>,
    diff: &Path,
) -> BTreeMap<(Table, String), Vec<u8>> {
    let mut new = old.clone();
    for key in c1z_sync_rows(diff, "partial_deletions").keys() {
        new.remove(key);
    }
    new.extend(c1z_sync_rows(diff, "partial_upserts"));
    new
}
