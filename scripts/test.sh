#!/usr/bin/env bash
# `make test`: everything CI checks, in order, stopping at the first failure.
#
#  1. tools      install into .tools/ what is missing (scripts/tools.sh test)
#  2. engines    start DynamoDB Local and moto server on free loopback ports;
#                they are stopped on exit, failure and Ctrl-C
#  3. fmt        cargo fmt --all -- --check
#  4. clippy     cargo clippy --workspace --all-targets -- -D warnings
#  5. build      cargo build of the local stack and of the one Lambda binary a
#                step runs (`health`, for smoke): the other function binaries are
#                four lines each, type-checked by clippy, not linked
#  6. test       cargo test --workspace --exclude functions (the binaries have
#                no tests: no empty harness is linked), with PREMISES_TEST_* pointing the
#                adapter suites at the engines (each suite runs embedded and
#                against the engine)
#  7. smoke      the real `health` binary under a Lambda Runtime API stand-in
#  8. api        the local stack (`premises`) on free ports: /api/schema/
#                validated as OpenAPI 3.1, schemathesis over every documented
#                operation with an admin and a member token, and Swagger UI and
#                ReDoc rendered in headless Chromium with no network
#  9. template   cfn-lint and sam validate --lint on template.yaml and every stacks/*.yaml
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
TOOLS="$ROOT/.tools"
LOGS="$TOOLS/logs"
VENV="$TOOLS/venv"

STEPS=()
PIDS=()
STARTED=$SECONDS
CURRENT=""

if [[ -t 1 ]]; then BOLD=$'\033[1m' RED=$'\033[1;31m' RESET=$'\033[0m'; else BOLD="" RED="" RESET=""; fi
log() { printf '\n%s==> %s%s\n' "$BOLD" "$*" "$RESET"; }
fail() {
	printf '\n%smake test FAILED at step "%s": %s%s\n' "$RED" "$CURRENT" "$*" "$RESET" >&2
	summary
	exit 1
}

