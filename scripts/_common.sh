# Shared by scripts/serve, scripts/test and scripts/check (sourced, not run).
# Installs what is missing — idempotently, tools cached under $FLOWLAB_TOOLS — and builds the web
# app. Every function is a no-op when its tool is already there in the pinned version.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

TOOLS="${FLOWLAB_TOOLS:-$HOME/.cache/flowlab-tools}"
TRUNK_VERSION="0.21.14"      # 0.22.x needs rustc >= 1.96.1
BINARYEN_VERSION="132.0.0"   # npm package; ships a working `wasm-opt` (version 132)
export PATH="$TOOLS/bin:$TOOLS/npm/node_modules/.bin:$HOME/.cargo/bin:$PATH"
# trunk only looks for `Trunk.toml`; ours is lower-case.
export TRUNK_CONFIG="$ROOT/trunk.toml"

log() { printf '\033[1;34m==>\033[0m %s\n' "$*" >&2; }

# Runs a command as root (directly when already root, else through sudo).
as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# Runs a command after printing it.
step() {
    log "$*"
    "$@"
}

# Why: wgpu's GL probing complains on stderr when there is no runtime dir (headless machines).
ensure_runtime_dir() {
    if [ -z "${XDG_RUNTIME_DIR:-}" ]; then
        export XDG_RUNTIME_DIR="$TOOLS/xdg-runtime"
        mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
    fi
}

ensure_wasm_target() {
    if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
        log "rustup target add wasm32-unknown-unknown"
        rustup target add wasm32-unknown-unknown
    fi
}

# The wasm-bindgen crate version in Cargo.lock (the CLI must match it exactly).
wasm_bindgen_version() {
    [ -f Cargo.lock ] || cargo generate-lockfile
    awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock
}

ensure_trunk() {
    if [ "$(trunk --version 2>/dev/null)" != "trunk $TRUNK_VERSION" ]; then
        log "cargo install trunk $TRUNK_VERSION (first time only, ~9 min on 2 cores)"
        cargo install trunk --version "$TRUNK_VERSION" --locked --root "$TOOLS"
    fi
}

ensure_wasm_bindgen() {
    local version
    version="$(wasm_bindgen_version)"
    if [ "$(wasm-bindgen --version 2>/dev/null)" != "wasm-bindgen $version" ]; then
        # Why no --locked: its lock file pins webpki-roots 1.0.11, which the registry lacks.
        log "cargo install wasm-bindgen-cli $version (first time only, ~4 min)"
        cargo install wasm-bindgen-cli --version "$version" --root "$TOOLS" --force
    fi
}

ensure_wasm_opt() {
    if ! wasm-opt --version 2>/dev/null | grep -q "version ${BINARYEN_VERSION%%.*}"; then
        log "npm install binaryen@$BINARYEN_VERSION (wasm-opt)"
        mkdir -p "$TOOLS/npm"
        npm install --prefix "$TOOLS/npm" --no-audit --no-fund --loglevel=error "binaryen@$BINARYEN_VERSION"
    fi
}

ensure_web_tools() {
    ensure_wasm_target
    ensure_trunk
    ensure_wasm_bindgen
    ensure_wasm_opt
}

# Node.js (for the static server and the browser tests); Debian's is recent enough.
ensure_node() {
    if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
        log "apt-get install nodejs npm"
        as_root apt-get update -qq
        as_root apt-get install -y -qq nodejs npm
    fi
}

# The files the web build reads (tracked or new, not ignored).
web_input_files() {
    local paths=(src web assets Cargo.toml Cargo.lock trunk.toml)
    if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        git ls-files -co --exclude-standard -- "${paths[@]}"
    else
        find "${paths[@]}" -type f
    fi
}

# A hash of everything the web build reads, plus the tool versions.
web_inputs_hash() {
    {
        web_input_files | LC_ALL=C sort | while read -r file; do
            if [ -f "$file" ]; then sha256sum "$file"; fi
        done
        rustc --version; trunk --version; wasm-bindgen --version; wasm-opt --version
    } | sha256sum | cut -d' ' -f1
}

# Builds the release web app into dist/ — skipped when dist/ was built from the same inputs.
build_web() {
    local stamp="dist/.flowlab-build-stamp" hash
    hash="$(web_inputs_hash)"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$hash" ] && [ -f dist/index.html ]; then
        log "web app up to date (dist/)"
        return
    fi
    log "trunk build --release (dist/)"
    rm -f "$stamp"
    trunk build --release
    echo "$hash" > "$stamp"
    local wasm=dist/flowlab_bg.wasm
    log "$(printf 'wasm: %s bytes raw, %s bytes gzip -9' "$(stat -c %s "$wasm")" "$(gzip -9c "$wasm" | wc -c)")"
}

# A free TCP port on 127.0.0.1.
free_port() {
    node -e 'const s = require("net").createServer(); s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });'
}

# A Python with PyTorch for the export parity test (tests/export/parity.rs): a venv under
# $TOOLS/torch, exported as FLOWLAB_TORCH_PYTHON. Why the full wheel: PyPI's torch is the CUDA
# build, and `pip install --no-deps torch` cannot `import torch` (it loads the nvidia-* libraries
# at import); with them it runs on the CPU. Measured: ~1.5 min and 5.4 GB (3.0 GB of it nvidia-*).
ensure_torch() {
    local venv="$TOOLS/torch" peers="$HOME/.cache/flowlab-peers"
    # Why reuse: a 5 GB install is worth making once; scripts/bench-peers' venv has torch too.
    if [ -n "${FLOWLAB_TORCH_PYTHON:-}" ] && "$FLOWLAB_TORCH_PYTHON" -c "import torch" 2>/dev/null; then
        return
    fi
    if [ ! -x "$venv/bin/python" ] && "$peers/bin/python" -c "import torch" 2>/dev/null; then
        venv="$peers"
    fi
    if ! "$venv/bin/python" -c "import torch" 2>/dev/null; then
        if ! python3 -c "import ensurepip" 2>/dev/null; then
            log "apt-get install python3-venv"
            as_root apt-get update -qq
            as_root apt-get install -y -qq python3-venv
        fi
        log "pip install torch into $venv (first time only, ~5 GB)"
        python3 -m venv "$venv"
        "$venv/bin/pip" install -q --disable-pip-version-check --no-cache-dir torch
    fi
    export FLOWLAB_TORCH_PYTHON="$venv/bin/python"
}
