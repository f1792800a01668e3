//! The byte layout of the store's sled keys and item values. Everything that must stay stable
//! across releases (the schema) is here: collection tags, item keys and values, reverse
//! reference keys, change-log keys.

use anyhow::{Context, bail};
use serde_json::Value;

use crate::item::{Collection, ItemKey};

/// The generation of a round: every item a round writes carries it, so the round can sweep the
/// items of a scope it did not see. Generations only grow.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct Generation(pub u64);

/// Every collection, in tag order of declaration (for tests and status).
pub const COLLECTIONS: [Collection; 21] = [
    Collection::Organization,
    Collection::User,
    Collection::Mailbox,
    Collection::Group,
    Collection::GroupMember,
    Collection::GroupOwner,
    Collection::GroupEligibility,
    Collection::ServicePrincipal,
    Collection::ServicePrincipalOwner,
    Collection::AppRoleAssignment,
    Collection::DirectoryRoleDefinition,
    Collection::DirectoryRoleAssignment,
    Collection::DirectoryRoleEligibility,
    Collection::ManagementGroup,
    Collection::Subscription,
    Collection::ResourceGroup,
    Collection::RoleDefinition,
    Collection::RoleAssignment,
    Collection::RoleEligibility,
    Collection::StorageAccount,
    Collection::Container,
];

/// The one-byte tag that starts every key of a collection's items. Part of the schema: never
/// reuse or renumber a tag.
pub fn collection_tag(collection: Collection) -> u8 {
    match collection {
        Collection::Organization => b'O',
        Collection::User => b'U',
        Collection::Mailbox => b'X',
        Collection::Group => b'G',
        Collection::GroupMember => b'm',
        Collection::GroupOwner => b'o',
        Collection::GroupEligibility => b'g',
        Collection::ServicePrincipal => b'S',
        Collection::ServicePrincipalOwner => b's',
        Collection::AppRoleAssignment => b'a',
        Collection::DirectoryRoleDefinition => b'D',
        Collection::DirectoryRoleAssignment => b'd',
        Collection::DirectoryRoleEligibility => b'l',
        Collection::ManagementGroup => b'M',
        Collection::Subscription => b'B',
        Collection::ResourceGroup => b'R',
        Collection::RoleDefinition => b'F',
        Collection::RoleAssignment => b'r',
        Collection::RoleEligibility => b'e',
        Collection::StorageAccount => b'A',
        Collection::Container => b'C',
    }
}

pub fn collection_from_tag(tag: u8) -> Option<Collection> {
    COLLECTIONS.into_iter().find(|c| collection_tag(*c) == tag)
}

/// `items` key: collection tag, then the id's UTF-8 bytes. Ids sort as their bytes do, so a
/// prefix of ids is a prefix of keys.
pub fn item_key(key: &ItemKey) -> Vec<u8> {
    item_prefix(key.collection, &key.id)
}

/// The key prefix of every item of `collection` whose id starts with `id_prefix`.
pub fn item_prefix(collection: Collection, id_prefix: &str) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(1 + id_prefix.len());
    bytes.push(collection_tag(collection));
    bytes.extend_from_slice(id_prefix.as_bytes());
    bytes
}

pub fn parse_item_key(bytes: &[u8]) -> anyhow::Result<ItemKey> {
    let (&tag, id) = bytes.split_first().context("empty item key")?;
    let collection = collection_from_tag(tag)
        .with_context(|| format!("item key with unknown collection tag {tag:#04x}"))?;
    let id = std::str::from_utf8(id).context("item key id is not UTF-8")?;
    Ok(ItemKey::new(collection, id))
}

/// `items` value: the generation (u64 big-endian) that last wrote the item, then its JSON.
pub fn encode_item(generation: Generation, value: &Value) -> anyhow::Result<Vec<u8>> {
    let mut bytes = generation.0.to_be_bytes().to_vec();
    serde_json::to_writer(&mut bytes, value).context("encoding an item as JSON")?;
    Ok(bytes)
}

/// The generation of a stored item without parsing its JSON (sweeps read only this).
pub fn item_generation(bytes: &[u8]) -> anyhow::Result<Generation> {
    let header: [u8; 8] = bytes
        .get(..8)
        .and_then(|h| h.try_into().ok())
        .context("item value shorter than its 8-byte generation header")?;
    Ok(Generation(u64::from_be_bytes(header)))
}

