//! Applying one page to the items, without writing anything yet: the changes in order, then
//! the sweeps, resolved against the stored items into (a) the sled writes and (b) the pending
//! view the projection needs to see the items as they will be.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, bail};
use serde_json::Value;

use super::keys::{self, Generation};
use super::view::{PendingItems, StoredItems};
use crate::item::{Change, Collection, ItemKey};
use crate::model::projection::references;

/// Everything a page does to the `items` and `refs` trees.
#[derive(Default)]
pub struct PageEffect {
    /// Items whose value changes, and the reverse references that change with them.
    pub pending: PendingItems,
    pub item_writes: sled::Batch,
    pub ref_writes: sled::Batch,
    /// Items created (+1) and removed (-1), per collection.
    pub item_counts: BTreeMap<Collection, i64>,
    /// Items written (created, changed, or re-marked with the round's generation).
    pub written: usize,
    pub removed: usize,
}

/// Resolves `changes` (in order), then `sweep`, against the stored items.
pub fn apply(
    stored: &StoredItems<'_>,
    changes: &[Change],
    generation: Generation,
    sweep: &[(Collection, Option<String>)],
) -> anyhow::Result<PageEffect> {
    // The page's view of every item it touches: None = removed.
    let mut touched: BTreeMap<ItemKey, Option<Value>> = BTreeMap::new();
    for change in changes {
        match change {
            Change::Upsert { key, value } => {
                require_object(key, value, "Upsert")?;
                touched.insert(key.clone(), Some(value.clone()));
            }
            Change::Merge { key, value } => {
                require_object(key, value, "Merge")?;
                let current = match touched.get(key) {
                    Some(current) => current.clone(),
                    None => stored.value(key)?,
                };
                touched.insert(key.clone(), Some(merge(current, value)));
            }
            Change::Remove { key } => {
                touched.insert(key.clone(), None);
            }
            Change::RemovePrefix { collection, prefix } => {
                for id in stored.ids(*collection, prefix)? {
                    touched.insert(ItemKey::new(*collection, id), None);
                }
                let start = ItemKey::new(*collection, prefix.as_str());
                for (_, value) in touched
                    .range_mut(start..)
                    .take_while(|(k, _)| k.collection == *collection && k.id.starts_with(prefix))
                {
                    *value = None;
                }
            }
        }
    }
    for (collection, prefix) in sweep {
        let prefix = prefix.as_deref().unwrap_or("");
        for id in stored.stale(*collection, prefix, generation)? {
            // An item this page writes carries `generation`; one it removes is gone anyway.
            touched.entry(ItemKey::new(*collection, id)).or_insert(None);
        }
    }

    let mut effect = PageEffect::default();
    for (key, after) in touched {
        let before = stored.stored(&key)?;
        let item_key = keys::item_key(&key);
        let old_value = match (before, &after) {
            (None, None) => continue,
            (Some((_, old)), None) => {
                effect.item_writes.remove(item_key);
                effect.removed += 1;
                *effect.item_counts.entry(key.collection).or_default() -= 1;
                Some(old)
            }
            (Some((marked, old)), Some(new)) if old == *new => {
                if marked != generation {
                    effect
                        .item_writes
                        .insert(item_key, keys::encode_item(generation, new)?);
                    effect.written += 1;
                }
                continue;
            }
            (before, Some(new)) => {
                effect
                    .item_writes
                    .insert(item_key, keys::encode_item(generation, new)?);
                effect.written += 1;
                if before.is_none() {
                    *effect.item_counts.entry(key.collection).or_default() += 1;
                }
                before.map(|(_, old)| old)
            }
        };
        index_references(&mut effect, &key, old_value.as_ref(), after.as_ref())?;
        effect.pending.values.insert(key, after);
    }
    Ok(effect)
}

/// Updates the reverse index for an item whose value goes from `old` to `new`.
fn index_references(
    effect: &mut PageEffect,
    key: &ItemKey,
    old: Option<&Value>,
    new: Option<&Value>,
) -> anyhow::Result<()> {
    let targets = |value: Option<&Value>| -> BTreeSet<String> {
        value
            .map(|v| references(key, v))
            .unwrap_or_default()
            .into_iter()
            .collect()
    };
    let old_targets = targets(old);
    let new_targets = targets(new);
    for gone in old_targets.difference(&new_targets) {
        effect.ref_writes.remove(keys::ref_key(gone, key));
        effect
            .pending
            .refs_removed
            .insert((gone.clone(), key.clone()));
    }
    for added in new_targets.difference(&old_targets) {
        keys::check_ref_target(added).with_context(|| format!("indexing item {key:?}"))?;
        effect.ref_writes.insert(keys::ref_key(added, key), &[]);
        effect
            .pending
            .refs_added
            .insert((added.clone(), key.clone()));
    }
    Ok(())
}

fn require_object(key: &ItemKey, value: &Value, change: &str) -> anyhow::Result<()> {
    if !value.is_object() {
        let kind = match value {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Number(_) => "a number",
            Value::String(_) => "a string",
            Value::Array(_) => "an array",
            Value::Object(_) => "an object",
        };
        bail!("{change} of item {key:?}: the value must be a JSON object, not {kind}");
    }
    Ok(())
}

/// Graph `Prefer: return=minimal`: the properties present replace the stored ones; the others
/// keep their stored values.
fn merge(current: Option<Value>, changes: &Value) -> Value {
    let mut merged = match current {
        Some(Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    };
    if let Value::Object(changes) = changes {
        for (name, value) in changes {
            merged.insert(name.clone(), value.clone());
        }
    }
    Value::Object(merged)
}
