// Which daemon of the cluster file a per-process verb means (`quorate quorum|
// journal|controller start|stop|status`, and `quorate cluster local-status`,
// which asks after several at once): its configuration, its spec (how it is
// started, found and probed) and its run directory.
import { loadClusterFile, loadJournalConfig, loadRunDir, type JournalNodeConfig } from '../config/cluster-file.js';
import { loadControllerConfig, type ControllerConfig } from '../config/controller-config.js';
import type { QuorumServerConfig } from '../config/quorum-config.js';
import { loadZooCfg } from '../config/zoo-cfg.js';
import { controllerSpec, journalSpec, quorumSpec, type DaemonSpec } from '../daemon/daemon-spec.js';
import { runDirFor, type DaemonFlags } from './daemon-verbs.js';
import { UsageError } from './errors.js';

export function loadQuorumConfig(opts: { config?: string; id?: number; zooCfg?: string }): { quorum: QuorumServerConfig; warnings: string[] } {
  if (opts.zooCfg && opts.config) throw new UsageError('give either --config FILE --id N or --zoo-cfg FILE, not both');
  if (opts.zooCfg) return loadZooCfg(opts.zooCfg);
  if (!opts.config) throw new UsageError('no configuration: give --config FILE --id N, or --zoo-cfg FILE');
  if (opts.id === undefined) throw new UsageError('--config needs --id N: which server of the cluster file this process is');
  return loadClusterFile(opts.config, opts.id);
}

export interface QuorumProcessOpts extends DaemonFlags { config?: string; id?: number; zooCfg?: string }

export function quorumProcess(opts: QuorumProcessOpts): { quorum: QuorumServerConfig; warnings: string[]; spec: DaemonSpec; runDir: string } {
  const { quorum, warnings } = loadQuorumConfig(opts);
  const spec = quorumSpec(quorum, opts.zooCfg !== undefined ? { zooCfg: opts.zooCfg } : { config: opts.config! });
  return { quorum, warnings, spec, runDir: runDirFor(opts.runDir, opts.config !== undefined ? loadRunDir(opts.config) : null) };
}

export interface JournalProcessOpts extends DaemonFlags { config: string; id?: number }

export function journalProcess(opts: JournalProcessOpts): { config: JournalNodeConfig; spec: DaemonSpec; runDir: string } {
  if (opts.id === undefined) throw new UsageError('--id N is needed: which journal node of the cluster file this is');
  const config = loadJournalConfig(opts.config, opts.id);
  return { config, spec: journalSpec(config, opts.config), runDir: runDirFor(opts.runDir, loadRunDir(opts.config)) };
}

export interface ControllerProcessOpts extends DaemonFlags { config: string; service: string; id: string; release?: boolean }

export function controllerProcess(opts: ControllerProcessOpts): { cfg: ControllerConfig; spec: DaemonSpec; runDir: string; chosenRunDir: string | null } {
  const cfg = loadControllerConfig(opts.config, opts.service, opts.id);
  const fromFile = loadRunDir(opts.config);
  return { cfg, spec: controllerSpec(cfg, opts.config), runDir: runDirFor(opts.runDir, fromFile), chosenRunDir: opts.runDir ?? fromFile };
}
