// Every bound the quorum server keeps, in one place (TigerBeetle style).
// Units are last in names. Relations between bounds are asserted below so a
// change that breaks one fails at start, not in production.

export const ZK_LIMITS = {
  /** jute.maxbuffer: the largest frame a client may send or receive. */
  packet_bytes_max: 1024 * 1024 - 1,
  /** Extra headroom over packet_bytes_max allowed on the wire for headers, as ZooKeeper's jute.maxbuffer.extrasize does. */
  packet_header_bytes_extra: 1024,
  /** Longest znode path accepted, in bytes. */
  path_bytes_max: 4096,
  /** Concurrent connections from one IP address (maxClientCnxns); 0 means unlimited. */
  connections_per_ip_max: 60,
  /** All client connections on one server. */
  connections_max: 10_000,
  /** Requests decoded but not yet answered, per connection: past it the server stops reading that socket. */
  requests_in_flight_per_connection_max: 1000,
  /** Requests in flight on the whole server (globalOutstandingLimit). */
  requests_in_flight_max: 10_000,
  /** Bytes queued for a client that has not read them: past it the connection is closed. */
  unsent_reply_bytes_max: 32 * 1024 * 1024,
  /** A connection that sends nothing (not even a connect) for this long is closed. */
  connect_handshake_ms_max: 10_000,
  /** Transactions written together under one fsync. */
  group_commit_txns_max: 2000,
  /** Bytes written together under one fsync. */
  group_commit_bytes_max: 8 * 1024 * 1024,
  /** A durable log write of at most this many transactions and bytes may be written on the event loop (see TxnLog.writeRecords). */
  inline_write_txns_max: 16,
  inline_write_bytes_max: 16 * 1024,
  /** A durable write slower than this sends the next inline_write_holdoff_writes writes to the thread pool. */
  inline_write_slow_ms: 20,
  inline_write_holdoff_writes: 200,
  /** An event-loop hold-up longer than this is logged (sessions are given the time back whatever its length). */
  stall_warning_ms: 500,
  /** Election: wait this long for a better vote once a quorum agrees (ZooKeeper: 200 ms, a cost on every failover). */
  election_finalize_wait_ms: 50,
  /** Election: resend notifications after this long without a decision, doubling up to the max. */
  election_resend_min_ms: 50,
  election_resend_max_ms: 2000,
  /** Committed transactions a server keeps in memory to sync a learner by DIFF; further behind gets a snapshot. */
  diff_window_txns: 10_000,
  /** Largest frame between quorum servers (a snapshot travels in one). */
  peer_frame_bytes_max: 1024 * 1024 * 1024,
  /** Bytes queued for a quorum peer that does not read them: past it the connection is dropped (above one frame). */
  peer_unsent_bytes_max: 1536 * 1024 * 1024,
  /** fsync slower than this is logged (fsync.warningthresholdms). */
  fsync_warning_ms: 1000,
  /** Transaction log preallocation step. */
  txnlog_prealloc_bytes: 16 * 1024 * 1024,
  /** Bytes of identities in one node's ACL after "auth" expansion: bounds getACL replies and transactions. */
  acl_bytes_max: 64 * 1024,
  /** Entries in one node's ACL after "auth" expansion. */
  acl_entries_max: 256,
  /** A transaction's size (data, paths, ACLs, every op of a multi): past it the request fails with BADARGUMENTS. */
  txn_bytes_max: 4 * 1024 * 1024,
  /** Operations in one multi. */
  multi_ops_max: 10_000,
  /** Watches one session may hold (paths x kinds). */
  watches_per_session_max: 100_000,
  /** Auth identities one connection may add. */
  auth_ids_per_connection_max: 64,
  /** Children listed in one reply is bounded by packet_bytes_max; this bounds the work per request. */
  ephemerals_listed_max: 1_000_000,
} as const;

/** Bounds of the ZooKeeper client (src/client). */
export const CLIENT_LIMITS = {
  /** Requests waiting for a connection while disconnected. */
  waiting_requests_max: 100_000,
  /** Paths per setWatches batch, in bytes, well under the packet limit. */
  set_watches_batch_bytes_max: 128 * 1024,
  /** Events buffered by one watch() async iterator that nobody reads. */
  watch_stream_queue_max: 10_000,
  /** addAuth credentials replayed on every reconnect. */
  auth_credentials_max: 64,
} as const;

/** Bounds of the quorum servers' AdminServer port (read-only HTTP): an operator's tool or a monitor, not a crowd. */
export const ADMIN_HTTP_LIMITS = {
  connections_max: 64,
  requests_per_connection_max: 1000,
  header_bytes_max: 8 * 1024,
  url_bytes_max: 2048,
  headers_ms_max: 10_000,
  request_ms_max: 30_000,
} as const;

export const ZK_DEFAULTS = {
  tick_ms: 2000,
  init_limit_ticks: 10,
  sync_limit_ticks: 5,
  /** Session timeouts are clamped to [min, max]; ZooKeeper's defaults are 2 and 20 ticks. */
  min_session_timeout_ticks: 2,
  max_session_timeout_ticks: 20,
  snap_count_txns: 100_000,
  autopurge_snap_retain_count: 3,
  autopurge_purge_interval_hours: 0,
  client_port: 2181,
} as const;

function assertLimits(): void {
  const L = ZK_LIMITS;
  if (L.unsent_reply_bytes_max < 2 * (L.packet_bytes_max + L.packet_header_bytes_extra)) {
    throw new Error('limits: unsent_reply_bytes_max must hold at least two full packets');
  }
  if (L.group_commit_bytes_max < L.packet_bytes_max + L.packet_header_bytes_extra) {
    throw new Error('limits: group_commit_bytes_max must hold the largest transaction');
  }
  if (CLIENT_LIMITS.set_watches_batch_bytes_max >= L.packet_bytes_max) {
    throw new Error('limits: a setWatches batch must fit in one packet');
  }
  if (L.txn_bytes_max < L.packet_bytes_max + L.path_bytes_max + L.acl_bytes_max) {
    throw new Error('limits: txn_bytes_max must hold the largest single write');
  }
  if (L.txn_bytes_max > L.group_commit_bytes_max) {
    throw new Error('limits: a transaction must fit in one group commit');
  }
  if (L.peer_unsent_bytes_max <= L.peer_frame_bytes_max) {
    throw new Error('limits: a quorum peer must be able to have one largest frame (a snapshot) unsent');
  }
  if (L.peer_frame_bytes_max < L.txn_bytes_max + 64) {
    throw new Error('limits: a peer frame must carry the largest transaction');
  }
  if (ADMIN_HTTP_LIMITS.headers_ms_max > ADMIN_HTTP_LIMITS.request_ms_max) {
    throw new Error('limits: an HTTP request cannot take less time than its headers');
  }
  if (L.requests_in_flight_per_connection_max > L.requests_in_flight_max) {
    throw new Error('limits: per-connection requests in flight cannot exceed the server-wide cap');
  }
}
assertLimits();
