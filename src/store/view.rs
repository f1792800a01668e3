//! Read views of the items for the projection: the items as stored ([`StoredItems`]), and the
//! items as they will be once a page is applied ([`PageView`]: stored items overlaid with the
//! page's pending writes). Both answer [`ItemLookup`], so `project` and `dependents` run
//! unchanged on the state before and after a page.
//!
//! `ItemLookup` cannot return errors; a view remembers the first storage error it met, answers
//! "absent" meanwhile, and the caller must ask [`StoredItems::check`] before trusting a result.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::ops::Bound;

use anyhow::Context;
use serde_json::Value;

use super::keys::{self, Generation};
use crate::handoff;
use crate::item::{Collection, ItemKey};
use crate::model::projection::ItemLookup;

/// Parsed items kept between look-ups: the grants of one group (consecutive origins in a
/// snapshot, neighbours in a page) all read the same group item. Cleared when full rather than
/// evicted one by one: simple, and what is needed again is what was read last. Small, because
/// a parsed item costs a kilobyte or more.
const CACHE_LIMIT: usize = 4_096;

/// The items and reverse references as stored in sled.
pub struct StoredItems<'a> {
    items: &'a sled::Tree,
    refs: &'a sled::Tree,
    cache: RefCell<HashMap<ItemKey, Option<Value>>>,
    /// The ids of whole collections, read once in key order to answer `exists` (see
    /// [`StoredItems::remember_ids`]).
    known_ids: HashMap<Collection, HashSet<String>>,
    error: RefCell<Option<anyhow::Error>>,
}