pub fn decode_item(bytes: &[u8]) -> anyhow::Result<(Generation, Value)> {
    let generation = item_generation(bytes)?;
    let value = serde_json::from_slice(&bytes[8..]).context("item value is not valid JSON")?;
    Ok((generation, value))
}

/// `refs` key: `<target> 0x00 <collection tag> <item id>`. A target never contains 0x00 (object
/// ids, ARM scopes, role GUIDs), so the prefix `<target> 0x00 <tag>` finds exactly the items of
/// one collection that name `target`.
pub fn ref_key(target: &str, item: &ItemKey) -> Vec<u8> {
    let mut bytes = ref_prefix(target, item.collection);
    bytes.extend_from_slice(item.id.as_bytes());
    bytes
}

pub fn ref_prefix(target: &str, collection: Collection) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(target.len() + 2);
    bytes.extend_from_slice(target.as_bytes());
    bytes.push(0);
    bytes.push(collection_tag(collection));
    bytes
}

/// Splits a `refs` key into its target and the referencing item.
pub fn parse_ref_key(bytes: &[u8]) -> anyhow::Result<(String, ItemKey)> {
    let Some(nul) = bytes.iter().position(|b| *b == 0) else {
        bail!("reference key without its 0x00 separator");
    };
    let target = std::str::from_utf8(&bytes[..nul]).context("reference target is not UTF-8")?;
    let item = parse_item_key(&bytes[nul + 1..])?;
    Ok((target.to_string(), item))
}

/// A target must not contain the separator, or its keys would be ambiguous.
pub fn check_ref_target(target: &str) -> anyhow::Result<()> {
    if target.as_bytes().contains(&0) {
        bail!("reference target {target:?} contains a NUL byte");
    }
    Ok(())
}

/// `log` key: the sequence number, big-endian so that keys sort by sequence.
pub fn log_key(seq: u64) -> [u8; 8] {
    seq.to_be_bytes()
}

pub fn parse_log_key(bytes: &[u8]) -> anyhow::Result<u64> {
    let key: [u8; 8] = bytes
        .try_into()
        .map_err(|_| anyhow::anyhow!("log key is {} bytes, not 8", bytes.len()))?;
    Ok(u64::from_be_bytes(key))
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn collection_tags_are_unique_and_round_trip() {
        let tags: HashSet<u8> = COLLECTIONS.iter().map(|c| collection_tag(*c)).collect();
        assert_eq!(tags.len(), COLLECTIONS.len());
        for collection in COLLECTIONS {
            assert_eq!(
                collection_from_tag(collection_tag(collection)),
                Some(collection)
            );
        }
        assert_eq!(collection_from_tag(0), None);
    }

    #[test]
    fn item_keys_round_trip_and_prefixes_match() {
        let key = ItemKey::new(Collection::GroupMember, "g1/u1");
        let bytes = item_key(&key);
        assert_eq!(parse_item_key(&bytes).unwrap(), key);
        assert!(bytes.starts_with(&item_prefix(Collection::GroupMember, "g1/")));
        assert!(!bytes.starts_with(&item_prefix(Collection::GroupOwner, "g1/")));
    }

    #[test]
    fn item_values_carry_their_generation() {
        let value = serde_json::json!({"displayName": "Alice"});
        let bytes = encode_item(Generation(7), &value).unwrap();
        assert_eq!(item_generation(&bytes).unwrap(), Generation(7));
        assert_eq!(decode_item(&bytes).unwrap(), (Generation(7), value));
        assert!(decode_item(&bytes[..5]).is_err());
        assert!(decode_item(&[0, 0, 0, 0, 0, 0, 0, 1, b'{']).is_err());
    }

    #[test]
    fn ref_keys_round_trip() {
        let item = ItemKey::new(Collection::RoleAssignment, "/subscriptions/s/x");
        let bytes = ref_key("/subscriptions/s", &item);
        assert!(bytes.starts_with(&ref_prefix("/subscriptions/s", Collection::RoleAssignment)));
        assert_eq!(
            parse_ref_key(&bytes).unwrap(),
            ("/subscriptions/s".to_string(), item)
        );
        assert!(check_ref_target("a\0b").is_err());
    }
}
