"""Renders the scaled profile's load balancer configuration.

    python scripts/render_lb_config.py deploy/nginx.conf.template OUTPUT

Fills the template's {{NAME}} placeholders from the environment
(scripts/run_scaled.sh sets them); *_SERVERS are built from the
comma-separated ports in CRM_PORTS, RASA_PORTS and ACTIONS_PORTS on
127.0.0.1 (or *_HOSTS, comma-separated host:port, for other machines).
Stops with one sentence if a placeholder has no value.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

PLACEHOLDER = re.compile(r"\{\{([A-Z0-9_]+)\}\}")
SERVER_LISTS = {"CRM_SERVERS": "CRM", "RASA_SERVERS": "RASA", "ACTIONS_SERVERS": "ACTIONS"}
DEFAULTS = {"LB_WORKERS": "auto", "LB_BIND": "127.0.0.1"}


def servers(kind: str, environ: dict[str, str]) -> str | None:
    """nginx `server` lines of one upstream, from KIND_HOSTS or KIND_PORTS."""
    hosts = [h.strip() for h in environ.get(f"{kind}_HOSTS", "").split(",") if h.strip()]
    if not hosts:
        hosts = [f"127.0.0.1:{p.strip()}" for p in environ.get(f"{kind}_PORTS", "").split(",") if p.strip()]
    if not hosts:
        return None
    return "\n".join(f"        server {host} max_fails=1 fail_timeout=5s;" for host in hosts)


def render(template: str, environ: dict[str, str]) -> str:
    values = {**DEFAULTS, **{k: v for k, v in environ.items() if v}}
    for name, kind in SERVER_LISTS.items():
        lines = servers(kind, environ)
        if lines:
            values[name] = lines
    missing = sorted({name for name in PLACEHOLDER.findall(template) if name not in values})
    if missing:
        raise SystemExit(f"error: the load balancer template needs {', '.join(missing)} in the environment.")
    return PLACEHOLDER.sub(lambda match: values[match.group(1)], template)


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    template, output = Path(argv[1]), Path(argv[2])
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(render(template.read_text(), dict(os.environ)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
