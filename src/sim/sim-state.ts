// The replicated state in simulations: how far it reaches, how many
// transactions it applied, and a running digest of them (so two servers
// that applied different histories disagree at the same zxid).

export interface SimState { zxid: bigint; count: number; digest: number }

export function initialSimState(zxid: bigint): SimState {
  return { zxid, count: 0, digest: 0x811c9dc5 };
}

/** FNV-1a over the previous digest, the zxid and the payload. */
export function applyToSimState(s: SimState, zxid: bigint, payload: Uint8Array): SimState {
  let h = s.digest;
  const z = zxid.toString(16);
  for (let i = 0; i < z.length; i++) h = Math.imul(h ^ z.charCodeAt(i), 0x01000193) >>> 0;
  for (let i = 0; i < payload.length; i++) h = Math.imul(h ^ payload[i], 0x01000193) >>> 0;
  return { zxid, count: s.count + 1, digest: h };
}

export function encodeSimState(s: SimState): Uint8Array {
  return new TextEncoder().encode(JSON.stringify({ zxid: s.zxid.toString(), count: s.count, digest: s.digest }));
}

export function decodeSimState(b: Uint8Array): SimState {
  const o = JSON.parse(new TextDecoder().decode(b)) as { zxid: string; count: number; digest: number };
  return { zxid: BigInt(o.zxid), count: o.count, digest: o.digest };
}
