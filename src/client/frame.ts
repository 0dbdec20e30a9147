// Framing of the client protocol: every message is a 4-byte big-endian length
// then that many bytes. Pure code (no sockets), so it is unit tested alone.
import { JuteWriter } from '../proto/jute.js';
import { encodeRequest, type ZkRequest } from '../proto/zk-records.js';
import { ZK_LIMITS } from '../limits.js';

/** Largest frame body accepted in either direction: jute.maxbuffer plus the header allowance. */
export const FRAME_BYTES_MAX = ZK_LIMITS.packet_bytes_max + ZK_LIMITS.packet_header_bytes_extra;

export class FrameError extends Error {
  readonly code = 'QUORATE_ZK_FRAME';
  constructor(message: string) {
    super(message);
    this.name = 'FrameError';
  }
}

/**
 * Splits a byte stream into frames. Frames wholly inside one chunk are
 * returned as views of that chunk (no copy); a frame spread over several
 * chunks is assembled into one buffer of its exact size.
 */
export class FrameDecoder {
  private readonly header = Buffer.alloc(4);
  private headerFilled = 0;
  private body: Buffer | null = null;
  private bodyFilled = 0;

  constructor(private readonly maxFrameBytes: number = FRAME_BYTES_MAX) {}

  /** Bytes of an incomplete frame held back. */
  get buffered(): number {
    return this.headerFilled + this.bodyFilled;
  }

  /** Feed a chunk; returns the frames it completes. Throws FrameError on a bad length (the stream is then unusable). */
  push(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    let off = 0;
    while (off < chunk.length) {
      if (this.body === null) {
        // Fast path: a whole frame inside the chunk.
        if (this.headerFilled === 0 && chunk.length - off >= 4) {
          const len = this.checkLength(chunk.readInt32BE(off));
          if (chunk.length - off - 4 >= len) {
            out.push(chunk.subarray(off + 4, off + 4 + len));
            off += 4 + len;
            continue;
          }
          this.startBody(len);
          off += 4;
          continue;
        }
        const take = Math.min(4 - this.headerFilled, chunk.length - off);
        chunk.copy(this.header, this.headerFilled, off, off + take);
        this.headerFilled += take;
        off += take;
        if (this.headerFilled < 4) break;
        const len = this.checkLength(this.header.readInt32BE(0));
        this.headerFilled = 0;
        if (len === 0) {
          out.push(Buffer.alloc(0));
          continue;
        }
        this.startBody(len);
        continue;
      }
      const body = this.body;
      const take = Math.min(body.length - this.bodyFilled, chunk.length - off);
      chunk.copy(body, this.bodyFilled, off, off + take);
      this.bodyFilled += take;
      off += take;
      if (this.bodyFilled === body.length) {
        out.push(body);
        this.body = null;
        this.bodyFilled = 0;
      }
    }
    return out;
  }

  private startBody(len: number): void {
    this.body = Buffer.allocUnsafe(len);
    this.bodyFilled = 0;
  }

  private checkLength(len: number): number {
    if (len < 0 || len > this.maxFrameBytes) {
      throw new FrameError(`frame length ${len} is outside 0..${this.maxFrameBytes} (the 1 MiB packet limit)`);
    }
    return len;
  }
}

/**
 * Encode a request frame: length, RequestHeader {xid, type}, body. The xid
 * sits at byte offset 4 so that it can be patched when the frame is sent.
 */
export function encodeRequestFrame(xid: number, req: ZkRequest): Buffer {
  const w = new JuteWriter(64);
  const at = w.beginFrame();
  w.writeInt(xid).writeInt(req.type);
  encodeRequest(w, req);
  w.finishFrame(at);
  return w.toBuffer();
}

/** Set the xid of a frame made by encodeRequestFrame. */
export function patchXid(frame: Buffer, xid: number): void {
  frame.writeInt32BE(xid, 4);
}

/** Encode a bare frame around a record written by `write` (the connect handshake has no header). */
export function encodeFrame(write: (w: JuteWriter) => void): Buffer {
  const w = new JuteWriter(64);
  const at = w.beginFrame();
  write(w);
  w.finishFrame(at);
  return w.toBuffer();
}
