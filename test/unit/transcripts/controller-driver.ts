// Runs transcript commands against a ControllerCore (src/core/controller), one
// core per file, and prints every effect of each step. Commands:
//
//   new [instance=a address=a.example:8019 journal=yes preActive=no raceDelayMs=0 noFailover=no
//        retryBackoffMs=1000 retryBackoffMaxMs=8000 promotionsPerWindow=3 promotionWindowMs=60000
//        maxLag=none failsafe=no resume=<sid> resumeWaitMs=6000 at=1000]
//   at <ms>                          the clock (never backwards); no step
//   tick [<ms>]                      a timer input (at <ms> if given)
//   health <state> <reason words>    healthy | unhealthy | not-responding | initializing
//   lag <n>|none
//   session connected sid=<id> timeout=<ms> | session disconnected | session expired
//   done <op name>|#<op id> ok [role= serviceEpoch= journalEpoch= epoch= detail=
//        lock=none|owner:<sid>,czxid:<zxid> crumb=none|instance:b,address:..,epoch:6,token:.. version=]
//   done <op name>|#<op id> fail reason=<why> [code=NODEEXISTS|BADVERSION|NONODE]
//                                    by name: the newest open op of that name (a hook by its hook name)
//   lockChanged | cede <ms> | failoverTarget <ms> [force] | pause | resume
//   status                           the core's whole status (no step)
//   open                             the ops issued and not answered yet (no step)
//
// Each step prints every effect, in order:
//   run #<op> <type> <every field>   (a hook: run #<op> hook <name> <fields>)
//   wake <at> | log <level> "<msg>" <fields> | history <type> <fields>
// then the phase line: -> phase=<phase> isActive=<at now> leaseUntil=<ms|none> (paused, failsafe when set).
import {
  ControllerCore, type ControllerEffect, type ControllerInput, type ControllerOp, type ControllerSettings,
  type HealthState, type OpResult,
} from '../../../src/core/controller/controller-core.js';
import { big, bool, type Command, type Driver, fmtFields, fmtValue, int, need, onlyKeys } from './datadriven.js';

const DEFAULTS: ControllerSettings = {
  instance: 'a', address: 'a.example:8019', hasJournal: true, hasPreActiveHook: false, raceDelayMs: 0,
  noFailover: false, retryBackoffMs: 1000, retryBackoffMaxMs: 8000, promotionsPerWindow: 3, promotionWindowMs: 60_000,
};

const nameOf = (op: ControllerOp): string => (op.type === 'hook' ? op.hook : op.type);

export function fmtControllerEffect(e: ControllerEffect): string {
  switch (e.kind) {
    case 'run': {
      const op = e.what as ControllerOp & Record<string, unknown>;
      const head = op.type === 'hook' ? `hook ${op.hook}` : op.type;
      const rest = fmtFields(op, ['type', 'hook']);
      return `run #${e.op} ${head}${rest === '' ? '' : ` ${rest}`}`;
    }
    case 'wakeAt': return `wake ${e.at}`;
    case 'log': {
      const rest = e.fields === undefined ? '' : fmtFields(e.fields);
      return `log ${e.level} ${JSON.stringify(e.msg)}${rest === '' ? '' : ` ${rest}`}`;
    }
    case 'history': {
      const rest = fmtFields(e.event as unknown as Record<string, unknown>, ['type']);
      return `history ${e.event.type}${rest === '' ? '' : ` ${rest}`}`;
    }
    default: {
      // A new kind of effect must show, not vanish.
      const other = e as unknown as Record<string, unknown>;
      return `${String(other.kind)} ${fmtFields(other, ['kind'])}`;
    }
  }
}

/** `a:1,b:2` into a record of strings. */
function parsePairs(s: string, what: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of s.split(',')) {
    const i = part.indexOf(':');
    if (i <= 0) throw new Error(`${what}: "${part}" is not key:value`);
    out[part.slice(0, i)] = part.slice(i + 1);
  }
  return out;
}

export class ControllerDriver implements Driver {
  private core: ControllerCore | null = null;
  private now = 0;
  /** Ops issued and not answered (ops the core gave up on stay here: `open` shows them). */
  private readonly open = new Map<number, ControllerOp>();

  run(cmd: Command): string[] {
    if (cmd.name === 'new') return this.create(cmd);
    const core = this.core;
    if (core === null) throw new Error('no core yet: start the file with `new`');
    switch (cmd.name) {
      case 'at': onlyKeys(cmd, []); this.setTime(cmd.positional[0]); return [];
      case 'status': {
        onlyKeys(cmd, []);
        const st = core.status(this.now) as unknown as Record<string, unknown>;
        return [...Object.entries(st).map(([k, v]) => `${k}: ${fmtValue(v)}`), `isActive: ${core.isActive(this.now)}`];
      }
      case 'open':
        onlyKeys(cmd, []);
        return this.open.size === 0 ? ['none'] : [...this.open].map(([id, op]) => `#${id} ${nameOf(op)}`);
      default:
        return this.step(this.input(cmd));
    }
  }

