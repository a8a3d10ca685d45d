// Cluster mode of the e2e harness: three coretalk nodes (one shard each, short leases, as
// tests/it/cluster_nodes.rs starts them) on one new database of the throw-away PostgreSQL named by
// CORETALK_TEST_PG, listening on loopback; SDK clients are spread over them with connect()'s
// `host` option. The membership only makes sense with the PostgreSQL store, so a cluster test runs
// in the PostgreSQL pass (CORETALK_TEST_STORE=postgres, tests/run-all.sh) and is skipped, with the
// reason logged, otherwise.

import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { before, after } from 'node:test';

import { spawnServer, stopProcess, diagnose, undiagnose, disconnectAll, waitFor } from './harness.js';

/** The lease and heartbeat of the test nodes (ms): short, so the nodes settle fast. */
const LEASE_MS = 1500;
const HEARTBEAT_MS = 300;
const SETTLE_MS = 30000;

/** Why cluster tests cannot run here, or null when they can. */
export function clusterSkipReason() {
  if (!process.env.CORETALK_TEST_PG) {
    return 'CORETALK_TEST_PG is not set (start a throw-away PostgreSQL with tests/pg.sh start DIR)';
  }
  if (process.env.CORETALK_TEST_STORE !== 'postgres') {
    return 'cluster nodes need the PostgreSQL store: they run in the CORETALK_TEST_STORE=postgres pass';
  }
  return null;
}

let dbCounter = 0;

/** A new database on the throw-away PostgreSQL; its URL. */
function newDatabase() {
  const base = process.env.CORETALK_TEST_PG;
  const name = `e2e_cluster_${process.pid}_${dbCounter++}`;
  const psql = path.join(process.env.PGBIN || '/usr/lib/postgresql/15/bin', 'psql');
  execFileSync(psql, [`${base}/postgres`, '-v', 'ON_ERROR_STOP=1', '-q', '-c', `CREATE DATABASE ${name}`]);
  return `${base}/${name}`;
}

/** A node's /debug/vars. */
async function vars(node) {
  const r = await fetch(`http://${node.host}/debug/vars`);
  if (r.status !== 200) throw new Error(`/debug/vars of ${node.name} answered ${r.status}`);
  return r.json();
}

/** Every node sees `nodes.length` nodes up and a connected link to each other one. */
async function waitSettled(nodes) {
  for (const n of nodes) {
    await waitFor(
      async () => {
        const v = await vars(n);
        const links = Object.values(v.ClusterLinks || {});
        return v.LiveClusterNodes === nodes.length &&
          links.length === nodes.length - 1 && links.every((l) => l.connected === true);
      },
      `node ${n.name} settled with ${nodes.length} nodes up`,
      SETTLE_MS,
    );
  }
}

/**
 * Starts `count` nodes n1..nN and waits until they settled; resolves with their states, each
 * with `name` and `host`.
 */
export async function startCluster({ count = 3, config = {} } = {}) {
  const url = newDatabase();
  const cluster = {
    lease_ms: LEASE_MS,
    heartbeat_ms: HEARTBEAT_MS,
    link_ping_ms: 200,
    link_timeout_ms: 1000,
    link_backoff_max_ms: 500,
    ...(config.cluster || {}),
  };
  const nodes = [];
  try {
    for (let i = 1; i <= count; i++) {
      const name = `n${i}`;
      const node = await spawnServer({
        config: { ...config, cluster },
        shards: 1,
        store: ['--store', url],
        extraArgs: ['--node', name, '--node-listen', '127.0.0.1:0'],
      });
      node.name = name;
      diagnose(node);
      nodes.push(node);
    }
    await waitSettled(nodes);
  } catch (err) {
    await stopCluster(nodes);
    throw err;
  }
  return nodes;
}

/** Stops every node. */
export async function stopCluster(nodes) {
  await Promise.all(nodes.map((n) => stopProcess(n)));
  for (const n of nodes) undiagnose(n);
}

/**
 * Registers before/after hooks that start a cluster for this test file; returns an array that
 * holds its nodes once `before` ran (empty when the run skips cluster tests).
 */
export function useCluster(options = {}) {
  const nodes = [];
  before(async () => {
    if (clusterSkipReason()) return;
    nodes.push(...(await startCluster(options)));
  });
  after(async () => {
    await disconnectAll();
    await stopCluster(nodes);
  });
  return nodes;
}
