// conf/prometheus-alerts.yml and conf/grafana-dashboard.json against the code:
// the rules file has Prometheus's shape (groups of rules with alert, expr,
// for, a severity and annotations) and the alerts the README promises; every
// metric either file names, and every label it selects or groups by, is one
// our daemons register — the names are collected from the controller's, the
// journal node's and the quorum server's registries built here (the quorum's
// are Apache ZooKeeper's names), so renaming a metric or a label fails this
// test. promtool is not on the build hosts; this is the check.
import fs from 'node:fs';
import path from 'node:path';
import type { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { ControllerMetrics } from '../../src/controller/controller-metrics.js';
import { ControllerCore } from '../../src/core/controller/controller-core.js';
import { JournalMetrics } from '../../src/journal/journal-metrics.js';
import { QuorumMetrics } from '../../src/quorum/quorum-metrics.js';
import { parsePromText } from '../helpers/prom-text.js';

const CONF = path.resolve(__dirname, '../../conf');

/** Metric name -> the label names its samples can carry. */
type Known = Map<string, Set<string>>;

/**
 * Every series name a registry can expose (histograms' and summaries' _sum and _count too), with
 * its labels and, when `scrape`, the registry's default labels (read from a scrape).
 */
async function namesOf(registry: Registry, scrape = true): Promise<Known> {
  const text = scrape ? parsePromText(await registry.metrics()) : null;
  const defaults = Object.keys(text?.all('process_cpu_user_seconds_total')[0]?.labels ?? {});
  const out: Known = new Map();
  for (const m of registry.getMetricsAsArray() as unknown as { name: string; type: string; labelNames?: string[] }[]) {
    const labels = new Set([...(m.labelNames ?? []), ...defaults]);
    if (m.type === 'histogram') {
      out.set(`${m.name}_bucket`, new Set([...labels, 'le']));
      out.set(`${m.name}_sum`, labels);
      out.set(`${m.name}_count`, labels);
    } else if (m.type === 'summary') {
      out.set(m.name, new Set([...labels, 'quantile']));
      out.set(`${m.name}_sum`, labels);
      out.set(`${m.name}_count`, labels);
    } else {
      out.set(m.name, labels);
    }
  }
  return out;
}

async function ourMetrics(): Promise<{ controller: Known; journal: Known; quorum: Known }> {
  const core = new ControllerCore({
    instance: 'a', address: 'a:8019', hasJournal: true, hasPreActiveHook: false, raceDelayMs: 0, noFailover: false,
    retryBackoffMs: 1000, retryBackoffMaxMs: 8000, promotionsPerWindow: 3, promotionWindowMs: 60_000,
  }, 0);
  const controller = new ControllerMetrics({ service: 'orders', instance: 'a' }, core, () => 0);
  const journal = new JournalMetrics({ journals: () => [] }, 1);
  // A member of a replicated quorum with TLS registers every name it has (a leader's included); not scraped here: no server behind it.
  const q = new QuorumMetrics(() => { throw new Error('not scraped in this test'); }, { processMetrics: true, quorum: true, tls: true });
  const quorum = await namesOf(q.registry, false);
  q.stop();
  return { controller: await namesOf(controller.registry), journal: await namesOf(journal.registry), quorum };
}

/** What Prometheus adds to every target and series. */
const TARGET_LABELS = ['job', 'instance'];
const PROMETHEUS: Known = new Map([['up', new Set(TARGET_LABELS)]]);

const KEYWORDS = new Set(['and', 'or', 'unless', 'bool', 'offset']);
const GROUPING = /\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)/g;

/** The series an expression selects (name and the labels its matchers name), and the labels it groups or matches on. */
function parsePromQl(expr: string): { selectors: { name: string; labels: string[] }[]; grouping: string[] } {
  let e = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""').replace(/\[[^\]]*\]/g, '');
  const grouping = [...e.matchAll(GROUPING)].flatMap((m) => m[2].split(',').map((l) => l.trim()).filter((l) => l !== ''));
  e = e.replace(GROUPING, ' ');
  const selectors: { name: string; labels: string[] }[] = [];
  for (const m of e.matchAll(/(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\{[^}]*\})?(\s*\()?/g)) {
    if (m[3] !== undefined || KEYWORDS.has(m[1])) continue; // a function, an aggregation, an operator
    const labels = m[2] === undefined ? [] : [...m[2].matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)/g)].map((x) => x[1]);
    selectors.push({ name: m[1], labels });
  }
  return { selectors, grouping };
}

