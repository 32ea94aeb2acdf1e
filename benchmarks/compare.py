"""Compare two benchmark runs figure by figure and flag slowdowns beyond noise.

Command: ``python benchmarks/compare.py OLD NEW [--threshold 0.05]``; OLD and NEW are
``.jsonl`` files written by ``run.py`` (or folders of them). Rows are matched by suite, case
and strategy (the newest row of each in a file). For every figure both have, the change is
printed; a figure is flagged when it got worse by more than ``--threshold`` and by more than
the noise: for rates, the new run's best round is below the old run's worst round (the
min-max ranges of the repeats do not overlap); for compile times, which are measured once,
when they grew by more than 3 × threshold. The exit status is 1 when anything is flagged, so
a CI job can run it.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys

# figure -> (higher is better, (min, max) fields of its repeats or None)
FIGURES = {
    "steps_per_s": (True, ("steps_per_s_min", "steps_per_s_max")),
    "items_per_s": (True, ("items_per_s_min", "items_per_s_max")),
    "hand_steps_per_s": (True, ("hand_steps_per_s_min", "hand_steps_per_s_max")),
    "ratio_to_hand": (True, None),
    "ratio_to_torch": (True, None),
    "achieved_flops": (True, None),
    "compile_s": (False, None),
    "seconds_to_target": (False, None),
}


def load(path: str) -> dict[tuple, dict]:
    """{(suite, case, strategy): newest row} from a .jsonl file or a folder of them."""
    files = sorted(glob.glob(os.path.join(path, "*.jsonl"))) if os.path.isdir(path) else [path]
    if not files:
        raise SystemExit(f"compare: no .jsonl files in {path}")
    rows = {}
    for name in files:
        with open(name) as f:
            for line in f:
                if line.strip():
                    row = json.loads(line)
                    suite = row.get("suite", os.path.basename(name).rsplit(".", 1)[0])
                    rows[(suite, row.get("case", row.get("shape")), row.get("strategy"))] = row
    return rows


def judge(figure: str, old: dict, new: dict, threshold: float) -> tuple[float, bool]:
    """(relative change, whether it is a slowdown beyond noise) of ``figure``."""
    higher_better, spread = FIGURES[figure]
    before, after = float(old[figure]), float(new[figure])
    change = (after - before) / before if before else 0.0
    worse = -change if higher_better else change
    if worse <= threshold:
        return change, False
    if spread and all(k in old and k in new for k in spread):
        low, high = spread
        if higher_better:
            return change, float(new[high]) < float(old[low])
        return change, float(new[low]) > float(old[high])
    limit = 3 * threshold if figure in ("compile_s", "seconds_to_target") else threshold
    return change, worse > limit


def compare(old: dict, new: dict, threshold: float) -> tuple[list[str], int]:
    lines, flagged = [], 0
    for key in sorted(set(old) & set(new), key=str):
        for figure in FIGURES:
            a, b = old[key].get(figure), new[key].get(figure)
            if not isinstance(a, int | float) or not isinstance(b, int | float):
                continue
            change, slower = judge(figure, old[key], new[key], threshold)
            flagged += slower
            mark = "  SLOWER" if slower else ""
            name = "/".join(str(k) for k in key if k)
            lines.append(f"{name:<40} {figure:<18} {a:12.4g} -> {b:12.4g}  {change:+7.1%}{mark}")
    for key in sorted(set(old) ^ set(new), key=str):
        side = "only in OLD" if key in old else "only in NEW"
        lines.append(f"{'/'.join(str(k) for k in key if k):<40} {side}")
    return lines, flagged


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("old")
    parser.add_argument("new")
    parser.add_argument("--threshold", type=float, default=0.05, help="relative change")
    args = parser.parse_args(argv)
    lines, flagged = compare(load(args.old), load(args.new), args.threshold)
    print("\n".join(lines))
    print(f"{flagged} figure(s) slower beyond noise" if flagged else "no slowdown beyond noise")
    return 1 if flagged else 0


if __name__ == "__main__":
    sys.exit(main())
