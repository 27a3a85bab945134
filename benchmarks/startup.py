"""Start-up: what ``import funnelsim.cli`` costs, and how much of a single ``funnelsim run`` is simulation.

    python benchmarks/startup.py [--repeats 5]

(a) ``python -X importtime -c "import funnelsim.cli"`` in fresh processes: the cumulative
import time of ``funnelsim.cli`` (median; target <= 0.3 s), the ten costliest imports made
while importing it, as shares of that total, and which heavy libraries (numpy, scipy,
pandas, matplotlib, rich) ``import funnelsim.cli``, ``funnelsim --help`` and ``funnelsim
--version`` import (target: none, but rich, which prints the help and the version).

(b) The share of ``funnelsim run scenarios/baseline.toml -q`` (one run, no ``--out``) that is
simulation (target >= 0.70): the whole process timed from outside, against the warm start's
pilot runs and the run itself, as the command makes them, timed inside another fresh
process after its imports; the two back to back, ``--repeats`` times, and the median of
their ratios.

Medians of ``--repeats`` fresh processes; ratios first, since absolute seconds on these
shared machines move by a third from one window to the next. Run it with the interpreter
and ``PYTHONPATH`` of the tree being measured: the processes it starts inherit both.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BASELINE = ROOT / "scenarios" / "baseline.toml"
HEAVY = ("numpy", "scipy", "pandas", "matplotlib", "rich")


def _importtime(code: list[str]) -> list[tuple[int, int, str]]:
    """``(depth, cumulative microseconds, module)`` of each import of one fresh ``python -X importtime``
    process, in its report's order (a module's imports are the deeper lines just above it)."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", *code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    rows = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "[us]" in line:
            continue
        _, total, name = line.split("|")
        rows.append(((len(name) - len(name.lstrip())) // 2, int(total), name.strip()))
    return rows


def _beneath(rows: list[tuple[int, int, str]], module: str) -> tuple[int, dict[str, int]]:
    """``module``'s cumulative microseconds, and those of each import made while importing it."""
    at = next(i for i, (_, _, name) in enumerate(rows) if name == module)
    depth, total, _ = rows[at]
    first = at
    while first > 0 and rows[first - 1][0] > depth:
        first -= 1
    return total, {name: micros for _, micros, name in rows[first:at]}


def _startup(repeats: int) -> None:
    runs = [_beneath(_importtime(["-c", "import funnelsim.cli"]), "funnelsim.cli") for _ in range(repeats)]
    total = statistics.median(t for t, _ in runs)
    print(f"(a) import funnelsim.cli: {total / 1e6:.3f} s (median of {repeats} fresh processes; target <= 0.3 s)")
    names = {name for _, beneath in runs for name in beneath}
    costs = {name: statistics.median(beneath.get(name, 0) for _, beneath in runs) for name in names}
    print("    costliest imports beneath it (cumulative, share of the total):")
    for name in sorted(costs, key=costs.__getitem__, reverse=True)[:10]:
        print(f"    {costs[name] / total:6.1%}  {name}  ({costs[name] / 1e3:.0f} ms)")
    for label, code in (
        ("import funnelsim.cli", ["-c", "import funnelsim.cli"]),
        ("funnelsim --help", ["-m", "funnelsim", "--help"]),
        ("funnelsim --version", ["-m", "funnelsim", "--version"]),
    ):
        loaded = {name for _, _, name in _importtime(code)}
        heavy = [h for h in HEAVY if h in loaded]
        print(f"    {label}: imports {', '.join(heavy) or 'none'} of {', '.join(HEAVY)}")


def _process_seconds() -> float:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "funnelsim", "run", str(BASELINE), "-q"],
        stdout=subprocess.DEVNULL,
        check=True,
        cwd=ROOT,
    )
    return time.perf_counter() - start


SIMULATION = f"""
import time
from funnelsim import load_scenario
from funnelsim.engine import simulate, warm_start
from funnelsim.randomness import resolve_seed

scenario = load_scenario({str(BASELINE)!r})
seed = resolve_seed(scenario, None)
start = time.perf_counter()
resolved, _ = warm_start(scenario, seed)
simulate(resolved, seed=seed, replication=0)
print(time.perf_counter() - start)
"""


def _simulation_seconds() -> float:
    """The warm start's pilot runs and the run, timed inside a fresh process after its imports, as
    ``funnelsim run`` makes them (a fresh process each time: the warm start is remembered per process)."""
    done = subprocess.run([sys.executable, "-c", SIMULATION], capture_output=True, text=True, check=True, cwd=ROOT)
    return float(done.stdout)


def _share(repeats: int) -> None:
    """Whole process and simulation measured in turn, so that both see the same load of the machine."""
    wholes, simulations = [], []
    for _ in range(repeats):
        wholes.append(_process_seconds())
        simulations.append(_simulation_seconds())
    share = statistics.median(s / w for s, w in zip(simulations, wholes, strict=True))
    simulation, whole = statistics.median(simulations), statistics.median(wholes)
    print(
        f"(b) funnelsim run baseline.toml -q: simulation / whole process = {share:.2f} (target >= 0.70; "
        f"median of {repeats} pairs; medians {simulation:.2f} s of {whole:.2f} s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5, help="fresh processes per median")
    args = parser.parse_args()
    _startup(args.repeats)
    _share(args.repeats)


if __name__ == "__main__":
    main()