  private create(cmd: Command): string[] {
    if (this.core !== null) throw new Error('one core per file');
    onlyKeys(cmd, ['instance', 'address', 'journal', 'preActive', 'raceDelayMs', 'noFailover', 'retryBackoffMs', 'retryBackoffMaxMs',
      'promotionsPerWindow', 'promotionWindowMs', 'maxLag', 'failsafe', 'resume', 'resumeWaitMs', 'at']);
    const g = (k: string) => cmd.kv.get(k);
    const n = (k: string, d: number) => (g(k) === undefined ? d : int(g(k)!, k));
    const s: ControllerSettings = {
      instance: g('instance') ?? DEFAULTS.instance,
      address: g('address') ?? DEFAULTS.address,
      hasJournal: g('journal') === undefined ? DEFAULTS.hasJournal : bool(g('journal')!, 'journal'),
      hasPreActiveHook: g('preActive') === undefined ? DEFAULTS.hasPreActiveHook : bool(g('preActive')!, 'preActive'),
      raceDelayMs: n('raceDelayMs', DEFAULTS.raceDelayMs),
      noFailover: g('noFailover') === undefined ? false : bool(g('noFailover')!, 'noFailover'),
      retryBackoffMs: n('retryBackoffMs', DEFAULTS.retryBackoffMs),
      retryBackoffMaxMs: n('retryBackoffMaxMs', DEFAULTS.retryBackoffMaxMs),
      promotionsPerWindow: n('promotionsPerWindow', DEFAULTS.promotionsPerWindow),
      promotionWindowMs: n('promotionWindowMs', DEFAULTS.promotionWindowMs),
    };
    if (g('maxLag') !== undefined) s.maxLagOnFailover = g('maxLag') === 'none' ? null : int(g('maxLag')!, 'maxLag');
    if (g('failsafe') !== undefined) s.failsafe = bool(g('failsafe')!, 'failsafe');
    if (g('resume') !== undefined) s.resume = { sessionId: big(g('resume')!, 'resume'), waitMs: n('resumeWaitMs', 6000) };
    else if (g('resumeWaitMs') !== undefined) throw new Error('resumeWaitMs= without resume=');
    this.now = n('at', 1000);
    this.core = new ControllerCore(s, this.now);
    return [`settings ${fmtFields(s as unknown as Record<string, unknown>)}`, this.phaseLine()];
  }

  private setTime(s: string | undefined): void {
    if (s === undefined) throw new Error('at: which time?');
    const t = int(s, 'time');
    if (t < this.now) throw new Error(`the clock goes back: ${t} < ${this.now}`);
    this.now = t;
  }

  private input(cmd: Command): ControllerInput {
    const p = cmd.positional;
    switch (cmd.name) {
      case 'tick':
        onlyKeys(cmd, []);
        if (p.length > 0) this.setTime(p[0]);
        return { kind: 'tick' };
      case 'health': {
        onlyKeys(cmd, []);
        const states: HealthState[] = ['initializing', 'healthy', 'unhealthy', 'not-responding'];
        if (!states.includes(p[0] as HealthState)) throw new Error(`health: state "${p[0]}" is not one of ${states.join(', ')}`);
        if (p.length < 2) throw new Error('health: give a reason after the state');
        return { kind: 'health', state: p[0] as HealthState, reason: p.slice(1).join(' ') };
      }
      case 'lag':
        onlyKeys(cmd, []);
        return { kind: 'lag', value: p[0] === 'none' ? null : int(p[0] ?? '', 'lag') };
      case 'session':
        if (p[0] === 'connected') {
          onlyKeys(cmd, ['sid', 'timeout']);
          return { kind: 'session', state: 'connected', sessionId: big(need(cmd, 'sid'), 'sid'), timeoutMs: int(need(cmd, 'timeout'), 'timeout') };
        }
        onlyKeys(cmd, []);
        if (p[0] === 'disconnected' || p[0] === 'expired') return { kind: 'session', state: p[0] };
        throw new Error(`session: "${p[0]}" is not connected, disconnected or expired`);
      case 'done': return this.done(cmd);
      case 'lockChanged': onlyKeys(cmd, []); return { kind: 'lockChanged' };
      case 'cede': onlyKeys(cmd, []); return { kind: 'cede', forMs: int(p[0] ?? '', 'cede') };
      case 'failoverTarget': {
        onlyKeys(cmd, []);
        if (p.length > 2 || (p[1] !== undefined && p[1] !== 'force')) throw new Error('failoverTarget <ms> [force]');
        return p[1] === 'force' ? { kind: 'failoverTarget', forMs: int(p[0] ?? '', 'failoverTarget'), force: true } : { kind: 'failoverTarget', forMs: int(p[0] ?? '', 'failoverTarget') };
      }
      case 'pause': onlyKeys(cmd, []); return { kind: 'pause' };
      case 'resume': onlyKeys(cmd, []); return { kind: 'resume' };
      default: throw new Error(`unknown command ${cmd.name}`);
    }
  }

