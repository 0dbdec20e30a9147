// Prometheus metrics of our quorum servers (zoo.cfg's metricsProvider.*):
// scraped and parsed strictly, under Apache ZooKeeper 3.8's names and types
// (the reference lists below were read from Debian's zookeeper-3.8.0.jar:
// ServerMetrics, ZooKeeperServer, LeaderZooKeeperServer, QuorumZooKeeperServer),
// with values that follow what clients do; the gauges and counters are also
// checked against a live Apache ZooKeeper's mntr keys, which share the names.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CreateMode, fourLetterWord, ZkClient } from '../../src/client/index.js';
import { parseMntr } from '../../src/client/four-letter-word.js';
import { apacheZkAvailable, startApacheZk } from '../helpers/apache-zk.js';
import { scrape, type Scrape } from '../helpers/prometheus.js';
import { freePort, missingTool } from '../helpers/ports.js';
import { startEnsemble } from '../helpers/quorate-ensemble.js';
import { startQuorateServer, type QuorateServer } from '../helpers/quorate-server.js';
import { RawConn } from '../helpers/raw-zk.js';

const PROMETHEUS = 'org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider';

/** ZooKeeper 3.8's gauges (ZooKeeperServer, QuorumZooKeeperServer, LeaderZooKeeperServer). */
const ZK_GAUGES = new Set(`
  approximate_data_size auth_failed_count avg_latency connection_drop_probability ephemerals_count global_sessions
  last_client_response_size local_sessions max_client_response_size max_file_descriptor_count max_latency
  min_client_response_size min_latency non_mtls_local_conn_count non_mtls_remote_conn_count num_alive_connections
  open_file_descriptor_count outstanding_requests outstanding_tls_handshake packets_received packets_sent uptime
  watch_count znode_count quorum_size learners last_proposal_size leader_uptime max_proposal_size min_proposal_size
  pending_syncs synced_followers synced_non_voting_followers synced_observers`.split(/\s+/).filter(Boolean));
/** ServerMetrics' counters. */
const ZK_COUNTERS = new Set(`
  looking_count diff_count snap_count commit_count connection_request_count connection_rejected bytes_received_count
  unrecoverable_error_count add_dead_watcher_stall_time dead_watchers_queued dead_watchers_cleared response_packet_cache_hits
  response_packet_cache_misses response_packet_get_children_cache_hits response_packet_get_children_cache_misses
  ensemble_auth_success ensemble_auth_fail ensemble_auth_skip prep_processor_request_queued outstanding_changes_queued
  outstanding_changes_removed revalidate_count connection_drop_count connection_revalidate_count sessionless_connections_expired
  stale_sessions_expired request_commit_queued throttled_ops learner_proposal_received_count learner_commit_received_count
  sync_processor_request_queued proposal_count quit_leading_due_to_disloyal_voter stale_requests stale_requests_dropped
  stale_replies request_throttle_wait_count large_requests_rejected digest_mismatches_count unsuccessful_handshake
  insecure_admin_count tls_handshake_exceeded cnxn_closed_without_zk_server_running skip_learner_request_to_next_processor_count
  requests_not_forwarded_to_commit_processor response_bytes watch_bytes`.split(/\s+/).filter(Boolean));
