#!/usr/bin/env bash
# The README's first command: build, then run the daemon in the foreground on the embedded
# default (local vault, one account of each kind) under ./.cmk-demo, created on first run.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/opt/swift/usr/bin:$PATH
bash scripts/install-deps.sh
swift build --product cmk-syncer
swift build --product cmkctl
bin=$(swift build --show-bin-path)
demo=$PWD/.cmk-demo
mkdir -p "$demo"
chmod 700 "$demo"
config=$demo/cmk-syncer.yaml
if [ ! -f "$config" ]; then
    { echo "# Written by scripts/run-embedded.sh from config/embedded.yaml."
      echo "state-directory: $demo"
      grep -v '^#' config/embedded.yaml; } > "$config"
fi
# Whatever the umask: cmk-syncer refuses a configuration that group or others may write.
chmod 600 "$config"
# cmkctl finds this configuration from the repository folder (./.cmk-demo/cmk-syncer.yaml);
# elsewhere pass --config or set CMK_SYNCER_CONFIG.
if [ -w /usr/local/bin ]; then
    ln -sf "$bin/cmkctl" /usr/local/bin/cmkctl
    ln -sf "$bin/cmk-syncer" /usr/local/bin/cmk-syncer
fi
cat <<MSG
cmk-syncer: running on the embedded default; state in $demo
In another terminal, from $PWD:
    cmkctl status
    cmkctl keys rotate && cmkctl sync --wait && cmkctl status
Stop with Ctrl-C.
MSG
exec "$bin/cmk-syncer" run --config "$config"
