#!/usr/bin/env python3
"""Prints the figures of a cmk-bench JSON result as Markdown tables (for docs/performance.md)."""
import json
import sys


def fmt(value, unit):
    if value is None or isinstance(value, str) or value != value:
        return "failed"
    if unit == "B/s":
        return f"{value / 1048576:,.0f} MiB/s"
    if unit == "B":
        return f"{value / 1048576:,.1f} MiB"
    if unit == "s":
        return f"{value * 1000:,.1f} ms" if value < 1 else f"{value:,.2f} s"
    if unit == "op/s":
        return f"{value:,.0f}/s"
    if unit == "%":
        return f"{value:.2f} %"
    return f"{value:,.0f} {unit}" if value == int(value) else f"{value:,.2f} {unit}"


def main(path):
    results = json.load(open(path))
    print(f"Run `{results['mode']}` started {results['started']}; machine: " +
          ", ".join(f"{k}: {v}" for k, v in sorted(results["machine"].items())))
    suite = None
    for f in results["figures"]:
        if f["suite"] != suite:
            suite = f["suite"]
            print(f"\n#### {suite}\n\n| figure | value | anchor | ratio | target | detail |\n|---|---:|---:|---:|---|---|")
        anchor = f"{fmt(f['anchor'], f['unit'])} ({f['anchorName']})" if f.get("anchor") is not None else ""
        ratio = f"{f['ratio']:.2f}×" if f.get("ratio") is not None else ""
        target = ""
        if f.get("target"):
            target = f"{f['target']} — {'met' if f.get('met') else '**missed**'}"
        detail = ", ".join(f"{k} {v:,.4g}" if isinstance(v, (int, float)) else f"{k} {v}" for k, v in sorted(f["detail"].items()))
        print(f"| {f['name']} | {fmt(f['value'], f['unit'])} | {anchor} | {ratio} | {target} | {detail} |")
    for note in results.get("notes", []):
        print(f"\n- {note}")


if __name__ == "__main__":
    main(sys.argv[1])
