//! A map for the per-session and per-topic tables that almost always hold one or two entries:
//! a session's topics; a topic's attached sessions, members and pending work.
//!
//! A hash table's smallest allocation is four buckets plus sixteen control bytes (116 B for
//! 24-byte entries, mimalloc's 128-byte class), and every idle session held two of them (W1).
//! `FewMap` keeps up to [`FEW`] entries in a vector sized to its length (one entry: one
//! 24-byte allocation; none: no allocation) and looks them up by a linear scan, which at that
//! length is cheaper than hashing. Past [`FEW`] it moves into a boxed hash table, so a large
//! group's fan-out and detach keep their hash-table costs; an emptied table is freed.
//!
//! Iteration order is unspecified, as for a hash table. This module is a leaf.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;

/// The most entries kept in the vector form.
pub const FEW: usize = 8;

type Table<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// A map with the subset of `HashMap`'s interface the tables use (see the module charter).
#[derive(Debug)]
pub enum FewMap<K, V> {
    /// At most [`FEW`] entries, unordered, capacity kept near the length.
    Few(Vec<(K, V)>),
    /// More than [`FEW`] entries (or once more, until emptied).
    Many(Box<Table<K, V>>),
}

impl<K, V> Default for FewMap<K, V> {
    fn default() -> Self {
        FewMap::Few(Vec::new())
    }
}

impl<K: Eq + Hash, V> FewMap<K, V> {
    /// Number of entries.
    pub fn len(&self) -> usize {
        match self {
            FewMap::Few(v) => v.len(),
            FewMap::Many(m) => m.len(),
        }
    }

    /// True when it holds no entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The value under `k`.
    pub fn get<Q>(&self, k: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        match self {
            FewMap::Few(v) => v.iter().find(|(x, _)| x.borrow() == k).map(|(_, v)| v),
            FewMap::Many(m) => m.get(k),
        }
    }

    /// The value under `k`, mutable.
    pub fn get_mut<Q>(&mut self, k: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        match self {
            FewMap::Few(v) => v.iter_mut().find(|(x, _)| x.borrow() == k).map(|(_, v)| v),
            FewMap::Many(m) => m.get_mut(k),
        }
    }

    /// True when `k` has an entry.
    pub fn contains_key<Q>(&self, k: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        self.get(k).is_some()
    }

    /// Sets `k` to `val`; returns the value it replaced.
    pub fn insert(&mut self, k: K, val: V) -> Option<V> {
        match self {
            FewMap::Few(v) => {
                if let Some((_, old)) = v.iter_mut().find(|(x, _)| *x == k) {
                    return Some(std::mem::replace(old, val));
                }
                if v.len() < FEW {
                    if v.len() == v.capacity() {
                        // 1, 2, 4, 8: a table of one or two entries holds no spare slot.
                        v.reserve_exact(v.len().max(1));
                    }
                    v.push((k, val));
                    return None;
                }
                let mut m = Table::with_capacity_and_hasher(2 * FEW, Default::default());
                m.extend(std::mem::take(v));
                m.insert(k, val);
                *self = FewMap::Many(Box::new(m));
                None
            }
            FewMap::Many(m) => m.insert(k, val),
        }
    }

    /// Removes `k`'s entry; returns its value. The last removal frees the storage.
    pub fn remove<Q>(&mut self, k: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        let out = match self {
            FewMap::Few(v) => {
                let i = v.iter().position(|(x, _)| x.borrow() == k)?;
                Some(v.swap_remove(i).1)
            }
            FewMap::Many(m) => m.remove(k),
        };
        if self.is_empty() {
            *self = FewMap::default();
        }
        out
    }

