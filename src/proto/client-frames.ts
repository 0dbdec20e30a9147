// A ZooKeeper client connection's frames as the server reads and writes
// them: the first frame is the connect request, every later one a request
// with its header; out go the connect response, watch events (xid -1) and
// replies (a body only on success). The client port and the simulator's
// client network both speak through these.
import type { Outbound } from '../core/zk/server-core.js';
import { JuteReader, type JuteWriter } from './jute.js';
import {
  decodeConnectRequest, decodeRequest, encodeConnectResponse, encodeResponse, readRequestHeader,
  writeReplyHeader, writeWatcherEvent, type ConnectRequest, type ZkRequest,
} from './zk-records.js';

export type ClientFrame = { kind: 'connect'; req: ConnectRequest } | { kind: 'request'; xid: number; req: ZkRequest };

/** One frame from a client (without its length prefix); throws JuteError when it does not parse. */
export function decodeClientFrame(handshaken: boolean, frame: Buffer): ClientFrame {
  const r = new JuteReader(frame);
  if (!handshaken) return { kind: 'connect', req: decodeConnectRequest(r) };
  const hdr = readRequestHeader(r);
  // An op code the server does not know still reaches the core, which answers it with an error.
  return { kind: 'request', xid: hdr.xid, req: decodeRequest(hdr.type, r) ?? ({ type: hdr.type } as ZkRequest) };
}

/** One message to a client, as a frame's body (the caller frames it). */
export function encodeOutbound(w: JuteWriter, o: Outbound): void {
  if (o.kind === 'connect') {
    encodeConnectResponse(w, o.resp);
  } else if (o.kind === 'event') {
    writeReplyHeader(w, { xid: -1, zxid: -1n, err: 0 });
    writeWatcherEvent(w, o.event);
  } else {
    writeReplyHeader(w, { xid: o.xid, zxid: o.zxid, err: o.err });
    if (o.body && o.err === 0) encodeResponse(w, o.body);
  }
}
