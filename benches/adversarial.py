#!/usr/bin/env python3
"""Looks for lines that make clawscrub slow: every rule's examples, negative examples and
anchors, each repeated (with one of a few separators) into 20 lines of about 60 KB, plain and
as a JSON string, timed through the whole process. Prints the slowest, in MB/s.

Usage: benches/adversarial.py [BINARY] [N]   (default target/release/clawscrub, 40)
A quadratic cost shows as a figure that falls when LINE grows; a linear one stays put.
Needs Python 3.11 (tomllib). Some 15,000 runs: about 10 minutes.
"""
import glob
import json
import os
import subprocess
import sys
import time
import tomllib

LINE = 60_000
LINES = 20
SEPARATORS = ["!", "", " ", '"', "\\n"]

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
binary = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "target/release/clawscrub")
shown = int(sys.argv[2]) if len(sys.argv) > 2 else 40

results = []
for pack in sorted(glob.glob(os.path.join(root, "patterns/*.toml"))):
    with open(pack, "rb") as f:
        rules = tomllib.load(f).get("rule", [])
    for rule in rules:
        units = [e["input"] if isinstance(e, dict) else e for e in rule.get("examples", [])]
        units += rule.get("negative_examples", []) + rule.get("anchors", [])
        for unit in units:
            for sep in SEPARATORS:
                piece = unit + sep
                body = piece * max(1, LINE // len(piece))
                for mode, line in [("plain", body.replace("\n", " ")), ("json", json.dumps({"t": body}))]:
                    data = ((line + "\n") * LINES).encode()
                    started = time.perf_counter()
                    subprocess.run([binary], input=data, stdout=subprocess.DEVNULL, check=True)
                    took = time.perf_counter() - started
                    results.append((len(data) / took / 1e6, rule["id"], mode, piece[:60]))

results.sort()
for mbs, rule, mode, piece in results[:shown]:
    print(f"{mbs:7.1f} MB/s  {rule}  {mode}  {piece!r}")