    /// Every entry, in no particular order.
    pub fn iter(&self) -> Iter<'_, K, V> {
        match self {
            FewMap::Few(v) => Iter::Few(v.iter()),
            FewMap::Many(m) => Iter::Many(m.iter()),
        }
    }

    /// Every entry, values mutable.
    pub fn iter_mut(&mut self) -> IterMut<'_, K, V> {
        match self {
            FewMap::Few(v) => IterMut::Few(v.iter_mut()),
            FewMap::Many(m) => IterMut::Many(m.iter_mut()),
        }
    }

    /// Every value, mutable.
    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut V> + '_ {
        self.iter_mut().map(|(_, v)| v)
    }

    /// Keeps the entries for which `keep` says so; frees the storage if none is left.
    pub fn retain(&mut self, mut keep: impl FnMut(&K, &mut V) -> bool) {
        match self {
            FewMap::Few(v) => v.retain_mut(|(k, val)| keep(k, val)),
            FewMap::Many(m) => m.retain(|k, val| keep(k, val)),
        }
        if self.is_empty() {
            *self = FewMap::default();
        }
    }

    /// Removes every entry, freeing the storage.
    pub fn clear(&mut self) {
        *self = FewMap::default();
    }

    /// Every key.
    pub fn keys(&self) -> impl Iterator<Item = &K> + '_ {
        self.iter().map(|(k, _)| k)
    }

    /// Every value.
    pub fn values(&self) -> impl Iterator<Item = &V> + '_ {
        self.iter().map(|(_, v)| v)
    }

    /// Empties the map (freeing its storage) and yields what it held.
    pub fn drain(&mut self) -> IntoIter<K, V> {
        std::mem::take(self).into_iter()
    }
}

/// `map[&k]`: the value under `k`; panics when there is none, as `HashMap`'s does.
impl<K: Eq + Hash + Borrow<Q>, Q: Eq + Hash + ?Sized, V> std::ops::Index<&Q> for FewMap<K, V> {
    type Output = V;

    fn index(&self, k: &Q) -> &V {
        self.get(k).expect("no entry for the key")
    }
}

/// Borrowing iterator of a [`FewMap`].
pub enum Iter<'a, K, V> {
    Few(std::slice::Iter<'a, (K, V)>),
    Many(std::collections::hash_map::Iter<'a, K, V>),
}

impl<'a, K, V> Iterator for Iter<'a, K, V> {
    type Item = (&'a K, &'a V);

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Iter::Few(i) => i.next().map(|(k, v)| (k, v)),
            Iter::Many(i) => i.next(),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match self {
            Iter::Few(i) => i.size_hint(),
            Iter::Many(i) => i.size_hint(),
        }
    }
}

/// Mutably borrowing iterator of a [`FewMap`].
pub enum IterMut<'a, K, V> {
    Few(std::slice::IterMut<'a, (K, V)>),
    Many(std::collections::hash_map::IterMut<'a, K, V>),
}

impl<'a, K, V> Iterator for IterMut<'a, K, V> {
    type Item = (&'a K, &'a mut V);

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            IterMut::Few(i) => i.next().map(|(k, v)| (&*k, v)),
            IterMut::Many(i) => i.next(),
        }
    }
}

/// Owning iterator of a [`FewMap`].
pub enum IntoIter<K, V> {
    Few(std::vec::IntoIter<(K, V)>),
    Many(std::collections::hash_map::IntoIter<K, V>),
}

impl<K, V> Iterator for IntoIter<K, V> {
    type Item = (K, V);

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            IntoIter::Few(i) => i.next(),
            IntoIter::Many(i) => i.next(),
        }
    }
}

impl<K, V> IntoIterator for FewMap<K, V> {
    type Item = (K, V);
    type IntoIter = IntoIter<K, V>;

    fn into_iter(self) -> IntoIter<K, V> {
        match self {
            FewMap::Few(v) => IntoIter::Few(v.into_iter()),
            FewMap::Many(m) => IntoIter::Many(m.into_iter()),
        }
    }
}

impl<'a, K: Eq + Hash, V> IntoIterator for &'a FewMap<K, V> {
    type Item = (&'a K, &'a V);
    type IntoIter = Iter<'a, K, V>;

