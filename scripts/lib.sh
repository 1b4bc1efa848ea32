# shellcheck shell=bash
# Shared shell functions for scripts/*.sh. Source it; it sets nothing else up.
#
#   . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#
# Conventions: progress and logs go to stderr, machine-readable output to stdout.

# Repository root (the directory that holds scripts/).
AGENTLESS_REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export AGENTLESS_REPO_ROOT

# Cache for slow-to-build test inputs (debootstrap root, bench images, Trivy peer).
AGENTLESS_CACHE_DIR="${AGENTLESS_CACHE_DIR:-${HOME:-/root}/.cache/agentless}"
export AGENTLESS_CACHE_DIR

# Debian suite of the cached debootstrap root.
AGENTLESS_DEBIAN_SUITE="${AGENTLESS_DEBIAN_SUITE:-bookworm}"
AGENTLESS_DEBOOTSTRAP_INCLUDE="${AGENTLESS_DEBOOTSTRAP_INCLUDE:-openssh-server,cron,login,passwd}"

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
warn() { printf '[%s] WARNING: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
    printf '[%s] ERROR: %s\n' "$(date +%H:%M:%S)" "$*" >&2
    exit 1
}

# section TITLE: a visible header.
section() {
    printf '\n==================== %s ====================\n' "$*" >&2
}

# now_s: seconds since the epoch with millisecond precision.
now_s() { date +%s.%3N; }

# elapsed START: seconds (one decimal) since START (a now_s value).
elapsed() { awk -v s="$1" -v e="$(now_s)" 'BEGIN { printf "%.1f", e - s }'; }

is_root() { [ "$(id -u)" -eq 0 ]; }

# apt_install PKG...: install Debian packages, running `apt-get update` at most
# once per process. Requires root.
_AGENTLESS_APT_UPDATED=0
apt_install() {
    [ "$#" -gt 0 ] || return 0
    is_root || die "need root to install: $* (run: sudo apt-get install -y --no-install-recommends $*)"
    if [ "$_AGENTLESS_APT_UPDATED" -eq 0 ]; then
        log "apt-get update"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
        _AGENTLESS_APT_UPDATED=1
    fi
    log "apt-get install $*"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2
}

# ensure_tools "CMD:PKG" ...: install the Debian package PKG for every CMD
# (a command name or an absolute path) that is missing. Clear error if not root.
ensure_tools() {
    local spec cmd pkg missing_pkgs=() missing_cmds=()
    for spec in "$@"; do
        cmd="${spec%%:*}"
        pkg="${spec#*:}"
        if [[ "$cmd" == /* ]]; then
            [ -x "$cmd" ] && continue
        else
            command -v "$cmd" >/dev/null 2>&1 && continue
            # sbin tools are not on a non-root PATH
            [ -x "/usr/sbin/$cmd" ] || [ -x "/sbin/$cmd" ] && continue
        fi
        missing_cmds+=("$cmd")
        [[ " ${missing_pkgs[*]-} " == *" $pkg "* ]] || missing_pkgs+=("$pkg")
    done
    [ "${#missing_pkgs[@]}" -eq 0 ] && return 0
    if ! is_root; then
        die "missing tools: ${missing_cmds[*]}; install them with: sudo apt-get install -y --no-install-recommends ${missing_pkgs[*]}"
    fi
    log "missing tools: ${missing_cmds[*]} -> packages: ${missing_pkgs[*]}"
    apt_install "${missing_pkgs[@]}"
}

# _apt_source_entries: print "URI<TAB>SUITES<TAB>TYPES" for every enabled apt
# source, in the order apt reads them (sources.list, then sources.list.d/*
# alphabetically; *.list one-line style and *.sources deb822 style).
_apt_source_entries() {
    local f files=()
    [ -f /etc/apt/sources.list ] && files+=(/etc/apt/sources.list)
    for f in /etc/apt/sources.list.d/*; do
        case "$f" in
            *.list | *.sources) [ -f "$f" ] && files+=("$f") ;;
        esac
    done
    [ "${#files[@]}" -gt 0 ] || return 0
    for f in "${files[@]}"; do
        case "$f" in
            *.sources)
                # deb822: blank-line separated stanzas; fields may repeat over
                # continuation lines (leading whitespace).
                awk '
                    function flush() {
                        if (uris != "" && enabled != "no") {
                            n = split(uris, u, /[ \t]+/)
                            for (i = 1; i <= n; i++) if (u[i] != "") printf "%s\t%s\t%s\n", u[i], suites, types
                        }
                        uris = ""; suites = ""; types = ""; enabled = ""; last = ""
                    }
                    BEGIN { uris = ""; suites = ""; types = ""; enabled = ""; last = "" }
                    /^[ \t]*#/ { next }
                    /^[ \t]*$/ { flush(); next }
                    /^[ \t]/ {
                        v = $0; sub(/^[ \t]+/, "", v)
                        if (last == "uris") uris = uris " " v
                        else if (last == "suites") suites = suites " " v
                        else if (last == "types") types = types " " v
                        next
                    }
                    {
                        key = tolower($0); sub(/:.*/, "", key)
                        v = $0; sub(/^[^:]*:[ \t]*/, "", v)
                        last = key
                        if (key == "uris") uris = v
                        else if (key == "suites") suites = v
                        else if (key == "types") types = v
                        else if (key == "enabled") enabled = tolower(v)
                    }
                    END { flush() }
                ' "$f"
                ;;
            *)
                # one-line style: deb [opts] URI SUITE COMPONENT...
                awk '
                    /^[ \t]*#/ { next }
                    $1 == "deb" || $1 == "deb-src" {
                        t = $1; i = 2
                        if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
                        if (i + 1 <= NF) printf "%s\t%s\t%s\n", $i, $(i + 1), t
                    }
                ' "$f"
                ;;
        esac
    done
}

