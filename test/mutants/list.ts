// The deliberate bugs `npm run mutants` plants in the cores, one at a time. Each
// is a one-line change; `find` must occur exactly once in `file` (else the list
// has rotted and the run fails). `tests` are the unit test files run against
// it; `sim` the simulator runs (arguments of dist/src/sim/main.js).
export interface Mutant {
  id: string;
  file: string;
  find: string;
  replace: string;
  why: string;
  tests: string[];
  sim: string[][];
}

const JOURNAL_TESTS = ['test/unit/journal'];
const ZAB_TESTS = ['test/unit/zab'];
const ZK_TESTS = ['test/unit/core', 'test/unit/zab/quorum-peer.test.ts'];
const CONTROLLER_TESTS = ['test/unit/controller/controller-core.test.ts', 'test/unit/controller/controller-failsafe.test.ts', 'test/unit/controller/controller-history.test.ts'];
const JOURNAL_SIM = [['--journal', '--seeds', '100']];
const BARE_SIM = [['--bare', '--seeds', '40']];
const ZK_SIM = [['--seeds', '16']];
const FENCE_TESTS = ['test/unit/controller/fencing.test.ts'];
const CONTROLLER_SIM = [['--controller', '--seeds', '200']];

export const MUTANTS: Mutant[] = [
  // ---- the journal (QJM) ----
  {
    id: 'journal-promise-check',
    file: 'src/core/journal/journal-state.ts',
    find: 'if (epoch < this.promised) {',
    replace: 'if (epoch < this.writerEpoch) {',
    why: 'a request below the promise is taken when it is at the last writer\'s epoch (an old writer finalizes or recovers behind a new one)',
    tests: JOURNAL_TESTS, sim: JOURNAL_SIM,
  },
  {
    id: 'journal-catch-up-below-promise',
    file: 'src/core/journal/journal-state.ts',
    find: '|| this.promised > p.writerEpoch) continue;',
    replace: ') continue;',
    why: 'catch-up copies a peer\'s in-progress edits of a writer below our promise: a batch accepted below the promise by another path',
    tests: JOURNAL_TESTS, sim: JOURNAL_SIM,
  },
  {
    id: 'journal-new-epoch-equal',
    file: 'src/core/journal/journal-state.ts',
    find: 'if (!Number.isSafeInteger(epoch) || epoch <= this.promised) {',
    replace: 'if (!Number.isSafeInteger(epoch) || epoch < this.promised) {',
    why: 'newEpoch grants the epoch already promised: two writers share one epoch',
    tests: JOURNAL_TESTS, sim: JOURNAL_SIM,
  },
  {
    id: 'journal-writer-acks-on-one',
    file: 'src/core/journal/journal-writer.ts',
    find: 'if (p.ok.size >= this.majority) {',
    replace: 'if (p.ok.size >= 1) {',
    why: 'the writer counts a batch written once one node has it (commit on its own ack)',
    tests: JOURNAL_TESTS, sim: JOURNAL_SIM,
  },
  {
    id: 'journal-cut-below-committed',
    file: 'src/core/journal/journal-state.ts',
    find: 'if (end < this.committed) {',
    replace: 'if (end < this.committed && false) {',
    why: 'a recovery may cut a segment below the committed txid (acknowledged edits dropped)',
    tests: JOURNAL_TESTS, sim: JOURNAL_SIM,
  },
  // ---- ZAB ----
  {
    id: 'journal-copy-of-another-writer',
    file: 'src/core/journal/journal-serve.ts',
    find: 'if (writerEpoch !== null && got.writerEpoch !== writerEpoch) throw',
    replace: 'if (writerEpoch === -1 && got.writerEpoch !== writerEpoch) throw',
    why: 'a gap fill or a recovery takes a peer\'s copy of the segment written by another writer (its edits under the same txids)',
    tests: JOURNAL_TESTS, sim: JOURNAL_SIM,
  },
  {
    id: 'journal-catch-up-chunk-unchecked',
    file: 'src/core/journal/journal-serve.ts',
    find: 'if (got !== null && (got.firstTxid !== step.fromTxid || got.writerEpoch !== step.writerEpoch)) return null;',
    replace: 'if (got !== null && (got.firstTxid !== step.fromTxid)) return null;',
    why: 'a catch-up adopts a chunk from a copy the peer\'s newer writer replaced after its manifest was read',
    tests: JOURNAL_TESTS, sim: JOURNAL_SIM,
  },
  {
    id: 'journal-catch-up-stale-step',
    file: 'src/core/journal/journal-serve.ts',
    find: 'if (!sameStep(st.catchUpStep(peer), step)) return null;',
    replace: 'if (!sameStep(step, step)) return null;',
    why: 'a catch-up chunk fetched outside the journal\'s turn is adopted though a request moved the state meanwhile (a new promise)',
    tests: JOURNAL_TESTS, sim: JOURNAL_SIM,
  },
  {
    id: 'zab-commit-on-own-ack',
    file: 'src/core/zab/leader-role.ts',
    find: 'if (!quorumOf(ctx.voters, acks)) return;',
    replace: 'if (!acks.has(ctx.cfg.id)) return;',
    why: 'the leader commits a proposal once it alone has it durable',
    tests: ZAB_TESTS, sim: BARE_SIM,
  },
  {
    id: 'zab-commit-skips-earlier',
    file: 'src/core/zab/quorum-peer.ts',
    find: 'for (const e of this.log.range(this.committed, zxid)) {',
    replace: 'for (const e of this.log.range(zxid - 1n, zxid)) {',
    why: 'a commit applies only the zxid it names, not the uncommitted ones before it (commits out of order, a hole in the history)',
    tests: ZAB_TESTS, sim: BARE_SIM,
  },
  {
    id: 'zab-newleader-ack-not-counted',
    file: 'src/core/zab/leader-role.ts',
    find: 'for (const [zxid, acks] of this.outstanding) if (zxid <= link.syncedThrough) acks.add(link.id);',
    replace: 'for (const [zxid, acks] of this.outstanding) if (zxid < link.syncedThrough - link.syncedThrough) acks.add(link.id);',
    why: 'a learner that joins during broadcast acks the outstanding proposals through NEWLEADER, and they are not counted (last session\'s bug)',
    tests: ZAB_TESTS, sim: BARE_SIM,
  },
  {
    id: 'zab-zxid-reused',
    file: 'src/core/zab/leader-role.ts',
    find: 'const zxid = this.lastProposed + 1n;',
    replace: 'const zxid = this.lastProposed + (this.outstanding.size > 1 ? 0n : 1n);',
    why: 'the leader hands out again the zxid of a proposal still in flight',
    tests: ZAB_TESTS, sim: BARE_SIM,
  },
  {
    id: 'zab-ackepoch-before-durable',
    file: 'src/core/zab/learner-role.ts',
    find: 'ctx.afterDurable(() => ctx.send(this.conn, { type: \'ackEpoch\', currentEpoch: ctx.currentEpoch, lastZxid }));',
    replace: 'ctx.send(this.conn, { type: \'ackEpoch\', currentEpoch: ctx.currentEpoch, lastZxid });',
    why: 'a follower promises the new epoch before its acceptedEpoch is on disk (a crash forgets the promise)',
    tests: ZAB_TESTS, sim: BARE_SIM,
  },
  {
    id: 'zab-learner-accepts-gap',
    file: 'src/core/zab/learner-role.ts',
    find: 'if (!followsInLog(ctx.log.last, zxid, ctx.cfg.firstCounter)) {',
    replace: 'if (!followsInLog(ctx.log.last, zxid, ctx.cfg.firstCounter) && zxid <= ctx.log.last) {',
    why: 'a learner takes a proposal that does not follow its log (ZOOKEEPER-4925)',
    tests: ZAB_TESTS, sim: BARE_SIM,
  },
  // ---- the ZooKeeper layer ----
  {
    id: 'zk-one-shot-watch-kept',
    file: 'src/core/zk/watches.ts',
    find: 'if (oneShot !== 0) this.setBits(m, path, watcher, bits & ~oneShot, bits);',
    replace: 'if (oneShot === -1) this.setBits(m, path, watcher, bits & ~oneShot, bits);',
    why: 'a one-shot data or child watch stays armed after it fired',
    tests: ZK_TESTS, sim: ZK_SIM,
  },
  {
    id: 'zk-sequential-counter-not-incremented',
    file: 'src/core/zk/request-prep.ts',
    find: 'const parentCVersion = (parent.cversion + 1) | 0;',
    replace: 'const parentCVersion = (parent.cversion + 0) | 0;',
    why: 'the parent\'s cversion (the sequential suffix) does not grow with a create',
    tests: ZK_TESTS, sim: ZK_SIM,
  },
  {
    id: 'zk-setdata-version-unchecked',
    file: 'src/core/zk/request-prep.ts',
    find: 'this.checkAcl(node.acl, Perm.WRITE, ctx);\n        if (req.version !== -1 && req.version !== node.version) throw new PrepError(Err.BADVERSION);',
    replace: 'this.checkAcl(node.acl, Perm.WRITE, ctx);\n        if (req.version !== -1 && req.version !== node.version && false) throw new PrepError(Err.BADVERSION);',
    why: 'setData with a stale expected version succeeds (a lost update)',
    tests: ZK_TESTS, sim: ZK_SIM,
  },
  {
    id: 'zk-setdata-acl-skipped',
    file: 'src/core/zk/request-prep.ts',
    find: 'const node = this.record(req.path);\n        this.checkAcl(node.acl, Perm.WRITE, ctx);',
    replace: 'const node = this.record(req.path);\n        this.checkAcl(node.acl, 0, ctx);',
    why: 'setData does not check WRITE on the node\'s ACL',
    tests: ZK_TESTS, sim: ZK_SIM,
  },
  {
    id: 'zk-acl-perms-ignored',
    file: 'src/core/zk/acl.ts',
    find: 'if ((entry.perms & perm) === 0) continue;',
    replace: 'if ((entry.perms & perm) === -1) continue;',
    why: 'an ACL entry that names the caller grants every permission, not only its own',
    tests: ZK_TESTS, sim: ZK_SIM,
  },
  {
    id: 'zk-expiry-keeps-ephemerals',
    file: 'src/core/zk/data-tree.ts',
    find: 'for (const p of paths) this.deleteNode(p, hdr.zxid, fires);',
    replace: 'for (const p of paths) if (p === \'\') this.deleteNode(p, hdr.zxid, fires);',
    why: 'closing (or expiring) a session leaves its ephemerals behind: a dead controller keeps its lock',
    tests: ZK_TESTS, sim: [...ZK_SIM, ...CONTROLLER_SIM],
  },
  {
    id: 'zk-zxid-reused',
    file: 'src/core/zk/server-core.ts',
    find: 'this.lastProposedZxid += 1n;',
    replace: 'this.lastProposedZxid += this.pendingTxns.length > 1 ? 0n : 1n;',
    why: 'the ZooKeeper layer hands out a zxid already given to a transaction in flight',
    tests: ZK_TESTS, sim: ZK_SIM,
  },
  // ---- the ZooKeeper layer on the peer (the glue the quorum server and the simulator share) ----
  {
    id: 'zk-layer-snapshot-ignored',
    file: 'src/quorum/zk-layer.ts',
    find: 'this.host.replaceCore(deserializeTree(Buffer.from(snapshot)), zxid)',
    replace: 'this.host.replaceCore(deserializeTree(Buffer.from(zxid > 0n ? this.snapshot() : snapshot)), zxid)',
    why: 'a learner that is sent the leader\'s snapshot keeps its own tree (it serves a state no one committed)',
    tests: ZK_TESTS, sim: ZK_SIM,
  },
  // ---- the controller ----
  {
    id: 'controller-lease-unchecked',
    file: 'src/core/controller/controller-core.ts',
    find: 'if (!this.leaseValid(this.now)) {\n      this.failPromotion(',
    replace: 'if (!this.leaseValid(this.now) && this.phase !== \'promoting\') {\n      this.failPromotion(',
    why: 'a promotion step runs without re-checking the lease (after a pause, a fence or to-active with no lease: C2)',
    tests: CONTROLLER_TESTS, sim: CONTROLLER_SIM,
  },
  {
    id: 'controller-fence-failure-as-success',
    file: 'src/core/controller/controller-core.ts',
    find: 'case \'fence\':\n        if (!r.ok) {',
    replace: 'case \'fence\':\n        if (!r.ok && r.reason === undefined) {',
    why: 'a failed fence lets the promotion go on (C1)',
    tests: CONTROLLER_TESTS, sim: CONTROLLER_SIM,
  },
  {
    id: 'controller-lock-owner-by-existence',
    file: 'src/core/controller/controller-core.ts',
    find: 'if (lock !== null && this.sessionId !== null && lock.owner === this.sessionId) {',
    replace: 'if (lock !== null && this.sessionId !== null && lock.owner !== 0n) {',
    why: 'after a lost create answer, a lock held by another session is taken as ours (ownership not by ephemeralOwner)',
    tests: CONTROLLER_TESTS, sim: CONTROLLER_SIM,
  },
  {
    id: 'controller-promotes-unhealthy',
    file: 'src/core/controller/controller-core.ts',
    find: 'if (this.health !== \'healthy\') { this.failPromotion(`the service became ${this.health}`); return; }',
    replace: 'if (this.health === \'initializing\') { this.failPromotion(`the service became ${this.health}`); return; }',
    why: 'a service that became unhealthy during the promotion is still made active (C3)',
    tests: CONTROLLER_TESTS, sim: CONTROLLER_SIM,
  },
  // ---- fencing (what a fence attempt counts for) ----
  {
    id: 'fence-shell-exit-ignored',
    file: 'src/controller/fencing.ts',
    find: 'return ev.result.code === 0 ? { ok: \'verify\'',
    replace: 'return ev.result.spawnError === null ? { ok: \'verify\'',
    why: 'a fence command that exited non-zero, was killed or timed out counts once the target looks down: the agent\'s own failure is ignored and only the down check stands between a failed kill and C1',
    tests: FENCE_TESTS, sim: CONTROLLER_SIM,
  },
  {
    id: 'fence-kill-unverified',
    file: 'src/controller/fencing.ts',
    find: 'r = v.ok === \'verify\' ? await verifyDown(target, v.what, down) : v;',
    replace: 'r = v.ok === \'verify\' ? { ok: true, detail: v.what } : v;',
    why: 'a kill that reports success counts without the target seen down: an agent that lies (the wrong outlet) leaves the old active serving beside the new one (C1)',
    tests: FENCE_TESTS, sim: CONTROLLER_SIM,
  },
  // ---- what the controller simulator reaches since it runs the real client and quorum ----
  {
    id: 'zk-learner-touch-dropped',
    file: 'src/core/zk/server-core.ts',
    find: '      this.touched.add(sessionId);',
    replace: '      if (sessionId < 0n) this.touched.add(sessionId);',
    why: 'a follower no longer tells the leader that its clients\' sessions are alive: a controller pinging through a follower has its session expired under it, and its lock with it',
    tests: [], sim: CONTROLLER_SIM,
  },
  {
    id: 'client-watches-not-rearmed',
    file: 'src/client/session.ts',
    find: 'for (const req of setWatchesRequests(this.watches.snapshot(), this.chroot, this._lastZxidSeen)) {',
    replace: 'for (const req of setWatchesRequests(this.watches.snapshot(), this.chroot, this._lastZxidSeen).slice(0, 0)) {',
    why: 'a client that reconnects does not re-arm its watches (setWatches): an event missed while away never comes (the controller itself does not rely on it: it reads the lock again, watching, at every reconnect)',
    tests: ['test/unit/client/protocol.test.ts'], sim: CONTROLLER_SIM,
  },
  {
    id: 'controller-no-session-after-expiry',
    file: 'src/controller/quorum-session.ts',
    find: 'if (established) this.d.setTimer(100, () => void this.run());',
    replace: 'if (established && this.stopped) this.d.setTimer(100, () => void this.run());',
    why: 'a controller whose session expired never makes a new one: it can never be promoted again',
    tests: [], sim: CONTROLLER_SIM,
  },
];
