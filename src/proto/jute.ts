// Jute: ZooKeeper's record serialization. Big-endian ints and longs, a
// boolean as one byte, buffers and strings as an int length (-1 = null)
// followed by the bytes, vectors as an int count (-1 = null) then elements.
// 64-bit values (zxids, session ids) are bigint: see TRAPS.md on numbers.

export class JuteError extends Error {
  readonly code = 'QUORATE_JUTE_DECODE';
  constructor(message: string) {
    super(message);
    this.name = 'JuteError';
  }
}

export class JuteReader {
  private offset = 0;
  constructor(private readonly buf: Buffer, start = 0, private readonly end = buf.length) {
    this.offset = start;
  }

  get position(): number {
    return this.offset;
  }

  get remaining(): number {
    return this.end - this.offset;
  }

  private need(n: number, what: string): void {
    if (n < 0 || this.offset + n > this.end) {
      throw new JuteError(`truncated record: ${what} needs ${n} bytes at offset ${this.offset}, ${this.end - this.offset} left`);
    }
  }

  readInt(): number {
    this.need(4, 'int');
    const v = this.buf.readInt32BE(this.offset);
    this.offset += 4;
    return v;
  }

  readLong(): bigint {
    this.need(8, 'long');
    const v = this.buf.readBigInt64BE(this.offset);
    this.offset += 8;
    return v;
  }

  readBool(): boolean {
    this.need(1, 'boolean');
    const v = this.buf[this.offset] !== 0;
    this.offset += 1;
    return v;
  }

  /** A buffer, or null when the length is -1 (distinct from an empty buffer). */
  readBuffer(): Buffer | null {
    const len = this.readInt();
    if (len === -1) return null;
    if (len < -1) throw new JuteError(`negative buffer length ${len} at offset ${this.offset - 4}`);
    this.need(len, 'buffer');
    const v = this.buf.subarray(this.offset, this.offset + len);
    this.offset += len;
    return v;
  }

  readString(): string | null {
    const b = this.readBuffer();
    return b === null ? null : b.toString('utf8');
  }

  /** A string where ZooKeeper never sends null; null is read as ''. */
  readUstring(): string {
    return this.readString() ?? '';
  }

  readVector<T>(readOne: (r: JuteReader) => T): T[] | null {
    const n = this.readInt();
    if (n === -1) return null;
    if (n < -1) throw new JuteError(`negative vector length ${n} at offset ${this.offset - 4}`);
    // Every element takes at least one byte: a count above what is left is a lie.
    if (n > this.remaining) throw new JuteError(`vector length ${n} exceeds the ${this.remaining} bytes left`);
    const out: T[] = [];
    for (let i = 0; i < n; i++) out.push(readOne(this));
    return out;
  }

  readStringVector(): string[] {
    return this.readVector((r) => r.readUstring()) ?? [];
  }

  rest(): Buffer {
    const v = this.buf.subarray(this.offset, this.end);
    this.offset = this.end;
    return v;
  }
}

export class JuteWriter {
  private buf: Buffer;
  private offset = 0;

  constructor(initial = 256) {
    this.buf = Buffer.allocUnsafe(initial);
  }

  private ensure(n: number): void {
    if (this.offset + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.offset + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.offset);
    this.buf = next;
  }

  get length(): number {
    return this.offset;
  }

  writeInt(v: number): this {
    this.ensure(4);
    this.buf.writeInt32BE(v | 0, this.offset);
    this.offset += 4;
    return this;
  }

  writeLong(v: bigint): this {
    this.ensure(8);
    this.buf.writeBigInt64BE(BigInt.asIntN(64, v), this.offset);
    this.offset += 8;
    return this;
  }

  writeBool(v: boolean): this {
    this.ensure(1);
    this.buf[this.offset++] = v ? 1 : 0;
    return this;
  }

  writeBuffer(v: Uint8Array | null): this {
    if (v === null) return this.writeInt(-1);
    this.writeInt(v.length);
    this.ensure(v.length);
    this.buf.set(v, this.offset);
    this.offset += v.length;
    return this;
  }

  writeString(v: string | null): this {
    if (v === null) return this.writeInt(-1);
    const len = Buffer.byteLength(v, 'utf8');
    this.writeInt(len);
    this.ensure(len);
    this.buf.write(v, this.offset, len, 'utf8');
    this.offset += len;
    return this;
  }

  writeVector<T>(items: readonly T[] | null, writeOne: (w: JuteWriter, item: T) => void): this {
    if (items === null) return this.writeInt(-1);
    this.writeInt(items.length);
    for (const it of items) writeOne(this, it);
    return this;
  }

  writeStringVector(items: readonly string[] | null): this {
    return this.writeVector(items, (w, s) => w.writeString(s));
  }

  writeRaw(b: Uint8Array): this {
    this.ensure(b.length);
    this.buf.set(b, this.offset);
    this.offset += b.length;
    return this;
  }

  /** Reserve 4 bytes for a frame length, to be filled by finishFrame. */
  beginFrame(): number {
    const at = this.offset;
    this.writeInt(0);
    return at;
  }

  finishFrame(at: number): void {
    this.buf.writeInt32BE(this.offset - at - 4, at);
  }

  /** Start over, keeping the allocated buffer (a writer reused for every reply batch). */
  reset(): void {
    this.offset = 0;
  }

  toBuffer(): Buffer {
    return this.buf.subarray(0, this.offset);
  }
}
