#!/usr/bin/env bash
# Serve glassnet here the way a class server does: N app processes
# (glassnet serve --num-procs N) behind Debian's nginx, on 127.0.0.1 only.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: deploy/run-local.sh [--procs N] [--port P] [--app-port A] [--sessions DIR]
                           [--run DIR] [-- more glassnet serve flags]

  --procs N       app processes (default 2)
  --port P        nginx listens on 127.0.0.1:P (default 8080)
  --app-port A    glassnet serve --port A; process i also on A+1+i (default P+1)
  --sessions DIR  the sessions folder (default runs)
  --run DIR       where the rendered nginx.conf and the logs go (default: a new
                  temporary folder, kept after the end and named at start)

Open http://127.0.0.1:P/glassnet/app.  Ctrl+C stops nginx and the app.
Needs Debian's nginx (apt-get install -y nginx) and the project's .venv.
EOF
}

root=$(cd "$(dirname "$0")/.." && pwd)
glassnet=${GLASSNET:-$root/.venv/bin/glassnet}
python=$(dirname "$glassnet")/python
nginx=${NGINX:-/usr/sbin/nginx}
procs=2 port=8080 app_port="" sessions=runs run=""

while [ $# -gt 0 ]; do
    case $1 in
        --procs) procs=$2; shift 2 ;;
        --port) port=$2; shift 2 ;;
        --app-port) app_port=$2; shift 2 ;;
        --sessions) sessions=$2; shift 2 ;;
        --run) run=$2; shift 2 ;;
        --) shift; break ;;
        -h | --help) usage; exit 0 ;;
        *) echo "run-local.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    esac
done
app_port=${app_port:-$((port + 1))}

for value in "$procs" "$port" "$app_port"; do
    case $value in
        '' | *[!0-9]*) echo "run-local.sh: $value is not a number" >&2; exit 2 ;;
    esac
done
if [ "$procs" -lt 1 ]; then
    echo "run-local.sh: --procs takes 1 or more; got $procs" >&2
    exit 2
fi
if [ ! -x "$nginx" ]; then
    echo "run-local.sh: no nginx at $nginx: apt-get install -y nginx (or set NGINX)" >&2
    exit 1
fi
if [ ! -x "$glassnet" ]; then
    echo "run-local.sh: no glassnet at $glassnet: run ./scripts/test.sh or demo.sh once" >&2
    exit 1
fi

run=${run:-$(mktemp -d "${TMPDIR:-/tmp}/glassnet-nginx.XXXXXX")}
mkdir -p "$run"
run=$(cd "$run" && pwd)
# nginx's workers drop to "nobody" when it runs as root; they must reach $run.
chmod 755 "$run"

# The upstream: one server line per app process.
if [ "$procs" -eq 1 ]; then
    ports=("$app_port")
    scale=()
else
    ports=()
    for ((i = 0; i < procs; i++)); do ports+=($((app_port + 1 + i))); done
    scale=(--num-procs "$procs" --process-ports $((app_port + 1)))
fi
servers=""
for p in "${ports[@]}"; do servers+="        server 127.0.0.1:$p;"$'\n'; done
user=""
if [ "$(id -u)" -eq 0 ]; then user="user nobody nogroup;"; fi
servers_file="$run/servers.conf"
printf '%s' "$servers" >"$servers_file"
sed -e "s|@RUN@|$run|g" -e "s|@DEPLOY@|$root/deploy|g" -e "s|@PORT@|$port|g" \
    -e "s|@USER@|$user|" -e "/@SERVERS@/{r $servers_file" -e "d}" \
    "$root/deploy/nginx/local.conf.in" >"$run/nginx.conf"

app_pid="" nginx_pid=""
stop() {
    trap - EXIT INT TERM
    if [ -n "$nginx_pid" ]; then kill "$nginx_pid" 2>/dev/null || true; fi
    # The app runs in its own process group: its forked workers stop with it.
    if [ -n "$app_pid" ]; then kill -- "-$app_pid" 2>/dev/null || true; fi
    wait 2>/dev/null || true
    echo "stopped; logs in $run"
}
trap stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

setsid "$glassnet" serve --sessions "$sessions" --address 127.0.0.1 \
    --port "$app_port" "${scale[@]}" --prefix /glassnet --use-xheaders \
    --allow-websocket-origin "127.0.0.1:$port" \
    --allow-websocket-origin "localhost:$port" --no-show "$@" \
    >"$run/glassnet.log" 2>&1 &
app_pid=$!
echo "$app_pid" >"$run/glassnet.pid"

# Wait until every process answers on its own port.
for p in "${ports[@]}"; do
    until "$python" -c "import urllib.request as u; u.urlopen('http://127.0.0.1:$p/glassnet/liveness', timeout=2)" 2>/dev/null; do
        if ! kill -0 "$app_pid" 2>/dev/null; then
            echo "run-local.sh: glassnet serve stopped:" >&2
            tail -n 20 "$run/glassnet.log" >&2
            exit 1
        fi
        sleep 0.5
    done
done

"$nginx" -t -q -c "$run/nginx.conf"
"$nginx" -c "$run/nginx.conf" &
nginx_pid=$!
echo "glassnet behind nginx: http://127.0.0.1:$port/glassnet/app ($procs app processes on ports ${ports[*]}; Ctrl+C stops)"
echo "config and logs: $run"
wait -n "$app_pid" "$nginx_pid"
echo "run-local.sh: nginx or glassnet serve stopped; see $run" >&2
exit 1
