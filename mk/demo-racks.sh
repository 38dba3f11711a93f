#!/bin/sh
# make demo-racks: a hub and two racks as three `hilfarm serve` processes on
# loopback, the example farm's two sim boards split between the racks, and
# the demo's jobs submitted to the hub only (as CI would) reaching their
# verdicts on the racks. Everything lives in a temporary directory and every
# process is stopped on exit. DEMO_RACKS_ONESHOT=1 exits after the jobs;
# otherwise the farm keeps serving until Ctrl-C.
set -eu
bin=$(cd "$(dirname "$0")/.." && pwd)/bin/hilfarm
ex=$(cd "$(dirname "$0")/../examples" && pwd)
dir=$(mktemp -d "${TMPDIR:-/tmp}/hilfarm-demo-racks-XXXXXX")
pids=""
stop() {
	for p in $pids; do kill -TERM "$p" 2>/dev/null || true; done
	for p in $pids; do wait "$p" 2>/dev/null || true; done
	rm -rf "$dir"
}
trap stop EXIT
trap 'exit 130' INT TERM

# free_port: a TCP port nothing listens on now.
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
# wait_for FILE TEXT: until the log FILE has TEXT (60 s at most).
wait_for() {
	i=0
	until grep -aq "$2" "$1"; do
		i=$((i + 1))
		if [ "$i" -gt 600 ]; then echo "demo-racks: no '$2' in $1:" >&2; cat "$1" >&2; exit 1; fi
		sleep 0.1
	done
}

http=$(free_port); leaf=$(free_port)
"$bin" ca init --dir "$dir/ca" --host 127.0.0.1 >/dev/null
mkdir -p "$dir/hub"
cat >"$dir/hub/farm.hcl" <<HCL
farm "front" {
  listen   = "127.0.0.1:$http"
  data_dir = "data"
}
hub {
  listen = "127.0.0.1:$leaf"
  dir    = "$dir/ca"
}
HCL
(cd "$dir/hub" && exec "$bin" serve --farm farm.hcl >serve.log 2>&1) &
pids="$pids $!"
wait_for "$dir/hub/serve.log" "hilfarm serving"
echo "hub:  http://127.0.0.1:$http (racks dial tls://127.0.0.1:$leaf)"

n=1
for r in r1 r2; do
	"$bin" rack add "$r" --type sim --dir "$dir/ca" >/dev/null
	mkdir -p "$dir/$r"
	cp -r "$ex/firmware" "$dir/$r/firmware"
	port=$(free_port)
	cat >"$dir/$r/farm.hcl" <<HCL
farm "$r" {
  listen   = "127.0.0.1:$port"
  data_dir = "data"
}
board_type "sim" {}
board "sim-0$n" {
  type = "sim"
  emulator "sim" {
    firmware = "firmware/sim-good.hcl"
  }
  gpio "button" {
    output = true
  }
  gpio "led" {}
}
rack "$r" {
  hub         = "tls://127.0.0.1:$leaf"
  credentials = "$dir/ca/bundles/$r"
}
HCL
	(cd "$dir/$r" && exec "$bin" serve --farm farm.hcl >serve.log 2>&1) &
	pids="$pids $!"
	wait_for "$dir/$r/serve.log" "rack agent started"
	echo "rack: $r with board sim-0$n, http://127.0.0.1:$port"
	n=$((n + 1))
done

token=$("$bin" token create --data "$dir/hub/data" --name demo --role admin 2>/dev/null)
# submit N FIRMWARE SPEC: submit to the hub and wait for the verdict (in
# the background, so that both racks get work).
submit() {
	(
		code=0
		"$bin" submit --server "http://127.0.0.1:$http" --token "$token" --quiet \
			--firmware "$ex/firmware/$2" --spec "$ex/specs/$3" --wait >"$dir/submit$1.out" 2>&1 || code=$?
		job=$(grep -ao '/jobs/[A-Za-z0-9_-]*' "$dir/submit$1.out" | head -1 | cut -d/ -f3)
		verdict=$("$bin" job --server "http://127.0.0.1:$http" --token "$token" --json "$job" |
			python3 -c 'import json,sys; j=json.load(sys.stdin); print(j["state"] + ": " + j.get("reason",""))')
		printf '  %-18s %-14s exit %d, %s\n' "$2" "$3" "$code" "$verdict" >"$dir/verdict$1"
	) &
	jobs_pids="$jobs_pids $!"
}
jobs_pids=""
echo "jobs submitted to the hub (hilfarm submit --wait):"
submit 1 sim-good.hcl boot-smoke.hcl
submit 2 sim-good.hcl measure.hcl
submit 3 sim-regressed.hcl measure.hcl
for p in $jobs_pids; do wait "$p"; done
cat "$dir/verdict1" "$dir/verdict2" "$dir/verdict3"
echo "admin token for the hub: $token"
if [ "${DEMO_RACKS_ONESHOT:-}" = 1 ]; then exit 0; fi
echo "serving; Ctrl-C stops the hub and both racks"
wait
