//! Topic placement: Tinode's consistent-hash ring over the nodes that are `up`, so that every
//! node computes the same master for a topic from the same membership, and a change of members
//! moves only the topics of the node that came or went.
//!
//! The ring is the reference server's, point for point, so a mixed deployment would agree on
//! placement: each node contributes [`POINTS_PER_NODE`] points, point `i` of node `name` at the
//! CRC-32 (IEEE) of the decimal `i` followed by `name`; points are ordered by hash, then by node
//! name; a topic goes to the first point at or after the CRC-32 of its name (ties broken by
//! comparing the topic name with the node name), wrapping around. It knows nothing of links,
//! leases or PostgreSQL.

/// Points each node puts on the ring (the reference's replica count).
pub const POINTS_PER_NODE: usize = 20;

/// A ring over a set of node names.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ring {
    /// `(hash, node index)`, sorted by hash, then by node name.
    points: Vec<(u32, usize)>,
    nodes: Vec<String>,
}

impl Ring {
    /// The ring of `nodes` (duplicates are ignored).
    pub fn new<S: AsRef<str>>(nodes: &[S]) -> Ring {
        let mut names: Vec<String> = nodes.iter().map(|n| n.as_ref().to_owned()).collect();
        names.sort();
        names.dedup();
        let mut points = Vec::with_capacity(names.len() * POINTS_PER_NODE);
        for (idx, name) in names.iter().enumerate() {
            for i in 0..POINTS_PER_NODE {
                let mut h = crc32fast::Hasher::new();
                h.update(i.to_string().as_bytes());
                h.update(name.as_bytes());
                points.push((h.finalize(), idx));
            }
        }
        points.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| names[a.1].cmp(&names[b.1])));
        Ring {
            points,
            nodes: names,
        }
    }

    /// The node that masters `key` (a topic name); `None` on an empty ring.
    pub fn get(&self, key: &str) -> Option<&str> {
        if self.points.is_empty() {
            return None;
        }
        let hash = crc32fast::hash(key.as_bytes());
        let at = self
            .points
            .partition_point(|&(h, idx)| h < hash || (h == hash && self.nodes[idx].as_str() < key));
        let (_, idx) = self.points[at % self.points.len()];
        Some(&self.nodes[idx])
    }

    /// The node names on the ring, sorted.
    pub fn nodes(&self) -> &[String] {
        &self.nodes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn an_empty_ring_places_nothing_and_one_node_takes_everything() {
        assert_eq!(Ring::new::<&str>(&[]).get("grpX"), None);
        let r = Ring::new(&["alpha"]);
        for t in ["grpA", "p2pB", "usrC", ""] {
            assert_eq!(r.get(t), Some("alpha"));
        }
    }

    #[test]
    fn points_are_the_crc32_of_the_index_followed_by_the_name() {
        // Independently computed: CRC-32/IEEE("0alpha") and the point it must own.
        let r = Ring::new(&["alpha", "beta"]);
        assert_eq!(r.points.len(), 2 * POINTS_PER_NODE);
        let p0 = crc32fast::hash(b"0alpha");
        assert!(r
            .points
            .iter()
            .any(|&(h, i)| h == p0 && r.nodes[i] == "alpha"));
        // A key hashing exactly onto that point goes to alpha (ties: key <= node name).
        assert!(
            r.points.windows(2).all(|w| w[0].0 <= w[1].0),
            "sorted by hash"
        );
    }

    #[test]
    fn placement_is_order_independent_and_spread() {
        let a = Ring::new(&["n1", "n2", "n3"]);
        let b = Ring::new(&["n3", "n1", "n2", "n1"]);
        let mut count: HashMap<String, usize> = HashMap::new();
        for i in 0..30_000 {
            let t = format!("grp{i:08x}");
            assert_eq!(a.get(&t), b.get(&t));
            *count.entry(a.get(&t).unwrap().to_owned()).or_default() += 1;
        }
        assert_eq!(count.len(), 3);
        for (n, c) in &count {
            // 20 points per node: uneven, but no node starves or takes nearly everything.
            assert!((3_000..20_000).contains(c), "{n}: {c} of 30000");
        }
    }

    #[test]
    fn a_node_leaving_moves_only_its_own_topics() {
        let before = Ring::new(&["n1", "n2", "n3"]);
        let after = Ring::new(&["n1", "n3"]);
        for i in 0..20_000 {
            let t = format!("grp{i:08x}");
            let was = before.get(&t).unwrap();
            if was != "n2" {
                assert_eq!(
                    after.get(&t),
                    Some(was),
                    "{t} moved from a node that stayed"
                );
            }
        }
    }
}
