#!/usr/bin/env bash
# Prints the path of a Python 3.10 interpreter (Rasa 3.6.21 needs one), looking
# at $PYTHON310, then pyenv, then python3.10 on PATH. Fails with one sentence.
set -u

is_310() { [ -n "$1" ] && "$1" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))' >/dev/null 2>&1; }

if [ -n "${PYTHON310:-}" ]; then
  if is_310 "$PYTHON310"; then echo "$PYTHON310"; exit 0; fi
  echo "error: PYTHON310=$PYTHON310 is not a working Python 3.10 interpreter." >&2
  exit 1
fi

if command -v pyenv >/dev/null 2>&1; then
  root=$(pyenv root 2>/dev/null)
  for candidate in $(ls -d "$root"/versions/3.10.* 2>/dev/null | sort -V -r); do
    if is_310 "$candidate/bin/python"; then echo "$candidate/bin/python"; exit 0; fi
  done
fi
for candidate in "$HOME"/.pyenv/versions/3.10.*/bin/python; do
  if is_310 "$candidate"; then echo "$candidate"; exit 0; fi
done

if command -v python3.10 >/dev/null 2>&1 && is_310 "$(command -v python3.10)"; then
  command -v python3.10
  exit 0
fi

echo "error: Rasa 3.6.21 needs Python 3.10 and none was found; install it (for example \`pyenv install 3.10.13\`) or set PYTHON310=/path/to/python3.10." >&2
exit 1