/** ServerMetrics' summaries and their detail level: BASIC ones export the median, ADVANCED ones 0.5, 0.9 and 0.99. */
const ZK_SUMMARIES: Record<string, 'basic' | 'advanced'> = {
  fsynctime: 'basic', snapshottime: 'basic', dbinittime: 'basic', readlatency: 'advanced', updatelatency: 'advanced',
  propagation_latency: 'advanced', follower_sync_time: 'basic', observer_sync_time: 'basic', election_time: 'basic',
  connection_token_deficit: 'basic', inflight_snap_count: 'basic', inflight_diff_count: 'basic', node_created_watch_count: 'basic',
  node_deleted_watch_count: 'basic', node_changed_watch_count: 'basic', node_children_watch_count: 'basic',
  dead_watchers_cleaner_latency: 'advanced', prep_processor_queue_time_ms: 'advanced', prep_processor_queue_size: 'basic',
  prep_process_time: 'basic', proposal_process_time: 'basic', close_session_prep_time: 'advanced', unavailable_time: 'basic',
  leader_unavailable_time: 'basic', requests_in_session_queue: 'basic', pending_session_queue_size: 'basic',
  reads_after_write_in_session_queue: 'basic', reads_issued_from_session_queue: 'basic', session_queues_drained: 'basic',
  time_waiting_empty_pool_in_commit_processor_read_ms: 'basic', write_batch_time_in_commit_processor: 'basic',
  concurrent_request_processing_in_commit_processor: 'basic', read_commit_proc_req_queued: 'basic', write_commit_proc_req_queued: 'basic',
  commit_commit_proc_req_queued: 'basic', read_commit_proc_issued: 'basic', write_commit_proc_issued: 'basic',
  read_commitproc_time_ms: 'advanced', write_commitproc_time_ms: 'advanced', local_write_committed_time_ms: 'advanced',
  server_write_committed_time_ms: 'advanced', commit_process_time: 'basic', om_proposal_process_time_ms: 'advanced',
  om_commit_process_time_ms: 'advanced', read_final_proc_time_ms: 'advanced', write_final_proc_time_ms: 'advanced',
  proposal_latency: 'advanced', proposal_ack_creation_latency: 'advanced', commit_propagation_latency: 'advanced',
  startup_txns_loaded: 'basic', startup_txns_load_time: 'basic', startup_snap_load_time: 'basic',
  sync_processor_queue_and_flush_time_ms: 'advanced', sync_processor_queue_size: 'basic', sync_processor_queue_time_ms: 'advanced',
  sync_processor_queue_flush_time_ms: 'advanced', sync_process_time: 'basic', sync_processor_batch_size: 'basic',
  quorum_ack_latency: 'advanced', request_throttle_queue_time_ms: 'advanced', netty_queued_buffer_capacity: 'basic',
  learner_request_processor_queue_size: 'basic', socket_closing_time: 'basic', jvm_pause_time_ms: 'advanced',
};
const OURS = /^(quorate_|process_|nodejs_)/;

/** Every family is ZooKeeper's (same name, same type, same quantiles) or plainly ours. */
function expectZooKeeperNames(s: Scrape): void {
  for (const [name, type] of s.types) {
    if (OURS.test(name)) continue;
    const zkType = ZK_GAUGES.has(name) ? 'gauge' : ZK_COUNTERS.has(name) ? 'counter' : ZK_SUMMARIES[name] !== undefined ? 'summary' : undefined;
    expect(zkType, `${name} is not one of ZooKeeper 3.8's metrics: ours must be named quorate_*`).toBeDefined();
    expect(type, name).toBe(zkType);
    expect(s.helps.get(name), `HELP of ${name}`).toBeTruthy();
    if (type !== 'summary') continue;
    const quantiles = s.samples.filter((x) => x.name === name).map((x) => x.labels.quantile).sort();
    if (quantiles.length > 0) expect(quantiles, name).toEqual(ZK_SUMMARIES[name] === 'advanced' ? ['0.5', '0.9', '0.99'] : ['0.5']);
    expect(s.value(`${name}_count`), `${name}_count`).toBeGreaterThanOrEqual(0);
    expect(s.value(`${name}_sum`), `${name}_sum`).toBeGreaterThanOrEqual(0);
  }
}

const must = (v: number | undefined, what: string): number => {
  expect(v, what).toBeDefined();
  return v!;
};

