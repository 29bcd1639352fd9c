//! A read-only table from short text keys (attribute keys, event names) to values, for the
//! decode path's per-attribute lookups.
//!
//! A string `match` with a hundred arms compares a key that matches none of them with every arm;
//! most attribute keys of a payload match none of the tables they are looked up in. Here a key
//! costs one hash of at most 16 of its bytes (the first and last eight, and its length), one
//! probe of an open-addressing table that is at most a quarter full, and one comparison.

/// Keys to values; built once, then only read.
#[derive(Debug, Clone)]
pub struct KeyTable<T> {
    /// `index + 1` into `entries` for each occupied slot, 0 for an empty one.
    slots: Box<[u32]>,
    mask: usize,
    entries: Box<[(Box<str>, T)]>,
}

impl<T> KeyTable<T> {
    /// The table of `entries`. A key given twice keeps its first value.
    pub fn new(entries: impl IntoIterator<Item = (impl Into<Box<str>>, T)>) -> KeyTable<T> {
        let mut kept: Vec<(Box<str>, T)> = Vec::new();
        for (k, v) in entries {
            let k = k.into();
            if !kept.iter().any(|(e, _)| *e == k) {
                kept.push((k, v));
            }
        }
        let size = (kept.len() * 4).next_power_of_two().max(16);
        let mask = size - 1;
        let mut slots = vec![0u32; size].into_boxed_slice();
        for (i, (k, _)) in kept.iter().enumerate() {
            let mut at = hash(k.as_bytes()) as usize & mask;
            while slots[at] != 0 {
                at = (at + 1) & mask;
            }
            slots[at] = u32::try_from(i + 1).expect("fewer than 4 billion keys");
        }
        KeyTable {
            slots,
            mask,
            entries: kept.into_boxed_slice(),
        }
    }

    /// The value of `key`, if the table has it.
    #[inline]
    pub fn get(&self, key: &str) -> Option<&T> {
        let mut at = hash(key.as_bytes()) as usize & self.mask;
        loop {
            let slot = self.slots[at];
            if slot == 0 {
                return None;
            }
            let (k, v) = &self.entries[slot as usize - 1];
            if **k == *key {
                return Some(v);
            }
            at = (at + 1) & self.mask;
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// The first and last eight bytes (overlapping for short keys) and the length, mixed by one
/// multiplication: keys of one table rarely share all three.
#[inline]
fn hash(k: &[u8]) -> u64 {
    let n = k.len();
    let (head, tail) = if n >= 8 {
        (
            u64::from_le_bytes(k[..8].try_into().expect("8 bytes")),
            u64::from_le_bytes(k[n - 8..].try_into().expect("8 bytes")),
        )
    } else if n >= 4 {
        (
            u64::from(u32::from_le_bytes(k[..4].try_into().expect("4 bytes"))),
            u64::from(u32::from_le_bytes(k[n - 4..].try_into().expect("4 bytes"))),
        )
    } else if n > 0 {
        (
            u64::from(k[0]) | u64::from(k[n / 2]) << 8 | u64::from(k[n - 1]) << 16,
            0,
        )
    } else {
        (0, 0)
    };
    let x = (head ^ tail.rotate_left(31) ^ (n as u64) << 57).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^ (x >> 29)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_every_key_and_nothing_else() {
        let keys: Vec<String> = (0..500).map(|i| format!("attribute.key_{i}")).collect();
        let t = KeyTable::new(keys.iter().enumerate().map(|(i, k)| (k.as_str(), i)));
        assert_eq!(t.len(), 500);
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(t.get(k), Some(&i), "{k}");
        }
        for k in [
            "",
            "a",
            "ab",
            "abc",
            "attribute.key_",
            "attribute.key_500",
            "attribute.key_1 ",
        ] {
            assert_eq!(t.get(k), None, "{k:?}");
        }
    }

    #[test]
    fn short_keys_and_the_first_of_duplicates() {
        let t = KeyTable::new([("", 0), ("a", 1), ("ab", 2), ("abc", 3), ("abcd", 4), ("a", 9)]);
        assert_eq!(t.len(), 5);
        for (k, v) in [("", 0), ("a", 1), ("ab", 2), ("abc", 3), ("abcd", 4)] {
            assert_eq!(t.get(k), Some(&v));
        }
        assert_eq!(t.get("b"), None);
        let empty: KeyTable<u8> = KeyTable::new(Vec::<(&str, u8)>::new());
        assert!(empty.is_empty() && empty.get("x").is_none());
    }
}
