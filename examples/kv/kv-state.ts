// The key-value store's state and its edits, without I/O: every replica
// applies the journal's edits in txid order through apply(), so the active
// (applying its own acknowledged writes) and each standby (tailing the
// journal) hold the same map at the same txid. An edit that does not decode
// is applied as nothing, the same way on every replica, and counted.

/** What a journal edit of the example service holds. `seq` numbers one writer's edits; C4 checks read instance and epoch. */
export type KvEdit =
  | { op: 'put'; instance: string; epoch: number; seq: number; key: string; value: string }
  | { op: 'del'; instance: string; epoch: number; seq: number; key: string }
  /** Written first by a new active: where its service API is, so standbys can send clients there. */
  | { op: 'active'; instance: string; epoch: number; seq: number; url: string }
  /** A write carrying nothing: the read barrier and the background writer. */
  | { op: 'tick'; instance: string; epoch: number; seq: number };

export const MAX_KEY_BYTES = 1024;
export const MAX_VALUE_BYTES = 1 << 20;

export function encodeEdit(e: KvEdit): Buffer {
  return Buffer.from(JSON.stringify(e));
}

/** The edit in `payload`, or a reason it is not one. Edits without `op` (older example services) are ticks. */
export function decodeEdit(payload: Buffer): KvEdit | { bad: string } {
  let j: unknown;
  try { j = JSON.parse(payload.toString('utf8')); } catch { return { bad: 'not JSON' }; }
  if (typeof j !== 'object' || j === null) return { bad: 'not a JSON object' };
  const o = j as Record<string, unknown>;
  if (typeof o.instance !== 'string' || typeof o.epoch !== 'number' || typeof o.seq !== 'number') return { bad: 'no instance/epoch/seq' };
  const base = { instance: o.instance, epoch: o.epoch, seq: o.seq };
  switch (o.op ?? 'tick') {
    case 'put': return typeof o.key === 'string' && typeof o.value === 'string' ? { op: 'put', ...base, key: o.key, value: o.value } : { bad: 'put without key/value' };
    case 'del': return typeof o.key === 'string' ? { op: 'del', ...base, key: o.key } : { bad: 'del without key' };
    case 'active': return typeof o.url === 'string' ? { op: 'active', ...base, url: o.url } : { bad: 'active without url' };
    case 'tick': return { op: 'tick', ...base };
    default: return { bad: `unknown op ${JSON.stringify(o.op).slice(0, 20)}` };
  }
}

export interface KvSnapshot { version: 1; appliedTxid: string; activeUrl: string | null; activeInstance: string | null; undecodable: number; data: [string, string][] }

export class KvState {
  readonly data = new Map<string, string>();
  appliedTxid = 0n;
  /** The newest active's service API, as its 'active' edit said. */
  activeUrl: string | null = null;
  activeInstance: string | null = null;
  undecodable = 0;

  /** Applies the edit at `txid`, which must be the next one: a gap or a repeat is a bug in the caller. */
  apply(txid: bigint, payload: Buffer | KvEdit): void {
    if (txid !== this.appliedTxid + 1n) throw new Error(`kv state: edit ${txid} applied after ${this.appliedTxid}`);
    const e = Buffer.isBuffer(payload) ? decodeEdit(payload) : payload;
    this.appliedTxid = txid;
    if ('bad' in e) { this.undecodable++; return; }
    if (e.op === 'put') this.data.set(e.key, e.value);
    else if (e.op === 'del') this.data.delete(e.key);
    else if (e.op === 'active') { this.activeUrl = e.url; this.activeInstance = e.instance; }
  }

  snapshot(): KvSnapshot {
    return { version: 1, appliedTxid: String(this.appliedTxid), activeUrl: this.activeUrl, activeInstance: this.activeInstance, undecodable: this.undecodable, data: [...this.data] };
  }

  static fromSnapshot(s: KvSnapshot): KvState {
    const st = new KvState();
    st.appliedTxid = BigInt(s.appliedTxid);
    st.activeUrl = s.activeUrl;
    st.activeInstance = s.activeInstance;
    st.undecodable = s.undecodable;
    for (const [k, v] of s.data) st.data.set(k, v);
    return st;
  }
}
