"""How fast the CLI answers when it does no evaluation (target: under 0.3 s each).

    python benchmarks/cli_startup.py [--repeat 7]

Prints the median wall time of `evalkit --help`, `evalkit tasks` and `evalkit models`, run as fresh processes,
and whether torch/transformers were imported (they must not be).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

COMMANDS = (["--help"], ["tasks"], ["models"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    probe = ("import sys; from evalkit.cli import main; main(sys.argv[1:]); "
             "sys.stderr.write('HEAVY' if {'torch', 'transformers'} & set(sys.modules) else 'LIGHT')")
    for command in COMMANDS:
        times = []
        heavy = "?"
        for _ in range(args.repeat):
            start = time.perf_counter()
            done = subprocess.run([sys.executable, "-c", probe, *command], capture_output=True, text=True, check=True)
            times.append(time.perf_counter() - start)
            heavy = done.stderr.strip()[-5:]
        median = statistics.median(times)
        print(f"evalkit {' '.join(command):8s} median {median:.3f} s  (min {min(times):.3f})  imports: {heavy}"
              f"  {'OK' if median < 0.3 else 'SLOW'}")


if __name__ == "__main__":
    main()