/** What is wrong with an expression's names against the known series (empty: nothing). */
function problems(expr: string, known: Known): string[] {
  const out: string[] = [];
  let depth = 0;
  for (const ch of expr) { if ('({['.includes(ch)) depth++; if (')}]'.includes(ch)) depth--; if (depth < 0) break; }
  if (depth !== 0) out.push(`unbalanced brackets in ${expr}`);
  const { selectors, grouping } = parsePromQl(expr);
  if (selectors.length === 0) out.push(`no metric in ${expr}`);
  const labelsHere = new Set<string>(TARGET_LABELS);
  for (const s of selectors) {
    const labels = known.get(s.name);
    if (labels === undefined) { out.push(`${s.name} is not a metric our daemons register`); continue; }
    for (const l of labels) labelsHere.add(l);
    for (const l of s.labels) if (!labels.has(l) && !TARGET_LABELS.includes(l)) out.push(`${s.name} has no label ${l} (it has ${[...labels].join(', ')})`);
  }
  for (const l of grouping) if (!labelsHere.has(l)) out.push(`${expr}: groups by ${l}, which none of its series has`);
  return out;
}

const merge = (...ks: Known[]): Known => new Map(ks.flatMap((k) => [...k]));

describe('parsePromQl (the checker itself)', () => {
  it('finds the series, their matchers and the grouping labels; skips functions, strings and ranges', () => {
    const r = parsePromQl('histogram_quantile(0.99, sum by (le, job) (rate(a_bucket{x=~"b|c", y!="by (z)"}[5m]))) > on (job) max by (job) (q) unless d');
    expect(r.selectors).toEqual([{ name: 'a_bucket', labels: ['x', 'y'] }, { name: 'q', labels: [] }, { name: 'd', labels: [] }]);
    expect(r.grouping).toEqual(['le', 'job', 'job', 'job']);
  });
  it('reports an unknown metric, an unknown label and a grouping label no series has', () => {
    const known: Known = new Map([['m', new Set(['a'])]]);
    expect(problems('sum by (a) (m{a="1"})', known)).toEqual([]);
    expect(problems('m_renamed', known)).toEqual(['m_renamed is not a metric our daemons register']);
    expect(problems('m{b="1"}', known)).toEqual(['m has no label b (it has a)']);
    expect(problems('sum by (c) (m)', known)).toEqual(['sum by (c) (m): groups by c, which none of its series has']);
    expect(problems('sum(m', known)).toContain('unbalanced brackets in sum(m');
  });
});

interface Rule { alert: string; expr: string; for: string; labels: { severity: string }; annotations: { summary: string; description: string } }

describe('conf/prometheus-alerts.yml', () => {
  const doc = YAML.parse(fs.readFileSync(path.join(CONF, 'prometheus-alerts.yml'), 'utf8')) as { groups: { name: string; rules: Rule[] }[] };

  it('has Prometheus\'s shape: named groups of rules with alert, expr, for, a severity and a summary and description', () => {
    expect(Object.keys(doc)).toEqual(['groups']);
    expect(doc.groups.length).toBeGreaterThan(0);
    expect(new Set(doc.groups.map((g) => g.name)).size).toBe(doc.groups.length);
    const alerts = doc.groups.flatMap((g) => g.rules);
    expect(new Set(alerts.map((r) => r.alert)).size).toBe(alerts.length);
    for (const g of doc.groups) {
      expect(typeof g.name).toBe('string');
      expect(g.rules.length, g.name).toBeGreaterThan(0);
      for (const r of g.rules) {
        expect(Object.keys(r).sort(), r.alert).toEqual(['alert', 'annotations', 'expr', 'for', 'labels']);
        expect(r.alert).toMatch(/^Quorate[A-Z][A-Za-z]+$/);
        expect(typeof r.expr, r.alert).toBe('string');
        expect(r.for, r.alert).toMatch(/^\d+(ms|s|m|h|d)$/);
        expect(['critical', 'warning', 'info'], r.alert).toContain(r.labels.severity);
        expect(Object.keys(r.annotations).sort(), r.alert).toEqual(['description', 'summary']);
        expect(r.annotations.summary.length, r.alert).toBeGreaterThan(10);
        expect(r.annotations.description.length, r.alert).toBeGreaterThan(20);
      }
    }
  });

  it('names only metrics and labels our daemons (or Prometheus) have; its messages only labels the result keeps', async () => {
    const { controller, journal, quorum } = await ourMetrics();
    const known = merge(controller, journal, quorum, PROMETHEUS);
    for (const r of doc.groups.flatMap((g) => g.rules)) {
      expect(problems(r.expr, known), r.alert).toEqual([]);
      // An aggregation keeps its grouping labels only; a plain selector keeps its series' labels.
      const { selectors, grouping } = parsePromQl(r.expr);
      const kept = /^\s*(sum|max|min|count|avg|histogram_quantile)\b/.test(r.expr)
        ? new Set(grouping)
        : new Set([...TARGET_LABELS, ...selectors.flatMap((x) => [...(known.get(x.name) ?? [])])]);
      for (const m of `${r.annotations.summary} ${r.annotations.description}`.matchAll(/\$labels\.([a-z_]+)/g)) expect([...kept], `${r.alert}: {{ $labels.${m[1]} }}`).toContain(m[1]);
    }
  });

  it('has the alerts an operator needs: no active, two actives, a controller without a session, a lagging journal node, a quorum without a leader', () => {
    const byName = new Map(doc.groups.flatMap((g) => g.rules).map((r) => [r.alert, r]));
    const uses = (alert: string, ...metrics: string[]) => {
      const r = byName.get(alert);
      expect(r, alert).toBeDefined();
      expect(parsePromQl(r!.expr).selectors.map((s) => s.name).sort(), alert).toEqual([...metrics].sort());
      return r!;
    };
    expect(uses('QuorateNoActiveInstance', 'quorate_controller_active').expr).toMatch(/sum by \(service\) \(quorate_controller_active\) == 0/);
    expect(uses('QuorateMoreThanOneActive', 'quorate_controller_active').expr).toMatch(/> 1$/);
    uses('QuorateControllerSessionDisconnected', 'quorate_controller_session_connected');
    uses('QuorateJournalNodeLagging', 'quorate_journal_lag_txids');
    uses('QuorateQuorumWithoutLeader', 'quorum_size', 'synced_followers', 'quorum_size');
    expect(byName.get('QuorateNoActiveInstance')!.labels.severity).toBe('critical');
    expect(byName.get('QuorateMoreThanOneActive')!.labels.severity).toBe('critical');
  });
});