  private done(cmd: Command): ControllerInput {
    const [target, verdict] = cmd.positional;
    if (target === undefined || cmd.positional.length !== 2) throw new Error('done <op name>|#<id> ok|fail [fields]');
    let op: number;
    if (target.startsWith('#')) {
      op = int(target.slice(1), 'op id');
      if (!this.open.has(op)) throw new Error(`op #${op} is not open (open: ${this.openList()})`);
    } else {
      const ids = [...this.open].filter(([, o]) => nameOf(o) === target).map(([id]) => id);
      if (ids.length === 0) throw new Error(`no open ${target} (open: ${this.openList()})`);
      op = Math.max(...ids);
    }
    this.open.delete(op);
    let result: OpResult;
    if (verdict === 'fail') {
      onlyKeys(cmd, ['reason', 'code']);
      const code = cmd.kv.get('code');
      if (code !== undefined && code !== 'NODEEXISTS' && code !== 'BADVERSION' && code !== 'NONODE') throw new Error(`code ${code}?`);
      result = code === undefined ? { ok: false, reason: need(cmd, 'reason') } : { ok: false, reason: need(cmd, 'reason'), code };
    } else if (verdict === 'ok') {
      onlyKeys(cmd, ['role', 'serviceEpoch', 'journalEpoch', 'epoch', 'detail', 'lock', 'crumb', 'version']);
      const r: Extract<OpResult, { ok: true }> = { ok: true };
      const g = (k: string) => cmd.kv.get(k);
      if (g('role') !== undefined) {
        if (!['standby', 'active', 'unknown'].includes(g('role')!)) throw new Error(`role ${g('role')}?`);
        r.role = g('role') as 'standby' | 'active' | 'unknown';
      }
      if (g('serviceEpoch') !== undefined) r.serviceEpoch = g('serviceEpoch') === 'null' ? null : int(g('serviceEpoch')!, 'serviceEpoch');
      if (g('journalEpoch') !== undefined) r.journalEpoch = int(g('journalEpoch')!, 'journalEpoch');
      if (g('epoch') !== undefined) r.epoch = int(g('epoch')!, 'epoch');
      if (g('detail') !== undefined) r.detail = g('detail');
      if (g('lock') !== undefined) {
        if (g('lock') === 'none') r.lock = null;
        else {
          const l = parsePairs(g('lock')!, 'lock');
          if (Object.keys(l).sort().join() !== 'czxid,owner') throw new Error('lock=owner:<sid>,czxid:<zxid>');
          r.lock = { owner: big(l.owner, 'owner'), czxid: big(l.czxid, 'czxid') };
        }
      }
      if (g('crumb') !== undefined) {
        const version = int(need(cmd, 'version'), 'version');
        if (g('crumb') === 'none') r.breadcrumb = { data: null, version };
        else {
          const c = parsePairs(g('crumb')!, 'crumb');
          if (Object.keys(c).sort().join() !== 'address,epoch,instance,token') throw new Error('crumb=instance:..,address:..,epoch:<n|null>,token:..');
          r.breadcrumb = { data: { instance: c.instance, address: c.address, epoch: c.epoch === 'null' ? null : int(c.epoch, 'epoch'), token: c.token }, version };
        }
      } else if (g('version') !== undefined) throw new Error('version= goes with crumb=');
      result = r;
    } else throw new Error(`done: "${verdict}" is not ok or fail`);
    return { kind: 'done', op, result };
  }

  private openList(): string {
    return [...this.open].map(([id, o]) => `#${id} ${nameOf(o)}`).join(', ') || 'none';
  }

  private step(input: ControllerInput): string[] {
    const effects = this.core!.step(input, this.now);
    for (const e of effects) if (e.kind === 'run') this.open.set(e.op, e.what);
    return [...effects.map(fmtControllerEffect), this.phaseLine()];
  }

  private phaseLine(): string {
    const core = this.core!;
    const st = core.status(this.now);
    let line = `-> phase=${st.phase} isActive=${core.isActive(this.now)} leaseUntil=${st.leaseValidUntil ?? 'none'}`;
    if (st.paused) line += ' paused=true';
    if (st.failsafe !== null) line += ` failsafe=${fmtValue(st.failsafe)}`;
    return line;
  }
}