impl<'a> StoredItems<'a> {
    pub fn new(items: &'a sled::Tree, refs: &'a sled::Tree) -> StoredItems<'a> {
        StoredItems {
            items,
            refs,
            cache: RefCell::new(HashMap::new()),
            known_ids: HashMap::new(),
            error: RefCell::new(None),
        }
    }

    /// Reads the ids of `collection` once, in key order, and answers `exists` for it from them
    /// from then on. For a full snapshot: nearly every grant asks whether its principal user
    /// and its group exist, and a million point reads spread over every user's leaf of the
    /// tree made sled page its nodes in and out of its cache, where one ordered scan reads each
    /// leaf once.
    /// Only for a view that does not outlive the items it saw (a snapshot holds the writer
    /// lock throughout).
    pub fn remember_ids(&mut self, collection: Collection) -> anyhow::Result<()> {
        let ids = StoredItems::ids(self, collection, "")?;
        self.known_ids.insert(collection, ids.into_iter().collect());
        Ok(())
    }

    /// Fails with the first storage error any look-up met since the last check.
    pub fn check(&self) -> anyhow::Result<()> {
        match self.error.borrow_mut().take() {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    /// The stored item with its generation, read fresh (not cached).
    pub fn stored(&self, key: &ItemKey) -> anyhow::Result<Option<(Generation, Value)>> {
        self.items
            .get(keys::item_key(key))
            .with_context(|| format!("reading item {key:?}"))?
            .map(|bytes| keys::decode_item(&bytes).with_context(|| format!("item {key:?}")))
            .transpose()
    }

    pub fn value(&self, key: &ItemKey) -> anyhow::Result<Option<Value>> {
        if let Some(hit) = self.cache.borrow().get(key) {
            return Ok(hit.clone());
        }
        let value = self.stored(key)?.map(|(_, value)| value);
        let mut cache = self.cache.borrow_mut();
        if cache.len() >= CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(key.clone(), value.clone());
        Ok(value)
    }

    /// The ids of the stored items of `collection` whose id starts with `prefix` and which
    /// were last written by another generation than `current` (what a sweep removes).
    pub fn stale(
        &self,
        collection: Collection,
        prefix: &str,
        current: Generation,
    ) -> anyhow::Result<Vec<String>> {
        let mut stale = Vec::new();
        for entry in self
            .items
            .scan_prefix(keys::item_prefix(collection, prefix))
        {
            let (key, value) = entry.context("scanning items")?;
            if keys::item_generation(&value)? != current {
                stale.push(keys::parse_item_key(&key)?.id);
            }
        }
        Ok(stale)
    }

    pub fn ids(&self, collection: Collection, prefix: &str) -> anyhow::Result<Vec<String>> {
        self.items
            .scan_prefix(keys::item_prefix(collection, prefix))
            .keys()
            .map(|key| Ok(keys::parse_item_key(&key.context("scanning items")?)?.id))
            .collect()
    }

    /// Up to `limit` ids of `collection` greater than `after`, ascending: one range scan that
    /// starts after `after` and stops after `limit` keys, so paging through a collection reads
    /// each key once.
    pub fn ids_after(
        &self,
        collection: Collection,
        after: Option<&str>,
        limit: usize,
    ) -> anyhow::Result<Vec<String>> {
        let start = match after {
            Some(after) => Bound::Excluded(keys::item_prefix(collection, after)),
            None => Bound::Included(keys::item_prefix(collection, "")),
        };
        let all_of_collection = keys::item_prefix(collection, "");
        let mut ids = Vec::with_capacity(limit.min(1024));
        for key in self.items.range((start, Bound::Unbounded)).keys() {
            let key = key.context("scanning items")?;
            if ids.len() == limit || !key.starts_with(&all_of_collection) {
                break;
            }
            ids.push(keys::parse_item_key(&key)?.id);
        }
        Ok(ids)
    }

    pub fn referencing(&self, target: &str, collection: Collection) -> anyhow::Result<Vec<String>> {
        self.refs
            .scan_prefix(keys::ref_prefix(target, collection))
            .keys()
            .map(|key| {
                let (_, item) = keys::parse_ref_key(&key.context("scanning references")?)?;
                Ok(item.id)
            })
            .collect()
    }

    fn note<T>(&self, result: anyhow::Result<T>, fallback: T) -> T {
        result.unwrap_or_else(|error| {
            self.error.borrow_mut().get_or_insert(error);
            fallback
        })
    }
}

impl ItemLookup for StoredItems<'_> {
    fn item(&self, key: &ItemKey) -> Option<Value> {
        let value = self.value(key);
        self.note(value, None)
    }

    fn exists(&self, key: &ItemKey) -> bool {
        if let Some(ids) = self.known_ids.get(&key.collection) {
            return ids.contains(&key.id);
        }
        if let Some(hit) = self.cache.borrow().get(key) {
            return hit.is_some();
        }
        let present = self
            .items
            .contains_key(keys::item_key(key))
            .with_context(|| format!("reading item {key:?}"));
        self.note(present, false)
    }

    fn ids(&self, collection: Collection, prefix: &str) -> Vec<String> {
        let ids = StoredItems::ids(self, collection, prefix);
        self.note(ids, Vec::new())
    }

    fn referencing(&self, target: &str, collection: Collection) -> Vec<String> {
        let ids = StoredItems::referencing(self, target, collection);
        self.note(ids, Vec::new())
    }

    /// Reads and decodes the items on a second thread, a few batches ahead of `f`: in a full
    /// snapshot, walking sled's pages and parsing the JSON is about half the work, and the
    /// projection in `f` the other half. The order is unchanged.
    fn scan(
        &self,
        collection: Collection,
        f: &mut dyn FnMut(ItemKey, Value) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let items = self.items;
        std::thread::scope(|scope| {
            let (mut sender, batches) = handoff::channel(SCAN_BATCH, SCAN_BATCHES_AHEAD);
            let reader = std::thread::Builder::new()
                .name("store-scan".to_string())
                .spawn_scoped(scope, move || -> anyhow::Result<()> {
                    for entry in items.scan_prefix(keys::item_prefix(collection, "")) {
                        // A hung-up receiver means `f` failed: stop reading.
                        if sender.push(decode_entry(entry)?).is_err() {
                            return Ok(());
                        }
                    }
                    // Closed here too only if `f` failed, whose error is the one returned.
                    let _ = sender.finish();
                    Ok(())
                })
                .context("starting the store scan thread")?;
            // Returning on an error of `f` drops the receiver, which stops the reading thread.
            for (key, value) in batches.into_iter().flatten() {
                f(key, value)?;
            }
            // The stream ended: completely, or at the item the reader could not decode.
            reader
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }
}

/// Items per batch handed from the scan's reading thread to the projection, and batches read
/// ahead: enough to keep both threads busy, little memory.
const SCAN_BATCH: usize = 256;
const SCAN_BATCHES_AHEAD: usize = 8;

fn decode_entry(entry: sled::Result<(sled::IVec, sled::IVec)>) -> anyhow::Result<(ItemKey, Value)> {
    let (key, bytes) = entry.context("scanning items")?;
    let key = keys::parse_item_key(&key)?;
    let (_, value) = keys::decode_item(&bytes).with_context(|| format!("item {key:?}"))?;
    Ok((key, value))
}

/// What a page changes, as the projection must see it afterwards.
#[derive(Default)]
pub struct PendingItems {
    /// The new value of every item whose value the page changes (None: removed).
    pub values: BTreeMap<ItemKey, Option<Value>>,
    /// Reverse references the page adds and removes: (target, referencing item).
    pub refs_added: BTreeSet<(String, ItemKey)>,
    pub refs_removed: BTreeSet<(String, ItemKey)>,
}

/// The stored items with a page's pending changes laid over them.
pub struct PageView<'a> {
    pub base: &'a StoredItems<'a>,
    pub pending: &'a PendingItems,
}

impl ItemLookup for PageView<'_> {
    fn item(&self, key: &ItemKey) -> Option<Value> {
        match self.pending.values.get(key) {
            Some(value) => value.clone(),
            None => self.base.item(key),
        }
    }

    fn exists(&self, key: &ItemKey) -> bool {
        match self.pending.values.get(key) {
            Some(value) => value.is_some(),
            None => self.base.exists(key),
        }
    }

    fn ids(&self, collection: Collection, prefix: &str) -> Vec<String> {
        let mut ids: BTreeSet<String> = ItemLookup::ids(self.base, collection, prefix)
            .into_iter()
            .collect();
        let start = ItemKey::new(collection, prefix);
        for (key, value) in self
            .pending
            .values
            .range(start..)
            .take_while(|(k, _)| k.collection == collection && k.id.starts_with(prefix))
        {
            match value {
                Some(_) => ids.insert(key.id.clone()),
                None => ids.remove(&key.id),
            };
        }
        ids.into_iter().collect()
    }

    fn referencing(&self, target: &str, collection: Collection) -> Vec<String> {
        let mut ids: BTreeSet<String> = ItemLookup::referencing(self.base, target, collection)
            .into_iter()
            .collect();
        for id in refs_of(&self.pending.refs_removed, target, collection) {
            ids.remove(id);
        }
        ids.extend(refs_of(&self.pending.refs_added, target, collection).cloned());
        ids.into_iter().collect()
    }
}

