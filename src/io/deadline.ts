// A promise bounded by a deadline whatever runs underneath: undici leaves a
// connect to a host that does not answer (off the network) pending for its
// own connect timeout (10 s) even when the request's signal has fired, which
// the nemesis saw stretch a 5 s fence to 10.5 s.

/** `p`, or a rejection "no answer within `ms` ms" once `ms` has passed. */
export function within<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms); });
  p.catch(() => undefined);
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}
