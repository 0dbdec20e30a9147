// The ZooKeeper client: one implementation for the controller, the CLI, the
// benchmarks and the tests, against Apache ZooKeeper or our quorum.
export { ZkClient } from './zk-client.js';
export type { ZkClientOptions, ZkClientEvents, ZkState } from './session.js';
export type { ZkClientTls, ClientRuntime, ClientSocket, ClientSocketEvents } from './runtime.js';
export { WAITING_REQUESTS_MAX } from './wait-queue.js';
export { SET_WATCHES_BATCH_BYTES_MAX } from './set-watches.js';
export { AUTH_CREDENTIALS_MAX } from './auth.js';
export { ZkError, isZkError, isConnectionLoss, isSessionExpired } from './errors.js';
export { Op, Acls, toData, type CreateOptions, type Data } from './ops.js';
export { validatePath, pathProblem, parseConnectString } from './path.js';
export { WatchManager, type WatchEvent, type Watcher, type WatchKind } from './watch-manager.js';
export { WatchStream, WATCH_STREAM_QUEUE_MAX, type WatchStreamKind } from './watch-stream.js';
export { FRAME_BYTES_MAX } from './frame.js';
export { fourLetterWord, parseMntr, FOUR_LETTER_ANSWER_BYTES_MAX } from './four-letter-word.js';
export type { ZkLogger } from './log.js';
export {
  AddWatchMode, CreateMode, Err, ErrName, EventType, KeeperState, OpCode, Perm, WatcherType,
} from '../proto/zk-constants.js';
export type { ACL, Id, MultiOp, MultiResult, Stat } from '../proto/zk-records.js';