interface Panel { id: number; type: string; title: string; datasource?: { uid: string }; gridPos: { x: number; y: number; w: number; h: number }; targets?: { expr: string; refId: string }[]; panels?: Panel[] }

describe('conf/grafana-dashboard.json', () => {
  const dash = JSON.parse(fs.readFileSync(path.join(CONF, 'grafana-dashboard.json'), 'utf8')) as {
    title: string; uid: string; schemaVersion: number; panels: Panel[]; templating: { list: { name: string; type: string; query: unknown }[] };
  };
  const all = dash.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
  const panels = all.filter((p) => p.type !== 'row');

  it('is a dashboard Grafana imports: a uid, unique panel ids, panels inside the 24-column grid, each with a datasource and queries', () => {
    expect(dash.title).toBe('Quorate');
    expect(dash.uid).toMatch(/^[a-z0-9-]{1,40}$/);
    expect(dash.schemaVersion).toBeGreaterThanOrEqual(36);
    expect(new Set(all.map((p) => p.id)).size).toBe(all.length);
    expect(panels.length).toBeGreaterThan(10);
    for (const p of panels) {
      expect(p.gridPos.x + p.gridPos.w, p.title).toBeLessThanOrEqual(24);
      expect(p.datasource?.uid, p.title).toBe('${datasource}');
      expect(p.targets?.length, p.title).toBeGreaterThan(0);
      expect(new Set(p.targets!.map((t) => t.refId)).size, p.title).toBe(p.targets!.length);
    }
  });

  it('uses only the variables it defines', () => {
    const defined = new Set(dash.templating.list.map((v) => v.name));
    const used = new Set([...JSON.stringify(dash.panels).matchAll(/\$\{?([a-z_]+)\}?/g)].map((m) => m[1]));
    for (const v of used) expect(defined, `$${v}`).toContain(v);
    expect(defined).toEqual(new Set(['datasource', 'service', 'journal']));
  });

  it('queries only metrics and labels our controllers, journal nodes and quorum servers register', async () => {
    const { controller, journal, quorum } = await ourMetrics();
    const known = merge(controller, journal, quorum);
    for (const p of panels) for (const t of p.targets!) expect(problems(t.expr, known), `${p.title}: ${t.expr}`).toEqual([]);
    // The variables' queries too.
    for (const v of dash.templating.list.filter((x) => x.type === 'query')) {
      const q = (v.query as { query: string }).query;
      const m = /^label_values\(([a-z_]+), ([a-z_]+)\)$/.exec(q);
      expect(m, q).not.toBeNull();
      expect(known.get(m![1])?.has(m![2]), q).toBe(true);
    }
  });

  it('shows the three daemons: who is active and failovers; committed txid, lag and fsync; the quorum\'s leader', () => {
    const exprs = panels.flatMap((p) => p.targets!.map((t) => t.expr)).join('\n');
    for (const m of ['quorate_controller_active', 'quorate_controller_failover_seconds_bucket', 'quorate_controller_fence_attempts_total', 'quorate_controller_health_check_seconds_bucket',
      'quorate_controller_transitions_total', 'quorate_controller_lease_remaining_seconds', 'quorate_journal_committed_txid', 'quorate_journal_lag_txids', 'quorate_journal_fsync_seconds_bucket',
      'quorate_journal_batch_records_sum', 'quorate_journal_refusals_total', 'quorate_journal_catch_up_edits_total', 'synced_followers', 'quorum_size', 'readlatency']) {
      expect(exprs, m).toContain(m);
    }
  });
});
