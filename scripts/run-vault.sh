#!/usr/bin/env bash
# `make run-vault`: build, then run cmk-vault (the customer's vault service) in the foreground on
# https://127.0.0.1:8443 with a throw-away certificate authority under ./.cmk-demo/vault, made on
# first run. Prints how to reach it: the CA to trust, the tenant, an administrator's secret.
# `make run` (the daemon) needs none of this and works without it.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/opt/swift/usr/bin:$PATH
bash scripts/install-deps.sh
swift build --product cmk-vault
swift build --product cmkctl
bin=$(swift build --show-bin-path)
port=${CMK_VAULT_PORT:-8443}
dir=$PWD/.cmk-demo/vault
mkdir -p "$dir"
chmod 700 "$PWD/.cmk-demo" "$dir"
if [ ! -f "$dir/tls.crt" ]; then
    # A CA of its own, valid 30 days, and a server certificate for 127.0.0.1 and localhost.
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 -subj "/CN=cmk-vault demo CA" \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign \
        -keyout "$dir/ca.key" -out "$dir/ca.crt" 2>/dev/null
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=127.0.0.1" \
        -keyout "$dir/tls.key" -out "$dir/tls.csr" 2>/dev/null
    printf 'basicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost\n' > "$dir/tls.ext"
    openssl x509 -req -in "$dir/tls.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial -days 30 \
        -extfile "$dir/tls.ext" -out "$dir/tls.crt" 2>/dev/null
    rm -f "$dir/ca.key" "$dir/tls.csr" "$dir/tls.ext" "$dir/ca.srl"
    chmod 600 "$dir/tls.key"
fi
config=$dir/cmk-vault.yaml
cat > "$config" <<YAML
# Written by scripts/run-vault.sh (docs/vault-service.md).
state-directory: $dir/state
public-url: https://127.0.0.1:$port
listen: 127.0.0.1:$port
tls:
  certificate-file: $dir/tls.crt
  key-file: $dir/tls.key
# The root keys: a local vault under the state directory, its master key made on the first start
# (a demo: in production the master key is a systemd credential, never beside the vault).
vault: {master-key-file: $dir/master.key, create-master-key: true}
logging: {format: text}
YAML
chmod 600 "$config"
admin=
if [ ! -f "$dir/admin.json" ]; then
    "$bin/cmkctl" admins add "Demo Admin" --vault-state "$dir/state" --json > "$dir/admin.json" 2>/dev/null
    chmod 600 "$dir/admin.json"
    admin=new
fi
tenant=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["tenantId"])' "$dir/admin.json")
client=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["clientId"])' "$dir/admin.json")
cat <<MSG
cmk-vault: https://127.0.0.1:$port, tenant $tenant; state in $dir/state
Trust the demo CA: $dir/ca.crt
An administrator (client id $client); its secret is in $dir/admin.json${admin:+ (made just now, shown once)}.
In another terminal:
    secret=\$(python3 -c 'import json; print(json.load(open("$dir/admin.json"))["secret"])')
    token=\$(curl -s --cacert $dir/ca.crt https://127.0.0.1:$port/$tenant/oauth2/v2.0/token \\
        -d grant_type=client_credentials -d client_id=$client --data-urlencode client_secret="\$secret" \\
        -d scope=https://127.0.0.1:$port/.default | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
    curl -s --cacert $dir/ca.crt -H "Authorization: Bearer \$token" https://127.0.0.1:$port/v1.0/applications
The keys API (Azure Key Vault's) is at https://127.0.0.1:$port/keys for the service principal's
keys (an administrator makes one with addPassword) and platform identities (cmkctl identities add).
More in docs/vault-service.md ("The customer's runbook", "The keys API"). Stop with Ctrl-C.
MSG
exec "$bin/cmk-vault" run --config "$config"
