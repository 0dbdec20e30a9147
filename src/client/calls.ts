// A request from the API to the wire and back: encoded once (its xid patched
// in when sent), settled exactly once, by its reply, by a failure of the
// connection it was sent on, or by timing out while it waited to be sent.
import type { JuteReader } from '../proto/jute.js';
import { decodeResponse, type ReplyHeader, type ZkRequest, type ZkResponse } from '../proto/zk-records.js';
import { Err } from '../proto/zk-constants.js';
import type { Pending } from './connection.js';
import { badArguments, ZkError } from './errors.js';
import { encodeRequestFrame, FRAME_BYTES_MAX, patchXid } from './frame.js';
import type { ZkLogger } from './log.js';

/** What a request's promise resolves to: the reply header's err and, when err is 0, the decoded body. */
export interface Reply { err: number; zxid: bigint; body: ZkResponse | null }

export interface Call {
  req: ZkRequest;
  frame: Buffer;
  /** The client path named in errors. */
  path: string | undefined;
  enqueuedAtMs: number;
  timeoutMs: number;
  settled: boolean;
  resolve(r: Reply): void;
  reject(e: ZkError): void;
  /** Runs synchronously when the reply arrives, before any later frame (watch registration). */
  onReply: ((err: number) => void) | undefined;
}

/** Encode a request; throws BADARGUMENTS when it cannot be encoded or exceeds the packet limit. */
export function encodeCall(req: ZkRequest, path: string | undefined): Buffer {
  let frame: Buffer;
  try {
    frame = encodeRequestFrame(0, req);
  } catch (e) {
    throw badArguments(`cannot encode request: ${(e as Error).message}`, path);
  }
  if (frame.length - 4 > FRAME_BYTES_MAX) {
    throw badArguments(`request of ${frame.length - 4} bytes exceeds the ${FRAME_BYTES_MAX}-byte packet limit`, path);
  }
  return frame;
}

export function newCall(
  req: ZkRequest, frame: Buffer, path: string | undefined, onReply: ((err: number) => void) | undefined, timeoutMs: number,
  resolve: (r: Reply) => void, reject: (e: ZkError) => void, nowMs: number,
): Call {
  return { req, frame, path, enqueuedAtMs: nowMs, timeoutMs, settled: false, resolve, reject, onReply };
}

export function failCall(call: Call, e: ZkError): void {
  if (call.settled) return;
  call.settled = true;
  call.reject(e);
}

/** The pending-queue entry for a call sent with `xid`. */
export function pendingOf(call: Call, xid: number, log: ZkLogger): Pending {
  patchXid(call.frame, xid);
  return {
    xid, opType: call.req.type, sentAtMs: 0,
    complete: (hdr, r) => completeCall(call, hdr, r, log),
    fail: (e) => failCall(call, new ZkError(e.code, call.path, e.message)),
  };
}

function completeCall(call: Call, hdr: ReplyHeader, r: JuteReader, log: ZkLogger): void {
  let body: ZkResponse | null = null;
  if (hdr.err === Err.OK) {
    try {
      body = decodeResponse(call.req.type, r);
    } catch (e) {
      failCall(call, new ZkError(Err.MARSHALLINGERROR, call.path, `bad reply: ${(e as Error).message}`));
      return;
    }
  }
  if (call.onReply !== undefined) {
    try {
      call.onReply(hdr.err);
    } catch (e) {
      log.error({ err: e }, 'zk client: reply hook threw');
    }
  }
  if (call.settled) return;
  call.settled = true;
  call.resolve({ err: hdr.err, zxid: hdr.zxid, body });
}
