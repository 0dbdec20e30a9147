// Every bound `quorate demo` keeps, in one place. Units last in names. The
// demo runs on a laptop or on 2 busy CI cores: start bounds are generous,
// restart delays short enough to watch.

export const DEMO_LIMITS = {
  instances_min: 2,
  instances_max: 5,
  instances_default: 2,
  /** Base ports stay clear of privileged ports and of the top of the range (the block needs block_ports above the base). */
  base_port_min: 1024,
  base_port_max: 60_000,
  /** Where a free block is looked for when no --base-port is given: below the tests' freePort slices (20000-32000) and the kernel's ephemeral ports. */
  auto_base_port_from: 10_000,
  auto_base_port_to: 19_000,
  auto_base_port_attempts: 50,
  /** One part (a quorum server, a journal node, ...) must answer within this after it is started. */
  start_wait_ms: 30_000,
  /** After every part answers: until exactly one instance is active. */
  active_wait_ms: 30_000,
  poll_interval_ms: 200,
  probe_timeout_ms: 1_000,
  /** A child that died is started again after this (the other instance takes over meanwhile; a crash loop is not a busy loop). */
  restart_delay_ms: 3_000,
  /** A child that dies within healthy_run_ms of its start waits twice as long as last time, up to restart_delay_ms_max. */
  restart_delay_ms_max: 30_000,
  healthy_run_ms: 10_000,
  /** After a restart: how long the demo waits to say the part answers again (it only reports; it does not act on it). */
  rejoin_report_wait_ms: 30_000,
  /** Stop: SIGTERM, this long for the children to exit, then SIGKILL and kill_wait_ms more. */
  stop_wait_ms: 10_000,
  kill_wait_ms: 2_000,
  /** Lines of a failing part's log shown with its error. */
  log_tail_lines: 20,
  log_tail_bytes_max: 64 * 1024,
} as const;
