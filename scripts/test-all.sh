#!/usr/bin/env bash
# The whole test suite from a clean clone: install what the tests need
# (Debian packages and npm dependencies), build, run every test file, and end
# with one line "N passed, N failed". Exit status is non-zero if anything
# failed. This is what .ci/run runs and what the README's quick start gives.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/install-test-deps.sh || { echo "0 passed, 1 failed"; exit 1; }
npm run build --silent || { echo "build failed"; echo "0 passed, 1 failed"; exit 1; }

report="$(mktemp -t quorate-vitest.XXXXXX.json)"
# QUORATE_TEST_REPORT=F keeps vitest's JSON report (per-file durations) as F.
trap '[ -n "${QUORATE_TEST_REPORT:-}" ] && cp "$report" "$QUORATE_TEST_REPORT"; rm -f "$report"' EXIT
npx vitest run --reporter=default --reporter=json --outputFile.json="$report" "$@"
status=$?

if [ -s "$report" ]; then
  node -e '
    const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    const failedSuites = (r.testResults || []).filter((s) => s.status === "failed" && (s.assertionResults || []).every((a) => a.status !== "failed")).length;
    console.log(`${r.numPassedTests} passed, ${r.numFailedTests + failedSuites} failed` + (r.numPendingTests ? `, ${r.numPendingTests} skipped` : ""));
  ' "$report"
else
  echo "0 passed, 1 failed"
  status=1
fi
exit $status
