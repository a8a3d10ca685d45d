//! Per-shard listeners (`listen.shard_ports`): a session opened on shard i's own port lives on
//! shard i, whatever SO_REUSEPORT would have chosen; the shared port keeps working beside them.

use crate::support::{Client, Server, API_KEY};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_port_places_the_session_on_that_shard() {
    let server = Server::start(2, "[listen]\nshard_ports = true\n");
    let mut clients = Vec::new();
    // Several rounds in an order SO_REUSEPORT's hash would not reproduce by chance.
    for (n, shard) in [1usize, 1, 0, 1, 0, 0, 1].into_iter().enumerate() {
        let before = server.shard_sessions();
        let url = format!(
            "ws://127.0.0.1:{}/v0/channels?apikey={API_KEY}",
            server.shard_port(shard)
        );
        let mut c = Client::connect_url(&url, &format!("p{n}")).await;
        c.hi().await; // the session exists on its shard once {hi} is answered
        let after = server.shard_sessions();
        let mut want = before.clone();
        want[shard] += 1;
        assert_eq!(after, want, "session {n} on shard {shard}'s port");
        clients.push(c);
    }
    // The shared listener still serves.
    let mut c = Client::connect(&server, "shared").await;
    c.hi().await;
    assert_eq!(server.shard_sessions().iter().sum::<u64>(), 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shard_ports_are_off_by_default() {
    let server = Server::start(2, "");
    assert!(server.shard_ports().is_empty());
}
