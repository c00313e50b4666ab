"""Customer import: time and peak memory of `crm import-customers` on 100,000 rows.

    .venv/backend/bin/python -m bench.import_customers [--rows 100000] [--seed 10] [--jobs N]

Writes a CSV with a fixed random seed: 10 % dirty rows (bad e-mails, bad
phones, stray spaces, upper-case e-mails, empty names, in equal shares)
and 5 % duplicates (an earlier row's e-mail in other case and spacing),
the rest clean, in shuffled order. Then, on a fresh temporary SQLite
database migrated with `crm init-db` (DATABASE_URL), it runs
`crm import-customers --default-region GB` as a subprocess twice: into the
empty database (all creations), and the same file again (nothing changes).
For each run it prints the wall time, the CPU time and peak memory (max
RSS) of the child and its cleaning processes (from wait4), and the
command's JSON figures. Goal: < 30 s and < 500 MB. `--jobs N` is passed on
(default: the command's own, one cleaning process per CPU).

Prints one JSON line at the end. Nothing outside a temporary directory
(removed at the end unless --keep) is touched.
"""

import argparse
import csv
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import REPO

BIN = REPO / ".venv" / "backend" / "bin"

FIRST = ["ada", "grace", "alan", "edsger", "barbara", "donald", "margaret", "john", "frances", "ken", "radia", "tim", "sophie", "linus", "anita"]
LAST = ["lovelace", "hopper", "turing", "dijkstra", "liskov", "knuth", "hamilton", "mccarthy", "allen", "thompson", "perlman", "o'neil", "wilson", "van der berg", "borg"]
DOMAINS = ["example.com", "example.org", "mail.example.net", "shop.example.co.uk"]
DIRTY_KINDS = ("bad_email", "bad_phone", "stray_spaces", "upper_email", "empty_name")


def phone(rng: random.Random) -> str:
    """A valid number, written the ways people write them."""
    kind = rng.randrange(3)
    if kind == 0:
        return f"020 {rng.choice('378')}{rng.randrange(100, 1000)} {rng.randrange(1000, 10000)}"  # London, national form
    if kind == 1:
        return f"+44 79{rng.randrange(10, 100)} {rng.randrange(100000, 1000000)}"  # UK mobile (a few are unassigned)
    return f"+1 212-{rng.randrange(200, 1000)}-{rng.randrange(1000, 10000)}"  # New York


def clean_row(rng: random.Random, number: int) -> list[str]:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    email = f"{first}.{last.replace(' ', '').replace(chr(39), '')}{number}@{rng.choice(DOMAINS)}"
    name = f"{first} {last}"
    name = name.title() if rng.random() < 0.6 else name.upper() if rng.random() < 0.5 else name
    return [name, email, phone(rng) if rng.random() < 0.8 else ""]


def make_dirty(rng: random.Random, row: list[str], kind: str) -> list[str]:
    name, email, number = row
    if kind == "bad_email":
        email = rng.choice([email.replace("@", " at "), email.split("@")[0] + "@", email.replace(".", "..", 1), "n/a"])
    elif kind == "bad_phone":
        number = rng.choice(["12345", "call after 6", "+44 20", "0000000000000000"])
    elif kind == "stray_spaces":
        name, email, number = f"  {name}\t", f" {email}  ", f" {number or '020 7946 0958'} "
    elif kind == "upper_email":
        email = email.upper()
    else:
        name = ""
    return [name, email, number]


def duplicate_of(rng: random.Random, row: list[str]) -> list[str]:
    name, email, number = row
    email = rng.choice([email.upper(), f"  {email}", email.capitalize() + " "])
    return [rng.choice([name, name.lower(), ""]), email, rng.choice([number, ""])]


def write_csv(path: Path, rows: int, seed: int) -> dict:
    rng = random.Random(seed)
    dirty, duplicates = rows // 10, rows // 20
    originals = [clean_row(rng, number) for number in range(rows - duplicates)]
    for index, slot in enumerate(rng.sample(range(len(originals)), dirty)):
        originals[slot] = make_dirty(rng, originals[slot], DIRTY_KINDS[index % len(DIRTY_KINDS)])
    valid = [row for row in originals if "@" in row[1] and not row[1].endswith("@") and " at " not in row[1] and ".." not in row[1]]
    data = originals + [duplicate_of(rng, rng.choice(valid)) for _ in range(duplicates)]
    rng.shuffle(data)
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["Full Name", "E-mail", "Mobile"])
        writer.writerows(data)
    return {"rows": len(data), "dirty": dirty, "duplicates": duplicates, "bytes": path.stat().st_size}


def run_import(env: dict, csv_path: Path, report: Path, cwd: Path, jobs: int | None) -> dict:
    """Run the command; wall time, CPU time, max RSS and its JSON figures."""
    command = [str(BIN / "crm"), "import-customers", str(csv_path), "--default-region", "GB", "--report", str(report)]
    if jobs is not None:
        command += ["--jobs", str(jobs)]
    started = time.perf_counter()
    child = subprocess.Popen(
        command,
        env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    output = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)  # usage of the child and its cleaning processes
    seconds = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        sys.exit(f"crm import-customers failed ({child.returncode}):\n{output}")
    figures = json.loads(output.strip().splitlines()[-1])
    return {
        "wall_seconds": round(seconds, 2),
        # CPU time says what the wall time would be on an idle machine, roughly.
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        **figures,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=10)
    parser.add_argument("--jobs", type=int, default=None, help="Cleaning processes (crm import-customers --jobs).")
    parser.add_argument("--keep", action="store_true", help="Keep the temporary directory (CSV, database, reports).")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="crm-import-bench-"))
    try:
        csv_path = tmp / "customers.csv"
        made = write_csv(csv_path, args.rows, args.seed)
        print(f"Wrote {made['rows']} rows ({made['dirty']} dirty, {made['duplicates']} duplicates, {made['bytes'] / 1e6:.1f} MB) to {csv_path}")
        env = {
            **os.environ,
            "DATABASE_URL": f"sqlite:///{tmp / 'crm.db'}",
            "NEED_MODEL_PATH": str(tmp / "no-model.skops"),
            "CRM_SECRET_KEY": "bench",
        }
        subprocess.run([str(BIN / "crm"), "init-db"], env=env, cwd=tmp, check=True, capture_output=True)
        runs = {}
        for label in ("empty database", "same file again"):
            runs[label] = run_import(env, csv_path, tmp / f"report-{len(runs) + 1}.csv", tmp, args.jobs)
            figures = runs[label]
            print(
                f"{label}: {figures['wall_seconds']:.1f} s ({figures['cpu_seconds']:.1f} s CPU), peak RSS {figures['peak_rss_mb']:.0f} MB; "
                f"read {figures['read']}, created {figures['created']}, updated {figures['updated']}, "
                f"unchanged {figures['unchanged']}, merged {figures['merged']}, rejected {figures['rejected']}, "
                f"warnings {figures['warnings']}, cleaning rate {figures['cleaning_rate']} %"
            )
        print(json.dumps({"file": made, "runs": runs}))
    finally:
        if args.keep:
            print(f"Kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
