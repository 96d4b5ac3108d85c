"""Simulated A/B experiments through the plugin's experiment statistics (services/experiment_stats):
how often 200 A/A experiments, looked at every day, declare a winner (false positives), and how
often an arm truly better by the smallest change worth finding is found (power).

    .venv/bin/python bench/experiments.py [--experiments 200] [--baseline 0.05] [--lift 0.2] [--per-day 1000]

Prints one JSON line last."""
import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from personalization.experiments import stats as stats  # noqa: E402  (pure: no Django needed


def run(true_rates, args, seed):
    rng = np.random.default_rng(seed)
    return [
        stats.simulate(true_rates, args.baseline, args.lift, args.per_day, rng, experiment_id=n)
        for n in range(args.experiments)
    ]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiments", type=int, default=200)
    parser.add_argument("--baseline", type=float, default=0.05)
    parser.add_argument("--lift", type=float, default=0.2)
    parser.add_argument("--per-day", type=int, default=1000)
    args = parser.parse_args()
    better = args.baseline * (1 + args.lift)
    a_a = run([args.baseline, args.baseline], args, seed=1)
    a_b = run([args.baseline, better], args, seed=2)
    three = run([args.baseline, better, args.baseline * 0.8], args, seed=3)
    print(json.dumps({
        "shoppers_needed_per_arm": stats.shoppers_needed(args.baseline, args.lift, 2),
        "shoppers_needed_per_arm_3_arms": stats.shoppers_needed(args.baseline, args.lift, 3),
        "experiments": args.experiments,
        "a_a_false_winner_rate": sum(w is not None for w, _ in a_a) / len(a_a),
        "power_better_arm_found": sum(w == 1 for w, _ in a_b) / len(a_b),
        "wrong_arm_declared": sum(w == 0 for w, _ in a_b) / len(a_b),
        "power_3_arms_better_found": sum(w == 1 for w, _ in three) / len(three),
        "days_to_horizon": int(np.median([days for _, days in a_b])),
    }))


if __name__ == "__main__":
    main()