/// The ids of the items of `collection` that name `target` in a set of pending references.
fn refs_of<'s>(
    set: &'s BTreeSet<(String, ItemKey)>,
    target: &'s str,
    collection: Collection,
) -> impl Iterator<Item = &'s String> {
    set.range((target.to_string(), ItemKey::new(collection, ""))..)
        .take_while(move |(t, k)| t == target && k.collection == collection)
        .map(|(_, k)| &k.id)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn key(collection: Collection, id: &str) -> ItemKey {
        ItemKey::new(collection, id)
    }

    #[test]
    fn a_page_view_overlays_pending_items_and_references() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let items = db.open_tree("items").unwrap();
        let refs = db.open_tree("refs").unwrap();
        let stored_member = key(Collection::GroupMember, "g/u1");
        for (k, v) in [
            (key(Collection::User, "u1"), json!({"id": "u1"})),
            (
                stored_member.clone(),
                json!({"@odata.type": "#microsoft.graph.user"}),
            ),
            (key(Collection::GroupMember, "h/u1"), json!({})),
        ] {
            items
                .insert(
                    keys::item_key(&k),
                    keys::encode_item(Generation(1), &v).unwrap(),
                )
                .unwrap();
            if k.collection == Collection::GroupMember {
                refs.insert(keys::ref_key("u1", &k), &[]).unwrap();
            }
        }
        let stored = StoredItems::new(&items, &refs);

        let added_member = key(Collection::GroupMember, "g/u2");
        let mut pending = PendingItems::default();
        pending.values.insert(stored_member.clone(), None);
        pending.values.insert(added_member.clone(), Some(json!({})));
        pending
            .values
            .insert(key(Collection::User, "u3"), Some(json!({"id": "u3"})));
        pending
            .refs_removed
            .insert(("u1".into(), stored_member.clone()));
        pending
            .refs_added
            .insert(("u2".into(), added_member.clone()));
        let view = PageView {
            base: &stored,
            pending: &pending,
        };

        assert_eq!(view.ids(Collection::GroupMember, "g/"), ["g/u2"]);
        assert_eq!(view.ids(Collection::GroupMember, ""), ["g/u2", "h/u1"]);
        assert_eq!(view.referencing("u1", Collection::GroupMember), ["h/u1"]);
        assert_eq!(view.referencing("u2", Collection::GroupMember), ["g/u2"]);
        assert_eq!(
            view.referencing("u2", Collection::GroupOwner),
            Vec::<String>::new()
        );
        assert_eq!(view.item(&stored_member), None);
        assert_eq!(
            view.item(&key(Collection::User, "u3")),
            Some(json!({"id": "u3"}))
        );
        assert_eq!(
            view.item(&key(Collection::User, "u1")),
            Some(json!({"id": "u1"}))
        );

        // The stored view is untouched.
        assert_eq!(
            ItemLookup::ids(&stored, Collection::GroupMember, "g/"),
            ["g/u1"]
        );
        assert_eq!(
            ItemLookup::referencing(&stored, "u1", Collection::GroupMember),
            ["g/u1", "h/u1"]
        );
        stored.check().unwrap();
    }

    #[test]
    fn a_storage_error_is_reported_by_check() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let items = db.open_tree("items").unwrap();
        let refs = db.open_tree("refs").unwrap();
        let k = key(Collection::User, "u1");
        items.insert(keys::item_key(&k), &b"short"[..]).unwrap();
        let stored = StoredItems::new(&items, &refs);
        assert_eq!(stored.item(&k), None);
        let error = stored.check().unwrap_err();
        assert!(
            format!("{error:#}").contains("generation header"),
            "{error:#}"
        );
        stored.check().unwrap();
    }

    #[test]
    fn a_scan_reads_ahead_in_order_and_stops_at_the_first_error() {
        let db = sled::Config::new().temporary(true).open().unwrap();
        let items = db.open_tree("items").unwrap();
        let refs = db.open_tree("refs").unwrap();
        // Several batches, and an item of the next collection that the scan must not yield.
        let count = SCAN_BATCH * (SCAN_BATCHES_AHEAD + 3) + 7;
        let ids: Vec<String> = (0..count).map(|n| format!("u{n:06}")).collect();
        for id in &ids {
            let k = key(Collection::User, id);
            items
                .insert(
                    keys::item_key(&k),
                    keys::encode_item(Generation(1), &json!({ "id": id })).unwrap(),
                )
                .unwrap();
        }
        let group = key(Collection::Group, "g1");
        items
            .insert(
                keys::item_key(&group),
                keys::encode_item(Generation(1), &json!({})).unwrap(),
            )
            .unwrap();
        let stored = StoredItems::new(&items, &refs);

        let mut seen = Vec::new();
        stored
            .scan(Collection::User, &mut |k, value| {
                assert_eq!(value["id"], json!(k.id));
                seen.push(k.id);
                Ok(())
            })
            .unwrap();
        assert_eq!(seen, ids);

        // An error from the callee ends the scan at once (the reading thread stops too: the
        // call returns).
        let mut calls = 0;
        let error = stored
            .scan(Collection::User, &mut |_, _| {
                calls += 1;
                anyhow::ensure!(calls < 3, "the sink is full");
                Ok(())
            })
            .unwrap_err();
        assert_eq!(calls, 3);
        assert_eq!(error.to_string(), "the sink is full");

        // A damaged item fails the scan and names the item.
        let damaged = key(Collection::User, &ids[SCAN_BATCH + 1]);
        items
            .insert(keys::item_key(&damaged), &b"short"[..])
            .unwrap();
        let mut before = 0;
        let error = stored
            .scan(Collection::User, &mut |_, _| {
                before += 1;
                Ok(())
            })
            .unwrap_err();
        assert_eq!(
            before, SCAN_BATCH,
            "every full batch before the damaged item is yielded"
        );
        assert!(
            format!("{error:#}").contains(&ids[SCAN_BATCH + 1]),
            "{error:#}"
        );
    }
}
