// The simulation's agenda: events ordered by time, then by the order they
// were scheduled (so equal times replay identically).
export interface SimEvent { at: number; seq: number; run: () => void }

export class EventQueue {
  private heap: SimEvent[] = [];
  private seq = 0;
  now = 0;

  get size(): number { return this.heap.length; }

  at(time: number, run: () => void): void {
    const e = { at: Math.max(time, this.now), seq: this.seq++, run };
    const h = this.heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!before(h[i], h[p])) break;
      [h[i], h[p]] = [h[p], h[i]];
      i = p;
    }
  }

  after(delayMs: number, run: () => void): void { this.at(this.now + delayMs, run); }

  /** Runs the next event; false when there is none or it lies past `until`. */
  step(until: number): boolean {
    const h = this.heap;
    if (h.length === 0 || h[0].at > until) return false;
    const top = h[0];
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && before(h[l], h[m])) m = l;
        if (r < h.length && before(h[r], h[m])) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m], h[i]];
        i = m;
      }
    }
    this.now = top.at;
    top.run();
    return true;
  }
}

function before(a: SimEvent, b: SimEvent): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}
