// ZooKeeper's wire constants, as the Java server defines them
// (org.apache.zookeeper.ZooDefs.OpCode, KeeperException.Code, Watcher.Event).

export const OpCode = {
  notification: 0,
  create: 1,
  delete: 2,
  exists: 3,
  getData: 4,
  setData: 5,
  getACL: 6,
  setACL: 7,
  getChildren: 8,
  sync: 9,
  ping: 11,
  getChildren2: 12,
  check: 13,
  multi: 14,
  create2: 15,
  reconfig: 16,
  checkWatches: 17,
  removeWatches: 18,
  createContainer: 19,
  deleteContainer: 20,
  createTTL: 21,
  multiRead: 22,
  auth: 100,
  setWatches: 101,
  sasl: 102,
  getEphemerals: 103,
  getAllChildrenNumber: 104,
  setWatches2: 105,
  addWatch: 106,
  whoAmI: 107,
  createSession: -10,
  closeSession: -11,
  error: -1,
} as const;
export type OpCodeValue = (typeof OpCode)[keyof typeof OpCode];

export const OpName: Record<number, string> = Object.fromEntries(
  Object.entries(OpCode).map(([k, v]) => [v, k]),
);

/** Special xids in reply headers. */
export const Xid = {
  notification: -1,
  ping: -2,
  auth: -4,
  setWatches: -8,
} as const;

export const Err = {
  OK: 0,
  SYSTEMERROR: -1,
  RUNTIMEINCONSISTENCY: -2,
  DATAINCONSISTENCY: -3,
  CONNECTIONLOSS: -4,
  MARSHALLINGERROR: -5,
  UNIMPLEMENTED: -6,
  OPERATIONTIMEOUT: -7,
  BADARGUMENTS: -8,
  UNKNOWNSESSION: -12,
  NEWCONFIGNOQUORUM: -13,
  RECONFIGINPROGRESS: -14,
  APIERROR: -100,
  NONODE: -101,
  NOAUTH: -102,
  BADVERSION: -103,
  NOCHILDRENFOREPHEMERALS: -108,
  NODEEXISTS: -110,
  NOTEMPTY: -111,
  SESSIONEXPIRED: -112,
  INVALIDCALLBACK: -113,
  INVALIDACL: -114,
  AUTHFAILED: -115,
  SESSIONMOVED: -118,
  NOTREADONLY: -119,
  EPHEMERALONLOCALSESSION: -120,
  NOWATCHER: -121,
  REQUESTTIMEOUT: -122,
  RECONFIGDISABLED: -123,
  SESSIONCLOSEDREQUIRESASLAUTH: -124,
  QUOTAEXCEEDED: -125,
  THROTTLEDOP: -127,
} as const;
export type ErrCode = (typeof Err)[keyof typeof Err];

export const ErrName: Record<number, string> = Object.fromEntries(
  Object.entries(Err).map(([k, v]) => [v, k]),
);

export const EventType = {
  None: -1,
  NodeCreated: 1,
  NodeDeleted: 2,
  NodeDataChanged: 3,
  NodeChildrenChanged: 4,
  DataWatchRemoved: 5,
  ChildWatchRemoved: 6,
  PersistentWatchRemoved: 7,
} as const;

export const KeeperState = {
  Disconnected: 0,
  SyncConnected: 3,
  AuthFailed: 4,
  ConnectedReadOnly: 5,
  SaslAuthenticated: 6,
  Expired: -112,
  Closed: 7,
} as const;

export const CreateMode = {
  PERSISTENT: 0,
  EPHEMERAL: 1,
  PERSISTENT_SEQUENTIAL: 2,
  EPHEMERAL_SEQUENTIAL: 3,
  CONTAINER: 4,
  PERSISTENT_WITH_TTL: 5,
  PERSISTENT_SEQUENTIAL_WITH_TTL: 6,
} as const;

export function createModeInfo(flags: number): { ephemeral: boolean; sequential: boolean; container: boolean; ttl: boolean } | null {
  switch (flags) {
    case 0: return { ephemeral: false, sequential: false, container: false, ttl: false };
    case 1: return { ephemeral: true, sequential: false, container: false, ttl: false };
    case 2: return { ephemeral: false, sequential: true, container: false, ttl: false };
    case 3: return { ephemeral: true, sequential: true, container: false, ttl: false };
    case 4: return { ephemeral: false, sequential: false, container: true, ttl: false };
    case 5: return { ephemeral: false, sequential: false, container: false, ttl: true };
    case 6: return { ephemeral: false, sequential: true, container: false, ttl: true };
    default: return null;
  }
}

export const Perm = {
  READ: 1,
  WRITE: 2,
  CREATE: 4,
  DELETE: 8,
  ADMIN: 16,
  ALL: 31,
} as const;

/** addWatch modes. */
export const AddWatchMode = {
  PERSISTENT: 0,
  PERSISTENT_RECURSIVE: 1,
} as const;

/** removeWatches / checkWatches watcher types. */
export const WatcherType = {
  Children: 1,
  Data: 2,
  Any: 3,
  Persistent: 4,
  PersistentRecursive: 5,
} as const;

/**
 * ZooKeeper's ephemeralOwner values that mark container and TTL nodes
 * (EphemeralType): a container has owner 0x8000000000000000; a TTL node has
 * 0xFF in the top byte and the TTL in the low 40 bits (EphemeralTypeEmulate353
 * is not used).
 */
export const CONTAINER_EPHEMERAL_OWNER = -0x8000000000000000n;
export const TTL_MASK = 0xff00000000000000n;
export const MAX_TTL_MS = 0x000000ffffffffffn;
export function ttlEphemeralOwner(ttlMs: bigint): bigint {
  return BigInt.asIntN(64, TTL_MASK | ttlMs);
}
export function ttlOfEphemeralOwner(owner: bigint): bigint | null {
  const u = BigInt.asUintN(64, owner);
  if ((u & TTL_MASK) === TTL_MASK && owner !== -1n) return u & MAX_TTL_MS;
  return null;
}

/** The four-letter words this server answers. */
export const FOUR_LETTER_WORDS = ['ruok', 'stat', 'srvr', 'conf', 'cons', 'mntr', 'envi', 'wchs', 'dirs', 'isro'] as const;
/** Four-letter words ZooKeeper knows and we do not serve: recognised (answered as not executed), never taken as a frame length. */
export const ZK_ONLY_FOUR_LETTER_WORDS = ['crst', 'srst', 'dump', 'wchc', 'wchp', 'hash', 'gtmk', 'stmk', 'lead', 'lsnp', 'cnfg'] as const;