describe('a standalone server\'s metrics (metricsProvider.className=...PrometheusMetricsProvider)', () => {
  let server: QuorateServer;
  let url: string;
  let zk: ZkClient;

  beforeAll(async () => {
    const metricsPort = await freePort();
    server = await startQuorateServer({
      cfg: {
        tickTime: '200', 'metricsProvider.className': PROMETHEUS,
        'metricsProvider.httpPort': String(metricsPort), 'metricsProvider.httpHost': '127.0.0.1',
      },
    });
    url = `http://127.0.0.1:${metricsPort}/metrics`;
    zk = new ZkClient({ connectString: server.connectString, sessionTimeoutMs: 10_000 });
    await zk.connect({ timeoutMs: 10_000 });
  }, 60_000);
  afterAll(async () => {
    await zk?.close();
    await server?.stop();
  });

  it('serves Prometheus text under ZooKeeper 3.8\'s names and types, and ours as quorate_*', async () => {
    const s = await scrape(url);
    expect(s.contentType).toMatch(/^text\/plain; version=0\.0\.4/);
    expectZooKeeperNames(s);
    for (const name of ['znode_count', 'watch_count', 'ephemerals_count', 'num_alive_connections', 'outstanding_requests', 'approximate_data_size',
      'global_sessions', 'avg_latency', 'packets_received', 'uptime', 'open_file_descriptor_count', 'max_file_descriptor_count',
      'connection_rejected', 'stale_sessions_expired', 'quorate_last_zxid', 'quorate_txn_log_bytes', 'quorate_snapshot_bytes',
      'quorate_connections_closed_bad_frame_total', 'process_resident_memory_bytes', 'process_cpu_seconds_total']) {
      must(s.value(name), name);
    }
    for (const name of ['readlatency', 'updatelatency', 'fsynctime', 'election_time', 'snapshottime', 'dbinittime']) expect(s.types.get(name), name).toBe('summary');
    expect(s.value('dbinittime_count')).toBe(1);
    expect(s.value('quorate_role', { role: 'standalone' })).toBe(1);
    expect(s.value('quorate_role', { role: 'leader' })).toBe(0);
    // A standalone server has no quorum: no quorum or leader families at all.
    for (const name of ['quorum_size', 'learners', 'synced_followers', 'quorate_epoch']) expect(s.types.has(name), name).toBe(false);
    expect(must(s.value('max_file_descriptor_count'), 'max fds')).toBeGreaterThan(must(s.value('open_file_descriptor_count'), 'fds'));
  });

  it('follows what clients do: znodes, data, ephemerals, watches, sessions, latencies, the log', async () => {
    const before = await scrape(url);
    const n = 25;
    const data = Buffer.alloc(100, 7);
    for (let i = 0; i < n; i++) await zk.create(`/m-${i}`, data);
    await zk.create('/m-eph', Buffer.from('e'), { mode: CreateMode.EPHEMERAL });
    await zk.getData('/m-0', () => undefined);
    await zk.exists('/m-1', () => undefined);
    for (let i = 0; i < 10; i++) await zk.getData(`/m-${i}`);
    const after = await scrape(url);
    const delta = (name: string) => must(after.value(name), name) - must(before.value(name), name);
    expect(delta('znode_count')).toBe(n + 1);
    expect(delta('approximate_data_size')).toBe(n * 100 + 1);
    expect(after.value('ephemerals_count')).toBe(1);
    expect(must(after.value('watch_count'), 'watch_count')).toBeGreaterThanOrEqual(2);
    expect(must(after.value('num_alive_connections'), 'connections')).toBeGreaterThanOrEqual(1);
    expect(must(after.value('global_sessions'), 'sessions')).toBeGreaterThanOrEqual(1);
    expect(delta('updatelatency_count')).toBeGreaterThanOrEqual(n + 1);
    expect(delta('readlatency_count')).toBeGreaterThanOrEqual(12);
    expect(delta('fsynctime_count')).toBeGreaterThanOrEqual(1);
    expect(delta('packets_received')).toBeGreaterThanOrEqual(n + 12);
    // The quantiles are of observed latencies: positive, ordered, no larger than the longest request.
    const q = (p: string) => must(after.value('updatelatency', { quantile: p }), `updatelatency ${p}`);
    expect(q('0.5')).toBeGreaterThan(0);
    expect(q('0.5')).toBeLessThanOrEqual(q('0.9'));
    expect(q('0.9')).toBeLessThanOrEqual(q('0.99'));
    expect(q('0.99')).toBeLessThanOrEqual(must(after.value('max_latency'), 'max_latency') + 1);
    // Our zxid is the one mntr prints.
    const mntr = parseMntr(await fourLetterWord('127.0.0.1', server.port, 'mntr'));
    expect(after.value('quorate_last_zxid')).toBe(Number(BigInt(mntr.get('quorate_last_zxid')!)));
    expect(after.value('quorate_txn_log_bytes')).toBeGreaterThan(0);
  });

  it('counts a connection closed for a frame it cannot read, and a session expired', async () => {
    const before = await scrape(url);
    const bad = await RawConn.open(server.port);
    const len = Buffer.alloc(4);
    len.writeInt32BE(64 * 1024 * 1024);
    await bad.write(len);
    expect(await bad.waitClosed(5000)).toBe(true);
    // A session whose client vanishes without closing it: expired after its timeout (400 ms, 2 ticks).
    const gone = await RawConn.open(server.port);
    await gone.handshake({ timeOut: 400 });
    gone.socket.destroy();
    const deadline = Date.now() + 10_000;
    let after = await scrape(url);
    while (after.value('stale_sessions_expired') === before.value('stale_sessions_expired') && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      after = await scrape(url);
    }
    expect(must(after.value('quorate_connections_closed_bad_frame_total'), 'bad frames') - must(before.value('quorate_connections_closed_bad_frame_total'), 'bad frames')).toBe(1);
    expect(must(after.value('stale_sessions_expired'), 'expired') - must(before.value('stale_sessions_expired'), 'expired')).toBeGreaterThanOrEqual(1);
  });

  it('the port only reads: GET /metrics, nothing else', async () => {
    const post = await fetch(url, { method: 'POST', body: 'x' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
    expect((await fetch(url.replace('/metrics', '/'))).status).toBe(404);
    expect((await fetch(url, { method: 'HEAD' })).status).toBe(200);
  });

  it.skipIf(missingTool(apacheZkAvailable()))('has the facts of Apache ZooKeeper 3.8\'s mntr under the same names', async () => {
    const zkServer = await startApacheZk();
    try {
      // ZooKeeper opens its client port a moment before it serves (mntr says "not currently serving" meanwhile).
      let mntr = new Map<string, string>();
      for (const deadline = Date.now() + 30_000; !mntr.has('zk_server_state') && Date.now() < deadline;) {
        mntr = parseMntr(await fourLetterWord('127.0.0.1', zkServer.port, 'mntr', 10_000));
        if (!mntr.has('zk_server_state')) await new Promise((r) => setTimeout(r, 200));
      }
      expect(mntr.get('zk_server_state')).toBe('standalone');
      const s = await scrape(url);
      for (const [name, type] of s.types) {
        if (OURS.test(name)) continue;
        // mntr prints a summary as its avg/min/max/cnt/sum (and p50... when ADVANCED), everything else under its own name.
        const key = type === 'summary' ? `zk_cnt_${name}` : `zk_${name}`;
        expect(mntr.has(key), `${name}: Apache ZooKeeper's mntr has ${key}`).toBe(true);
      }
    } finally {
      await zkServer.stop();
    }
  }, 60_000);
});

describe('an ensemble\'s metrics', () => {
  it('three servers: the leader shows quorum_size 3 and 2 synced followers, every server its role, epoch and elections; writes counted', async () => {
    const metricsPorts = await Promise.all([0, 1, 2].map(() => freePort()));
    const e = await startEnsemble(3, {
      cfg: { 'metricsProvider.className': PROMETHEUS, 'metricsProvider.httpHost': '127.0.0.1' },
      cfgFor: (i) => ({ 'metricsProvider.httpPort': String(metricsPorts[i]) }),
    });
    try {
      const leader = await e.settled();
      const urls = metricsPorts.map((p) => `http://127.0.0.1:${p}/metrics`);
      // Learners are synced a moment after they serve: wait for the leader to count both.
      const deadline = Date.now() + 20_000;
      let lead = await scrape(urls[leader]);
      while (lead.value('synced_followers') !== 2 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100));
        lead = await scrape(urls[leader]);
      }
      const follower = (leader + 1) % 3;
      const zk = new ZkClient({ connectString: e.servers[follower].connectString, sessionTimeoutMs: 10_000 });
      await zk.connect({ timeoutMs: 10_000 });
      const before = await scrape(urls[leader]);
      for (let i = 0; i < 20; i++) await zk.create(`/q-${i}`, Buffer.from('x'));
      await zk.sync('/');
      await zk.close();
      const all = await Promise.all(urls.map((u) => scrape(u)));
      for (const s of all) expectZooKeeperNames(s);
      lead = all[leader];
      expect(lead.value('quorum_size')).toBe(3);
      expect(lead.value('synced_followers')).toBe(2);
      expect(lead.value('learners')).toBe(2);
      expect(lead.value('synced_observers')).toBe(0);
      expect(lead.value('pending_syncs')).toBe(0);
      expect(must(lead.value('leader_uptime'), 'leader_uptime')).toBeGreaterThan(0);
      expect(lead.value('quorate_role', { role: 'leader' })).toBe(1);
      expect(must(lead.value('commit_count'), 'commits') - must(before.value('commit_count'), 'commits')).toBeGreaterThanOrEqual(20);
      expect(must(lead.value('proposal_count'), 'proposals') - must(before.value('proposal_count'), 'proposals')).toBeGreaterThanOrEqual(20);
      expect(must(lead.value('max_proposal_size'), 'proposal size')).toBeGreaterThan(0);
      all.forEach((s, i) => {
        expect(s.value('quorum_size'), `server ${i + 1}`).toBe(3);
        expect(s.value('quorate_server_id'), `server ${i + 1}`).toBe(i + 1);
        expect(s.value('quorate_role', { role: i === leader ? 'leader' : 'follower' }), `server ${i + 1}`).toBe(1);
        expect(s.value('quorate_leader_id'), `server ${i + 1}`).toBe(leader + 1);
        expect(s.value('quorate_epoch'), `server ${i + 1}`).toBe(lead.value('quorate_epoch'));
        expect(must(s.value('election_time_count'), 'elections')).toBeGreaterThanOrEqual(1);
        expect(must(s.value('looking_count'), 'looking')).toBeGreaterThanOrEqual(1);
        // Leader-only families have no sample on a follower.
        if (i !== leader) expect(s.value('synced_followers'), `server ${i + 1}`).toBeUndefined();
      });
      // Each write went through every server's log.
      for (const s of all) expect(must(s.value('fsynctime_count'), 'fsyncs')).toBeGreaterThanOrEqual(1);
    } finally {
      await e.stopAll();
    }
  }, 120_000);
});
