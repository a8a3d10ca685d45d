//! The cluster's figures as a scrape reads them (a cluster node only): membership from the
//! membership thread, each outbound node link's state from its threads, gathered by
//! `cluster::Node::figures` into plain values, and their `/debug/vars` keys and `/metrics`
//! families.
//!
//! Node names label the link series; `cluster.node` allows only letters, digits, `-`, `_` and
//! `.`, so they need no escaping.

use serde_json::{json, Map, Value};

/// One outbound node link.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LinkFigures {
    pub peer: String,
    pub addr: String,
    pub connected: bool,
    /// Frames waiting in its queue, and the queue's size (`cluster.link_queue`).
    pub queued: u64,
    pub capacity: u64,
    /// The last ping's round-trip time, µs; 0 until one came back.
    pub rtt_us: u64,
    pub sent: u64,
    pub received: u64,
    pub refused: u64,
    pub connects: u64,
}

/// This node's view of the cluster.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClusterFigures {
    pub node: String,
    /// Its epoch; 0 while it is not a member (fenced, or not joined yet).
    pub epoch: i64,
    /// The membership version of the view it acts on.
    pub version: i64,
    /// Node rows (`TotalClusterNodes`) and those up (`LiveClusterNodes`).
    pub total: u64,
    pub live: u64,
    /// Inbound node connections open now.
    pub inbound: u64,
    /// Frames received from a peer on another membership version.
    pub version_mismatches: u64,
    pub links: Vec<LinkFigures>,
}

/// `/debug/vars`: the reference's two keys, then coretalk's.
pub fn expvar(c: Option<&ClusterFigures>, m: &mut Map<String, Value>) {
    let Some(c) = c else {
        m.insert("TotalClusterNodes".into(), json!(0));
        m.insert("LiveClusterNodes".into(), json!(0));
        return;
    };
    m.insert("TotalClusterNodes".into(), json!(c.total));
    m.insert("LiveClusterNodes".into(), json!(c.live));
    m.insert("ClusterNode".into(), json!(c.node));
    m.insert("ClusterEpoch".into(), json!(c.epoch));
    m.insert("ClusterVersion".into(), json!(c.version));
    m.insert("ClusterInboundLinks".into(), json!(c.inbound));
    m.insert(
        "ClusterVersionMismatchTotal".into(),
        json!(c.version_mismatches),
    );
    let links: Map<String, Value> = c
        .links
        .iter()
        .map(|l| {
            let rtt = (l.rtt_us > 0).then(|| l.rtt_us as f64 / 1000.0);
            let v = json!({
                "addr": l.addr,
                "connected": l.connected,
                "queue": l.queued,
                "queue_capacity": l.capacity,
                "rtt_ms": rtt,
                "sent": l.sent,
                "received": l.received,
                "refused": l.refused,
                "connects": l.connects,
            });
            (l.peer.clone(), v)
        })
        .collect();
    m.insert("ClusterLinks".into(), Value::Object(links));
}

/// `/metrics`: one family per figure, each as (name, type, help, samples of (labels, value)).
pub type Family = (
    &'static str,
    &'static str,
    &'static str,
    Vec<(Vec<(&'static str, String)>, f64)>,
);

/// The cluster families (none for a standalone server but the two node counts, at 0).
pub fn families(c: Option<&ClusterFigures>) -> Vec<Family> {
    let one = |v: f64| vec![(Vec::new(), v)];
    let Some(c) = c else {
        return vec![
            (
                "cluster_nodes",
                "gauge",
                "Cluster node rows (TotalClusterNodes).",
                one(0.0),
            ),
            (
                "cluster_nodes_live",
                "gauge",
                "Cluster nodes up (LiveClusterNodes).",
                one(0.0),
            ),
        ];
    };
    let per = |f: &dyn Fn(&LinkFigures) -> f64| {
        c.links
            .iter()
            .map(|l| (vec![("peer", l.peer.clone())], f(l)))
            .collect::<Vec<_>>()
    };
    vec![
        (
            "cluster_nodes",
            "gauge",
            "Cluster node rows (TotalClusterNodes).",
            one(c.total as f64),
        ),
        (
            "cluster_nodes_live",
            "gauge",
            "Cluster nodes up (LiveClusterNodes).",
            one(c.live as f64),
        ),
        (
            "cluster_epoch",
            "gauge",
            "This node's epoch; 0 while it is not a member (fenced).",
            one(c.epoch as f64),
        ),
        (
            "cluster_membership_version",
            "gauge",
            "The membership version this node acts on.",
            one(c.version as f64),
        ),
        (
            "cluster_inbound_links",
            "gauge",
            "Inbound node links open.",
            one(c.inbound as f64),
        ),
        (
            "cluster_version_mismatch_total",
            "counter",
            "Node frames received from a peer on another membership version.",
            one(c.version_mismatches as f64),
        ),
        (
            "cluster_link_up",
            "gauge",
            "1 while the outbound link to the peer is connected.",
            per(&|l| f64::from(u8::from(l.connected))),
        ),
        (
            "cluster_link_queue",
            "gauge",
            "Frames queued on the outbound link to the peer.",
            per(&|l| l.queued as f64),
        ),
        (
            "cluster_link_queue_capacity",
            "gauge",
            "Size of the outbound link's queue (cluster.link_queue).",
            per(&|l| l.capacity as f64),
        ),
        (
            "cluster_link_rtt_seconds",
            "gauge",
            "The last ping round trip to the peer (0: none yet).",
            per(&|l| l.rtt_us as f64 / 1e6),
        ),
        (
            "cluster_link_frames_sent_total",
            "counter",
            "Frames written to the peer.",
            per(&|l| l.sent as f64),
        ),
        (
            "cluster_link_frames_received_total",
            "counter",
            "Frames read from the peer on the outbound link.",
            per(&|l| l.received as f64),
        ),
        (
            "cluster_link_refused_total",
            "counter",
            "Sends refused: link down, queue full, or broken with them queued.",
            per(&|l| l.refused as f64),
        ),
        (
            "cluster_link_connects_total",
            "counter",
            "Connections the outbound link made.",
            per(&|l| l.connects as f64),
        ),
    ]
}
