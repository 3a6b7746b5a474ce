#!/bin/sh
# Waits for the Temporal frontend, creates the engine's namespace when missing and registers the
# engine's custom search attributes (all Keyword): CaseType, CaseStatus, CaseStage, BusinessKey.
#
# Run by the one-shot `temporal-admin-tools` service (temporalio/admin-tools ships the `temporal` CLI)
# on every `docker compose up`; the worker and the API start only after it exits 0. Idempotent: an
# existing namespace is left as it is, an attribute already registered with the right type is skipped,
# and "already exists" from a concurrent run is tolerated. An attribute registered with another type is
# an error that needs an operator, so the script fails loudly.
set -eu

ADDRESS="${TEMPORAL_ADDRESS:-temporal:7233}"
NAMESPACE="${TEMPORAL_NAMESPACE:-default}"
RETENTION="${TEMPORAL_NAMESPACE_RETENTION:-720h}"
ATTRIBUTES="CaseType CaseStatus CaseStage BusinessKey"

tries=0
until temporal operator cluster health --address "$ADDRESS" 2>/dev/null | grep -q SERVING; do
    tries=$((tries + 1))
    if [ "$tries" -ge 90 ]; then
        echo "Temporal at $ADDRESS not SERVING after 90 tries" >&2
        exit 1
    fi
    echo "waiting for Temporal at $ADDRESS ..."
    sleep 2
done

if temporal operator namespace describe --address "$ADDRESS" --namespace "$NAMESPACE" >/dev/null 2>&1; then
    echo "namespace $NAMESPACE exists"
else
    echo "creating namespace $NAMESPACE (retention $RETENTION)"
    temporal operator namespace create --address "$ADDRESS" --namespace "$NAMESPACE" \
        --retention "$RETENTION" --description "Alashankou approvals engine" \
        || temporal operator namespace describe --address "$ADDRESS" --namespace "$NAMESPACE" >/dev/null
fi

# A new namespace reaches every frontend's cache within seconds; list fails until it has.
tries=0
until temporal operator search-attribute list --address "$ADDRESS" --namespace "$NAMESPACE" >/dev/null 2>&1; do
    tries=$((tries + 1))
    if [ "$tries" -ge 60 ]; then
        echo "cannot list search attributes of namespace $NAMESPACE" >&2
        exit 1
    fi
    sleep 2
done

# Prints the registered type of attribute $1 (e.g. Keyword), or nothing when it is not registered.
registered_type() {
    temporal operator search-attribute list --address "$ADDRESS" --namespace "$NAMESPACE" -o json \
        | tr -d ' \n' | grep -o "\"$1\":\"[A-Za-z_]*\"" | sed 's/.*:"\(.*\)"/\1/' | sed 's/^INDEXED_VALUE_TYPE_//' || true
}

for name in $ATTRIBUTES; do
    current="$(registered_type "$name")"
    case "$current" in
        Keyword | KEYWORD)
            echo "search attribute $name (Keyword) already registered"
            continue
            ;;
        "") ;;
        *)
            echo "search attribute $name is registered with type $current, the engine needs Keyword" >&2
            exit 1
            ;;
    esac
    echo "registering search attribute $name (Keyword)"
    if ! output="$(temporal operator search-attribute create --address "$ADDRESS" --namespace "$NAMESPACE" \
        --name "$name" --type Keyword 2>&1)"; then
        case "$output" in
            *"already exists"* | *"AlreadyExists"*) echo "search attribute $name already exists" ;;
            *) echo "$output" >&2; exit 1 ;;
        esac
    fi
done

# Show the result in the service's log.
temporal operator search-attribute list --address "$ADDRESS" --namespace "$NAMESPACE"
echo "namespace $NAMESPACE has the engine's search attributes"
