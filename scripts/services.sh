# Sourced by scripts/test: starts PostgreSQL, Redis and NATS (with JetStream) when they are
# down, then waits until they answer, and installs Debian's Chromium for the browser tests
# when it is missing. The tests themselves create (and drop) their own databases/schemas.
ensure_postgres() {
    if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then return 0; fi
    echo "Starting PostgreSQL..." >&2
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start
    for _ in $(seq 1 60); do
        pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null && return 0
        sleep 0.5
    done
    echo "PostgreSQL did not start on 127.0.0.1:5432" >&2
    return 1
}

ensure_redis() {
    if redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then return 0; fi
    echo "Starting Redis..." >&2
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
    for _ in $(seq 1 60); do
        redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && return 0
        sleep 0.5
    done
    echo "Redis did not start on 127.0.0.1:6379" >&2
    return 1
}

ensure_nats() {
    if (exec 3<>/dev/tcp/127.0.0.1/4222) 2>/dev/null; then return 0; fi
    echo "Starting NATS with JetStream..." >&2
    mkdir -p /var/lib/nats-server
    nohup nats-server -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server >/tmp/nats-server.log 2>&1 &
    for _ in $(seq 1 60); do
        (exec 3<>/dev/tcp/127.0.0.1/4222) 2>/dev/null && return 0
        sleep 0.5
    done
    echo "NATS did not start on 127.0.0.1:4222" >&2
    return 1
}

ensure_chromium() {
    # The dashboard's browser tests drive /usr/bin/chromium with Playwright (never a
    # browser build of Playwright's own).
    if [ -x /usr/bin/chromium ]; then return 0; fi
    echo "Installing Chromium (Debian package) for the browser tests..." >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
}