summary() {
	[[ ${#STEPS[@]} -gt 0 ]] || return 0
	printf '\n%s\n' "---- make test summary ----"
	printf '  %s\n' "${STEPS[@]}"
	printf '  total %ss\n' "$((SECONDS - STARTED))"
}

# step NAME COMMAND...: runs one step, recording its time, or fails naming it.
step() {
	CURRENT=$1
	shift
	log "$CURRENT: ${DESC:-$*}"
	local t0=$SECONDS
	"$@" || fail "\`$*\` exited with $?"
	STEPS+=("$(printf '%-9s ok  %4ss' "$CURRENT" "$((SECONDS - t0))")")
}

# ------------------------------------------------------------------ engines

stop_engines() {
	local pid
	for pid in "${PIDS[@]}"; do
		kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in "${PIDS[@]}"; do
		for _ in $(seq 50); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	PIDS=()
}

on_exit() {
	local rc=$?
	stop_engines
	exit "$rc"
}
trap on_exit EXIT
trap 'echo; echo "make test: interrupted" >&2; exit 130' INT
trap 'exit 143' TERM

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_http NAME PID URL SECONDS: until URL answers anything over HTTP.
wait_http() {
	local name=$1 pid=$2 url=$3 secs=$4
	python3 - "$pid" "$url" "$secs" <<'EOF' || return 1
import os, sys, time, urllib.error, urllib.request
pid, url, secs = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
deadline = time.monotonic() + secs
while time.monotonic() < deadline:
    try:
        os.kill(pid, 0)
    except OSError:
        sys.exit(f"the process exited before answering on {url}")
    try:
        urllib.request.urlopen(url, timeout=1).read()
        sys.exit(0)
    except urllib.error.HTTPError:
        sys.exit(0)  # any HTTP answer means it is up
    except OSError:
        time.sleep(0.1)
sys.exit(f"no answer on {url} within {secs:.0f}s")
EOF
	echo "$name is up on $url"
}

# start_engine NAME URL-PATH COMMAND... (with PORT in the command replaced): on a
# free port, in its own process group, retrying if the port was taken meanwhile.
start_engine() {
	local name=$1 path=$2
	shift 2
	local attempt port pid args
	for attempt in 1 2 3; do
		port="$(free_port)"
		args=("${@//PORT/$port}")
		setsid "${args[@]}" >"$LOGS/$name.log" 2>&1 </dev/null &
		pid=$!
		PIDS+=("$pid")
		if wait_http "$name" "$pid" "http://127.0.0.1:$port$path" 60; then
			ENGINE_URL="http://127.0.0.1:$port"
			return 0
		fi
		echo "$name did not come up (attempt $attempt); its log:" >&2
		tail -20 "$LOGS/$name.log" >&2 || true
	done
	return 1
}

start_engines() {
	mkdir -p "$LOGS"
	local ddb
	ddb="$(bash "$ROOT/scripts/tools.sh" dynamodb-dir)" || fail "DynamoDB Local is not installed in .tools/dynamodb"
	start_engine dynamodb-local / \
		java "-Djava.library.path=$ddb/DynamoDBLocal_lib" -jar "$ddb/DynamoDBLocal.jar" -inMemory -port PORT ||
		fail "DynamoDB Local did not start (log: $LOGS/dynamodb-local.log)"
	export PREMISES_TEST_DYNAMODB_ENDPOINT=$ENGINE_URL
	start_engine moto /moto-api/ "$VENV/bin/moto_server" -H 127.0.0.1 -p PORT ||
		fail "moto server did not start (log: $LOGS/moto.log)"
	export PREMISES_TEST_MOTO_ENDPOINT=$ENGINE_URL
	export PREMISES_TEST_REQUIRE_ENGINES=1
	echo "PREMISES_TEST_DYNAMODB_ENDPOINT=$PREMISES_TEST_DYNAMODB_ENDPOINT"
	echo "PREMISES_TEST_MOTO_ENDPOINT=$PREMISES_TEST_MOTO_ENDPOINT"
}

# -------------------------------------------------------------------- steps

check_rust() {
	command -v cargo >/dev/null || fail "cargo is not installed (Rust 1.88+)"
	cargo fmt --version >/dev/null 2>&1 || fail "rustfmt is missing (rustup component add rustfmt)"
	cargo clippy --version >/dev/null 2>&1 || fail "clippy is missing (rustup component add clippy)"
}

build() {
	cargo build --workspace --exclude functions && cargo build -p functions --bin health
}

cargo_test() {
	local out="$LOGS/cargo-test.log"
	cargo test --workspace --exclude functions 2>&1 | tee "$out"
	local rc=${PIPESTATUS[0]}
	# Sum the per-binary "test result:" lines for the summary.
	TEST_TOTALS="$(awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i; if ($(i+1) ~ /^ignored/) g += $i } }
		END { printf "%d passed, %d failed, %d ignored", p, f, g }' "$out")"
	return "$rc"
}

smoke() {
	python3 "$ROOT/scripts/lambda_runtime.py" smoke --binary "${CARGO_TARGET_DIR:-$ROOT/target}/debug/health" --function-name health
}

# ------------------------------------------------------------ API reference

# The local stack on free ports, in its own data directory, with an admin.
start_stack() {
	local data="$TOOLS/api-data"
	rm -rf "$data"
	mkdir -p "$data"
	start_engine premises /health/ env PREMISES_HTTP_ADDR=127.0.0.1:PORT PREMISES_MQTT_ADDR=127.0.0.1:0 \
		PREMISES_DATA_DIR="$data" PREMISES_STORE=embedded PREMISES_QUEUE=embedded PREMISES_SCHEDULES=false \
		PREMISES_ENV=dev PREMISES_ADMIN_EMAIL=admin@premises.test PREMISES_ADMIN_PASSWORD=Admin-pass-12345 \
		"${CARGO_TARGET_DIR:-$ROOT/target}/debug/premises" serve || return 1
	STACK_URL=$ENGINE_URL
}

# access_token PATH JSON: the `tokens.access` of a login or registration answer.
access_token() {
	curl -fsS -X POST -H 'Content-Type: application/json' -d "$2" "$STACK_URL$1" |
		python3 -c 'import json, sys; print(json.load(sys.stdin)["tokens"]["access"])'
}

# schemathesis over every documented operation, once per token: seeded, a fixed number of
# cases per operation (so a failure reproduces with the same seed), and a hard time limit.
SCHEMATHESIS_SEED=${SCHEMATHESIS_SEED:-20261201}
fuzz_api() {
	local as=$1 token=$2
	echo "schemathesis as $as (seed $SCHEMATHESIS_SEED; reproduce with SCHEMATHESIS_SEED=$SCHEMATHESIS_SEED)"
	# schemathesis keeps a crash cache in ./.schemathesis; a fresh one per run keeps runs reproducible.
	rm -rf "$TOOLS/.schemathesis"
	(cd "$TOOLS" && timeout "${SCHEMATHESIS_MAX_SECS:-240}" "$VENV/bin/st" --no-color run "$STACK_URL/api/schema/" \
		--checks not_a_server_error,status_code_conformance,response_schema_conformance,content_type_conformance \
		--mode positive --phases examples,coverage,fuzzing --max-examples "${SCHEMATHESIS_EXAMPLES:-200}" \
		--seed "$SCHEMATHESIS_SEED" --generation-database none --request-timeout 10 \
		--suppress-health-check all --workers 2 \
		-H "Authorization: Bearer $token" \
		--report junit --report-dir "$LOGS/schemathesis-$as")
}

# chromium, installed with apt-get when this runs as root and it is absent.
chromium_bin() {
	local c
	for c in chromium chromium-browser; do
		if command -v "$c" >/dev/null; then
			command -v "$c"
			return
		fi
	done
	if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
		echo "installing chromium (apt-get)" >&2
		{ apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; } >"$LOGS/apt-chromium.log" 2>&1 ||
			{ tail -20 "$LOGS/apt-chromium.log" >&2; return 1; }
		command -v chromium
		return
	fi
	echo "Chromium is needed to render the API docs: install Debian's chromium (sudo apt-get install chromium)" >&2
	return 1
}

# render PAGE: headless Chromium loads PAGE with every host but the loopback unresolvable and
# saves a screenshot; the rendered DOM must show every operation's summary.
render_page() {
	local page=$1 name profile
	name=$(basename "$page")
	profile=$(mktemp -d)
	local flags=(--headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking
		--disable-component-update --disable-sync --disable-dev-shm-usage "--user-data-dir=$profile"
		"--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1" --window-size=1280,2000 --virtual-time-budget=15000)
	"$CHROMIUM" "${flags[@]}" "--screenshot=$LOGS/api-$name.png" "$STACK_URL$page" >"$LOGS/chromium-$name.log" 2>&1 || true
	"$CHROMIUM" "${flags[@]}" --dump-dom "$STACK_URL$page" >"$LOGS/api-$name.html" 2>>"$LOGS/chromium-$name.log"
	rm -rf "$profile"
	[[ -s $LOGS/api-$name.png ]] || { echo "no screenshot of $page (log: $LOGS/chromium-$name.log)" >&2; return 1; }
	python3 - "$LOGS/openapi.json" "$LOGS/api-$name.html" "$page" <<'EOF' || return 1
import html, json, sys
doc, dom, page = json.load(open(sys.argv[1])), open(sys.argv[2]).read(), sys.argv[3]
ops = [op for item in doc["paths"].values() for op in item.values()]
missing = [op["summary"] for op in ops if html.escape(op["summary"], quote=False) not in dom]
if missing:
    sys.exit(f"{page} rendered without {len(missing)} of {len(ops)} operations, e.g. {missing[:3]} (DOM: {sys.argv[2]})")
print(f"{page} renders all {len(ops)} operations")
EOF
	echo "screenshot: $LOGS/api-$name.png"
}

api_checks() {
	start_stack || return 1
	curl -fsS "$STACK_URL/api/schema/" -o "$LOGS/openapi.json" || return 1
	"$VENV/bin/openapi-spec-validator" --schema 3.1.0 "$LOGS/openapi.json" || return 1
	local admin member
	admin=$(access_token /api/v1/auth/login/ '{"email": "admin@premises.test", "password": "Admin-pass-12345"}') || return 1
	member=$(access_token /api/v1/auth/register/ '{"email": "member@premises.test", "password": "Member-pass-12345",
		"password_confirm": "Member-pass-12345", "first_name": "Mia", "last_name": "Member"}') || return 1
	fuzz_api admin "$admin" || return 1
	fuzz_api member "$member" || return 1
	CHROMIUM=$(chromium_bin) || return 1
	render_page /api/docs/ || return 1
	render_page /api/redoc/ || return 1
}

# The generated template: the root and every module stack (shared/tests/template.rs has
# already checked they are what the modules generate).
template_checks() {
	local files=(template.yaml stacks/*.yaml) f
	"$VENV/bin/cfn-lint" "${files[@]}" || return 1
	echo "cfn-lint: ${files[*]} ok"
	for f in "${files[@]}"; do
		"$VENV/bin/sam" validate --lint --template "$f" || return 1
	done
}

# --------------------------------------------------------------------- main

# Dummy credentials and a region: the SDK clients of the suites and sam need
# them, and nothing here may reach AWS.
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true
export SAM_CLI_TELEMETRY=0
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_ENDPOINT_URL

CURRENT=prerequisites
check_rust
step tools bash "$ROOT/scripts/tools.sh" test
CURRENT=engines
log "engines: DynamoDB Local and moto server"
t0=$SECONDS
start_engines
STEPS+=("$(printf '%-9s ok  %4ss' engines "$((SECONDS - t0))")")
step fmt cargo fmt --all -- --check
step clippy cargo clippy --workspace --all-targets -- -D warnings
DESC="cargo build --workspace --exclude functions; cargo build -p functions --bin health" step build build
TEST_TOTALS=""
DESC="cargo test --workspace --exclude functions (engines: DynamoDB Local, moto)" step test cargo_test
STEPS[-1]+="  ($TEST_TOTALS)"
DESC="scripts/lambda_runtime.py smoke --binary target/debug/health" step smoke smoke
DESC="premises on free ports: openapi-spec-validator, schemathesis (admin, member), Chromium renders /api/docs/ and /api/redoc/" step api api_checks
DESC="cfn-lint and sam validate --lint: template.yaml stacks/*.yaml" step template template_checks
summary
echo "make test: all steps passed"
