#!/usr/bin/env bash
# Installs the agent CLIs pinned in xtask/agents.toml so that `cargo xtask e2e` can drive them.
#
# Usage: .ci/scripts/install-agents.sh [NAME...]      (default: every agent in the file)
#
# Each agent is installed on its own, with a time limit (pip agents in the background while the
# npm agents install one after the other). One agent that cannot be installed
# never fails the run: its reason is written to the report and `cargo xtask e2e` lists that
# agent as skipped with the same reason. The script fails only on its own misuse (missing
# pins file, unknown agent name, malformed pins).
#
# Environment:
#   AGENTS_FILE              pins (default: xtask/agents.toml next to this script's repo)
#   AGENTS_INSTALL_REPORT    report, one line per agent, tab-separated:
#                            name, status (installed|skipped), version found, seconds, reason
#                            (default: target/e2e/agents-install.tsv)
#   AGENTS_INSTALL_TIMEOUT   seconds allowed per npm agent (default 600)
#   AGENTS_PIP_TIMEOUT       seconds allowed for a pip agent (default 1200; aider is ~700 MB)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
pins="${AGENTS_FILE:-$repo/xtask/agents.toml}"
report="${AGENTS_INSTALL_REPORT:-$repo/target/e2e/agents-install.tsv}"
npm_timeout="${AGENTS_INSTALL_TIMEOUT:-600}"
pip_timeout="${AGENTS_PIP_TIMEOUT:-1200}"

if [[ ! -f "$pins" ]]; then
  echo "install-agents: pins file not found: $pins" >&2
  exit 2
fi

# Step 1: read the pins into parallel arrays. Only `[name]` and `key = "value"` lines are
# meaningful; anything else that is not blank or a comment is an error, so a typo cannot
# silently drop an agent.
names=() ; declare -A package version installer command
current=""
lineno=0
while IFS= read -r line || [[ -n "$line" ]]; do
  lineno=$((lineno + 1))
  line="${line%%#*}"
  line="${line#"${line%%[![:space:]]*}"}"
  line="${line%"${line##*[![:space:]]}"}"
  [[ -z "$line" ]] && continue
  if [[ "$line" =~ ^\[([a-z0-9_-]+)\]$ ]]; then
    current="${BASH_REMATCH[1]}"
    names+=("$current")
  elif [[ -n "$current" && "$line" =~ ^([a-z_]+)\ *=\ *\"([^\"]*)\"$ ]]; then
    key="${BASH_REMATCH[1]}" ; value="${BASH_REMATCH[2]}"
    case "$key" in
      package) package[$current]="$value" ;;
      version) version[$current]="$value" ;;
      installer) installer[$current]="$value" ;;
      command) command[$current]="$value" ;;
      *) echo "install-agents: $pins:$lineno: unknown key $key" >&2 ; exit 2 ;;
    esac
  else
    echo "install-agents: $pins:$lineno: cannot read: $line" >&2
    exit 2
  fi
done < "$pins"

# Step 2: choose the agents: the names given, each checked against the pins, or all.
selected=("$@")
if [[ ${#selected[@]} -eq 0 ]]; then
  selected=("${names[@]}")
fi
for n in "${selected[@]}"; do
  if [[ -z "${version[$n]:-}" ]]; then
    echo "install-agents: unknown agent $n (known: ${names[*]})" >&2
    exit 2
  fi
done

mkdir -p "$(dirname "$report")"
: > "$report"

# The first x.y.z in `<command> --version`, or nothing when the command is absent or fails.
installed_version() {
  local out
  # Pi prints its version on stderr.
  out="$(timeout 30 "$1" --version 2>&1 < /dev/null)" || return 0
  grep -Eo '[0-9]+\.[0-9]+\.[0-9]+' <<< "$out" | head -n 1 || true
}

record() { # file name status version seconds reason
  local file="$1" ; shift
  printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" > "$file"
  if [[ "$2" == installed ]]; then
    echo "install-agents: $1 $3 installed (${4}s)${5:+: $5}"
  else
    echo "install-agents: $1 skipped (${4}s): $5"
  fi
}

# Step 3: install each agent unless the pinned version is already there. A failure (exit
# status, time limit, wrong version afterwards) is recorded with the tail of the installer's
# output and the others go on. pip agents install in the background while the npm agents install
# one after the other (concurrent `npm install -g` runs would race on the global prefix); the
# report keeps the pins' order.
total_start=$SECONDS
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

install_one() { # name -> writes "$work/<name>.tsv"
  local n="$1" start=$SECONDS status log have
  local want="${version[$n]}" cmd="${command[$n]:-$n}" pkg="${package[$n]:-}"
  local out="$work/$n.tsv"
  have="$(installed_version "$cmd")"
  if [[ "$have" == "$want" ]]; then
    record "$out" "$n" installed "$have" 0 "already present"
    return
  fi
  log="$work/$n.log"
  case "${installer[$n]:-}" in
    npm)
      if ! command -v npm > /dev/null; then
        record "$out" "$n" skipped "" 0 "npm not found" ; return
      fi
      set +e
      timeout "$npm_timeout" npm install -g --no-fund --no-audit "$pkg@$want" > "$log" 2>&1 < /dev/null
      status=$?
      set -e
      ;;
    pip)
      if ! command -v python3 > /dev/null; then
        record "$out" "$n" skipped "" 0 "python3 not found" ; return
      fi
      set +e
      timeout "$pip_timeout" python3 -m pip install --disable-pip-version-check "$pkg==$want" > "$log" 2>&1 < /dev/null
      status=$?
      set -e
      # pyenv makes a shim for a new console script only on rehash.
      if command -v pyenv > /dev/null; then pyenv rehash > /dev/null 2>&1 || true; fi
      ;;
    *)
      record "$out" "$n" skipped "" 0 "unknown installer '${installer[$n]:-}'" ; return
      ;;
  esac
  local took=$((SECONDS - start))
  if [[ $status -eq 124 ]]; then
    record "$out" "$n" skipped "" "$took" "install timed out after ${took}s"
  elif [[ $status -ne 0 ]]; then
    # Tabs and newlines would break the report's columns.
    local why
    why="$(tail -n 3 "$log" | tr '\t\n' '  ' | cut -c1-400)"
    record "$out" "$n" skipped "" "$took" "installer exited $status: $why"
  else
    have="$(installed_version "$cmd")"
    if [[ "$have" == "$want" ]]; then
      record "$out" "$n" installed "$have" "$took" ""
    elif [[ -z "$have" ]]; then
      record "$out" "$n" skipped "" "$took" "installed but '$cmd --version' does not run"
    else
      record "$out" "$n" skipped "$have" "$took" "installed but '$cmd --version' says $have, pinned $want"
    fi
  fi
}

background=()
for n in "${selected[@]}"; do
  if [[ "${installer[$n]:-}" == pip ]]; then
    install_one "$n" &
    background+=("$!")
  fi
done
for n in "${selected[@]}"; do
  if [[ "${installer[$n]:-}" != pip ]]; then
    install_one "$n"
  fi
done
for pid in "${background[@]}"; do
  wait "$pid" || true
done
for n in "${selected[@]}"; do
  if [[ -f "$work/$n.tsv" ]]; then
    cat "$work/$n.tsv" >> "$report"
  else
    printf '%s\tskipped\t\t0\t%s\n' "$n" "the install script failed before recording it" >> "$report"
  fi
done

echo "install-agents: done in $((SECONDS - total_start))s; report: $report"
