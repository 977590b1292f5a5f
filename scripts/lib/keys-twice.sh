# Sourced by scripts/keys-callgrind and scripts/keys-syscalls: the part
# they share. Each wraps the processes it measures in its own wrappers,
# then calls `keys_twice`, and reads what the wrappers wrote over 50 and
# over 250 keys (the difference over 200 keys: start-up and shutdown
# cancel out).

# keys_twice NAME OUT TTYD TTYD_WRAPPER [VAR=VALUE ...]: builds the load
# tool and runs its keystroke case (LOAD_ONLY=keys, one run) with 50 and
# with 250 keys, its output in OUT/load.50.txt and OUT/load.250.txt, the
# VAR=VALUE pairs (LOAD_BRIDGE, LOAD_RELAY: the wrappers) in its
# environment and TTYD_WRAPPER as its ttyd; without ttyd at TTYD, ttyd is
# left out (say so on standard error). Exits on failure.
keys_twice() {
  local name=$1 out=$2 ttyd=$3 ttyd_wrapper=$4 load keys
  shift 4
  if [ ! -x "$ttyd" ]; then
    echo "$name: no ttyd at $ttyd; its row is left out" >&2
    ttyd_wrapper=$out/no-ttyd
  fi
  load=$(cargo bench -p benches --bench load --no-run 2>&1 |
    sed -n 's/.*Executable .*(\(.*load-[0-9a-f]*\))$/\1/p' | tail -1)
  [ -n "$load" ] || { echo "$name: could not build the load tool" >&2; exit 1; }
  for keys in 50 250; do
    (cd benches && env "$@" LOAD_KEYS=$keys LOAD_RUNS=1 LOAD_ONLY=keys \
      TTYD="$ttyd_wrapper" "$PWD/../$load" --bench >"$out/load.$keys.txt" 2>&1) ||
      { cat "$out/load.$keys.txt" >&2; exit 1; }
  done
}