    fn into_iter(self) -> Iter<'a, K, V> {
        self.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted(m: &FewMap<u64, u64>) -> Vec<(u64, u64)> {
        let mut v: Vec<_> = m.iter().map(|(k, v)| (*k, *v)).collect();
        v.sort_unstable();
        v
    }

    #[test]
    fn small_tables_hold_no_spare_slot() {
        let mut m = FewMap::default();
        assert!(matches!(&m, FewMap::Few(v) if v.capacity() == 0));
        m.insert(1u64, 10u64);
        assert!(matches!(&m, FewMap::Few(v) if v.capacity() == 1));
        m.insert(2, 20);
        assert!(matches!(&m, FewMap::Few(v) if v.capacity() == 2));
        assert_eq!(m.insert(2, 21), Some(20), "a replaced value is returned");
        assert_eq!(m.len(), 2);
    }

    #[test]
    fn it_behaves_as_a_map_across_the_switch_and_back() {
        let mut m = FewMap::default();
        let mut model = std::collections::BTreeMap::new();
        // Inserts, replacements and removals in an order that crosses FEW both ways.
        for round in 0..3u64 {
            for k in 0..(2 * FEW as u64 + 3) {
                assert_eq!(m.insert(k, k + round), model.insert(k, k + round));
                assert_eq!(m.len(), model.len());
            }
            assert!(matches!(m, FewMap::Many(_)));
            for k in (0..(2 * FEW as u64 + 3)).step_by(2) {
                assert_eq!(m.remove(&k), model.remove(&k));
            }
            assert_eq!(m.remove(&1000), None);
            assert_eq!(
                sorted(&m),
                model.iter().map(|(k, v)| (*k, *v)).collect::<Vec<_>>()
            );
            for k in 0..(2 * FEW as u64 + 3) {
                assert_eq!(m.get(&k), model.get(&k));
                assert_eq!(m.contains_key(&k), model.contains_key(&k));
            }
            if let Some(v) = m.get_mut(&1) {
                *v += 100;
            }
            *model.get_mut(&1).unwrap() += 100;
            m.values_mut().for_each(|v| *v += 1);
            model.values_mut().for_each(|v| *v += 1);
            m.retain(|k, _| k % 3 != 0);
            model.retain(|k, _| k % 3 != 0);
            assert_eq!(
                sorted(&m),
                model.iter().map(|(k, v)| (*k, *v)).collect::<Vec<_>>()
            );
            let drained: std::collections::BTreeMap<_, _> = m.drain().collect();
            assert_eq!(drained, std::mem::take(&mut model));
            assert!(m.is_empty());
            assert!(
                matches!(&m, FewMap::Few(v) if v.capacity() == 0),
                "drained: freed"
            );
        }
    }

    #[test]
    fn the_last_removal_frees_the_storage() {
        let mut m = FewMap::default();
        for k in 0..(FEW as u64 + 1) {
            m.insert(k, k);
        }
        assert!(matches!(m, FewMap::Many(_)));
        for k in 0..(FEW as u64 + 1) {
            m.remove(&k);
        }
        assert!(matches!(&m, FewMap::Few(v) if v.capacity() == 0));
        m.insert(7, 7);
        m.remove(&7);
        assert!(matches!(&m, FewMap::Few(v) if v.capacity() == 0));
        m.insert(7, 7);
        m.clear();
        assert!(m.is_empty() && matches!(&m, FewMap::Few(v) if v.capacity() == 0));
    }

    #[test]
    fn borrowed_keys_look_up_boxed_strings() {
        let mut m: FewMap<Box<str>, u8> = FewMap::default();
        m.insert("grpA".into(), 1);
        m.insert("usrB".into(), 2);
        assert_eq!(m.get("grpA"), Some(&1));
        assert!(m.contains_key("usrB"));
        assert_eq!(m.remove("grpA"), Some(1));
        assert_eq!(m.keys().map(|k| &**k).collect::<Vec<_>>(), ["usrB"]);
        assert_eq!(std::mem::size_of::<FewMap<Box<str>, u8>>(), 24);
    }
}
