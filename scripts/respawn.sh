#!/usr/bin/env bash
# respawn.sh NAME COMMAND...: runs COMMAND and starts it again whenever it
# exits on its own (a crash, kill -9, an out-of-memory kill), waiting 1 s,
# then 2, 4, ... up to 30 s between quick successive failures (a run that
# lasted over a minute starts the count again). SIGTERM or SIGINT (honcho's
# Ctrl-C) goes to COMMAND and ends the loop. The scaled profile's
# Procfile.scaled runs its Rasa instances, action servers and workers under
# it, so one dying process neither takes the others down (honcho stops all
# when one exits) nor stays down; in Kubernetes the kubelet does this.
set -uo pipefail
name=$1
shift
stopping=0
child=
stop() {
  stopping=1
  [ -n "$child" ] && kill -TERM "$child" 2>/dev/null
}
trap stop TERM INT
delay=1
while :; do
  started=$SECONDS
  "$@" &
  child=$!
  # `wait` returns early when a trapped signal arrives: wait until the child is gone.
  while :; do
    wait "$child"
    code=$?
    kill -0 "$child" 2>/dev/null || break
  done
  [ "$stopping" = 1 ] && exit 0
  if (( SECONDS - started > 60 )); then delay=1; fi
  echo "respawn: $name exited with status $code; starting it again in ${delay} s" >&2
  sleep "$delay" &
  wait $! 
  [ "$stopping" = 1 ] && exit 0
  delay=$(( delay * 2 > 30 ? 30 : delay * 2 ))
done
