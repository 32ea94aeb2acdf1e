"""Compare two benchmark runs figure by figure and flag slowdowns beyond noise.

Command: ``python benchmarks/compare.py OLD NEW [--threshold 0.05]``; OLD and NEW are
``.jsonl`` files written by ``run.py`` (or folders of them). Rows are matched by suite,
case, strategy and precision (the newest row of each in a file). For every figure both
have, the change is printed; a figure is flagged when it got worse by more than
``--threshold`` (5%) and by more than the noise. For rates that means the new run's best
round is below the old run's worst round: the min-max ranges of the repeats do not overlap
(examples/s and FLOP/s take the range of steps/s). Compile times and times to accuracy are
measured once, and the shared machines these run on vary by up to 40%, so they are flagged
only when they grew by more than ``--once-threshold`` (50%). The exit status is 1 when
anything is flagged, so a CI job can run it.

Last run on 2 cores of an AMD EPYC, 2026-11-22, between two zoo runs of the small models
an hour apart: 5 figures flagged, the GCN's steps/s (1126 -> 716, ranges apart: the shared
machine's drift, the same code) and two FLOP/s figures whose source changed from the
analytic count to XLA's between the versions.
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
PROPORTIONAL = ("items_per_s", "achieved_flops")  # steps/s times a constant


def load(path: str) -> dict[tuple, dict]:
    """{(suite, case, strategy, precision): newest row} from a .jsonl file or a folder."""
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
                    case = row.get("case", row.get("shape"))
                    rows[(suite, case, row.get("strategy"), row.get("precision"))] = row
    return rows


def _range(figure: str, row: dict) -> tuple[float, float] | None:
    """The (worst, best)-round range of ``figure`` in ``row``: its own min and max, or for
    a figure proportional to steps/s (examples/s, FLOP/s), the steps/s range scaled."""
    spread = FIGURES[figure][1]
    if spread and all(k in row for k in spread):
        return float(row[spread[0]]), float(row[spread[1]])
    if figure in PROPORTIONAL and all(k in row for k in FIGURES["steps_per_s"][1]):
        scale = float(row[figure]) / float(row["steps_per_s"])
        low, high = FIGURES["steps_per_s"][1]
        return float(row[low]) * scale, float(row[high]) * scale
    return None


def judge(figure: str, old: dict, new: dict, threshold: float, once: float) -> tuple[float, bool]:
    """(relative change, whether it is a slowdown beyond noise) of ``figure``; ``once`` is
    the threshold for figures measured once (compile time, time to accuracy)."""
    higher_better = FIGURES[figure][0]
    before, after = float(old[figure]), float(new[figure])
    change = (after - before) / before if before else 0.0
    worse = -change if higher_better else change
    if worse <= threshold:
        return change, False
    old_range, new_range = _range(figure, old), _range(figure, new)
    if old_range and new_range:
        if higher_better:
            return change, new_range[1] < old_range[0]
        return change, new_range[0] > old_range[1]
    limit = once if figure in ("compile_s", "seconds_to_target") else threshold
    return change, worse > limit


def compare(old: dict, new: dict, threshold: float, once: float) -> tuple[list[str], int]:
    lines, flagged = [], 0
    for key in sorted(set(old) & set(new), key=str):
        for figure in FIGURES:
            a, b = old[key].get(figure), new[key].get(figure)
            if not isinstance(a, int | float) or not isinstance(b, int | float):
                continue
            change, slower = judge(figure, old[key], new[key], threshold, once)
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
    parser.add_argument(
        "--once-threshold", type=float, default=0.5,
        help="relative change for figures measured once: compile time, time to accuracy",
    )  # fmt: skip
    args = parser.parse_args(argv)
    lines, flagged = compare(load(args.old), load(args.new), args.threshold, args.once_threshold)
    print("\n".join(lines))
    print(f"{flagged} figure(s) slower beyond noise" if flagged else "no slowdown beyond noise")
    return 1 if flagged else 0


if __name__ == "__main__":
    sys.exit(main())