# debian_mirror [SUITE]: the first apt source URI of type deb whose suite list
# contains SUITE (default bookworm) and whose path ends in /debian.
# AGENTLESS_DEBIAN_MIRROR overrides it.
debian_mirror() {
    local suite="${1:-$AGENTLESS_DEBIAN_SUITE}"
    if [ -n "${AGENTLESS_DEBIAN_MIRROR:-}" ]; then
        printf '%s\n' "$AGENTLESS_DEBIAN_MIRROR"
        return 0
    fi
    local uri suites types s
    while IFS=$'\t' read -r uri suites types; do
        [[ " $types " == *" deb "* ]] || continue
        uri="${uri%/}"
        [[ "$uri" == */debian ]] || continue
        for s in $suites; do
            if [ "$s" = "$suite" ]; then
                printf '%s\n' "$uri"
                return 0
            fi
        done
    done < <(_apt_source_entries)
    return 1
}

# debootstrap_root_path: where the cached debootstrap root lives.
debootstrap_root_path() {
    printf '%s/debootstrap-%s\n' "$AGENTLESS_CACHE_DIR" "$AGENTLESS_DEBIAN_SUITE"
}

# Marker file written inside the root once debootstrap completed.
DEBOOTSTRAP_MARKER=".agentless-debootstrap-complete"

# ensure_debootstrap_root: build the cached root if absent (atomic rename of a
# temp dir; serialised with flock). Prints the root path on stdout.
ensure_debootstrap_root() {
    local root tmp mirror start lock
    root="$(debootstrap_root_path)"
    if [ -f "$root/$DEBOOTSTRAP_MARKER" ]; then
        log "debootstrap root cached: $root"
        printf '%s\n' "$root"
        return 0
    fi
    is_root || die "building the debootstrap root needs root (debootstrap chroots); or point AGENTLESS_DEBOOTSTRAP_ROOT at an existing root"
    mkdir -p "$AGENTLESS_CACHE_DIR"
    lock="$AGENTLESS_CACHE_DIR/.debootstrap-$AGENTLESS_DEBIAN_SUITE.lock"
    exec {_lockfd}>"$lock"
    log "waiting for lock $lock"
    flock "$_lockfd"
    if [ -f "$root/$DEBOOTSTRAP_MARKER" ]; then # built by a concurrent run
        exec {_lockfd}>&-
        printf '%s\n' "$root"
        return 0
    fi
    # Leftovers of interrupted builds (we hold the lock, so nobody uses them).
    # --one-file-system: never descend into a /proc or /sys a killed
    # debootstrap left mounted.
    local stale
    for stale in "$root" "$root".tmp.*; do
        [ -e "$stale" ] || continue
        log "removing incomplete $stale"
        _umount_under "$stale"
        rm -rf --one-file-system "$stale"
    done
    mirror="$(debian_mirror "$AGENTLESS_DEBIAN_SUITE")" || die "no Debian mirror for '$AGENTLESS_DEBIAN_SUITE' in the apt sources (/etc/apt/sources.list, /etc/apt/sources.list.d/); set AGENTLESS_DEBIAN_MIRROR"
    tmp="$root.tmp.$$"
    log "debootstrap --variant=minbase --include=$AGENTLESS_DEBOOTSTRAP_INCLUDE $AGENTLESS_DEBIAN_SUITE $tmp $mirror"
    start="$(now_s)"
    if ! debootstrap --variant=minbase --include="$AGENTLESS_DEBOOTSTRAP_INCLUDE" \
        "$AGENTLESS_DEBIAN_SUITE" "$tmp" "$mirror" >"$AGENTLESS_CACHE_DIR/debootstrap.log" 2>&1; then
        tail -n 30 "$AGENTLESS_CACHE_DIR/debootstrap.log" >&2
        _umount_under "$tmp"
        rm -rf --one-file-system "$tmp"
        die "debootstrap failed (log: $AGENTLESS_CACHE_DIR/debootstrap.log)"
    fi
    _umount_under "$tmp"
    # The apt archive cache is not part of an installed system; drop it.
    rm -f "$tmp"/var/cache/apt/archives/*.deb
    date -u +%Y-%m-%dT%H:%M:%SZ >"$tmp/$DEBOOTSTRAP_MARKER"
    mv -T "$tmp" "$root"
    log "debootstrap done in $(elapsed "$start") s: $root ($(du -sh "$root" | cut -f1))"
    exec {_lockfd}>&-
    printf '%s\n' "$root"
}

# _umount_under DIR: unmount anything mounted below DIR (deepest first).
_umount_under() {
    local dir m
    dir="$(cd "$1" 2>/dev/null && pwd -P)" || return 0
    [ -r /proc/self/mounts ] || return 0
    while read -r m; do
        umount -l "$m" 2>/dev/null || true
    done < <(awk -v d="$dir/" 'index($2 "/", d) == 1 { print $2 }' /proc/self/mounts | sort -r)
}

# python_json EXPR FILE: evaluate a Python expression over `d` (the parsed JSON
# of FILE) and print the result.
python_json() {
    python3 -c 'import json,sys; d=json.load(open(sys.argv[2])); r=eval(sys.argv[1]); print(r)' "$1" "$2"
}
