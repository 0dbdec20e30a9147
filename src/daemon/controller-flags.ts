// The Node and V8 settings a controller process runs with. Kept apart from
// daemon-spec.ts (which loads clients) so that the `quorate` command can read
// them before it loads anything else.

/**
 * Node flags a controller runs with (--daemon adds them; the systemd unit sets
 * the same in NODE_OPTIONS; the failover benchmark uses them): a controller
 * allocates little and often, and V8's default young generation (semi-spaces
 * growing to 16 MB each) keeps tens of MB resident for it. 1 MB semi-spaces
 * cost a few more scavenges of a small heap. The operator's own flags
 * (the parent's execArgv) come after these, so theirs win.
 */
export const CONTROLLER_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=1'];

/**
 * V8 settings `quorate controller start` sets on itself before it loads any other module (Node
 * refuses them in NODE_OPTIONS, so the systemd unit could not give them): no optimizing
 * compilers, and V8's choices that favour size over speed. A controller spends its time waiting;
 * what the optimizing compilers cost it is memory, mostly from optimizing the code that runs while
 * the modules load and the configuration is parsed: a running controller holds 4-7 MB less
 * without them (`npm run bench -- failover`, 4 alternating runs each: 58.3-60.1 MB against
 * 62.7-67.1; idle CPU 1.8-2.4 % of a core against 1.1-2.3). Set later, once the configuration
 * is parsed, they saved 0-3 MB. --no-lazy as well (compile every function as its module loads)
 * made the first failover after a start faster but cost 3-4 MB: not set. A process started
 * with its own value for one of them (`node --turbofan ...`) keeps it.
 */
export const CONTROLLER_V8_FLAGS: readonly string[] = ['--no-turbofan', '--no-maglev', '--optimize-for-size'];
