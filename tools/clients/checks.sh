# shellcheck shell=bash
# The check helpers of the client round trips, sourced by them: one `ok`/`FAIL`/`skip` line per check, and at the
# end `clients: N passed, N failed` (or CHECKS_LABEL's word), the line tools/test.sh totals. The sourcing script sets
# T (its temp dir).
PASSED=0 FAILED=0 N=0 START=$SECONDS
mkdir -p "$T/log"
pass() { PASSED=$((PASSED + 1)); printf 'ok    %s\n' "$1"; }
fail() { FAILED=$((FAILED + 1)); printf 'FAIL  %s%s\n' "$1" "${2:+ -- $2}"; }
skip() { printf 'skip  %s -- %s\n' "$1" "$2"; }
# check <name> <command...>: run, keep output in $OUT (and a log file), pass/fail on exit status.
check() {
  local name="$1"; shift
  N=$((N + 1)); LOG="$T/log/$N.log"
  if "$@" >"$LOG" 2>&1; then OUT="$(cat "$LOG")"; pass "$name"; return 0; fi
  OUT="$(cat "$LOG")"
  fail "$name" "$(grep -v '^\s*$' "$LOG" | tail -n 2 | tr '\n' ' ' | cut -c1-300)"
  return 1
}
# expect <name> <actual> <expected>
expect() {
  if [ -n "$2" ] && [ "$2" = "$3" ]; then pass "$1"; else fail "$1" "got '${2}', want '${3}'"; fi
}
# finish: the summary lines; exits 1 if anything failed.
finish() {
  echo "elapsed: $((SECONDS - START))s"
  echo "${CHECKS_LABEL:-clients}: $PASSED passed, $FAILED failed"
  [ "$FAILED" -eq 0 ]
  exit $?
}
sha() { echo "sha256:$(sha256sum "$1" | cut -d' ' -f1)"; }
# json <file> <python expression over d>  (prints result; "" on error)
json() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); v=eval(sys.argv[2]); print(v if not isinstance(v,(dict,list)) else json.dumps(v))' "$1" "$2" 2>/dev/null; }
