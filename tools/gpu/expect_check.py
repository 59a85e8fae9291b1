"""Compare a mini-dataset run (junit XML) with its expect.json: every correct solution's items
passed, every wrong one's failed with its declared status. Prints one line per mismatch and a
summary; exit 1 on any mismatch. Usage: python expect_check.py junit.xml expect.json"""
import collections
import json
import sys
import xml.etree.ElementTree as ET

junit, expect = sys.argv[1], json.load(open(sys.argv[2]))
counts: collections.Counter[str] = collections.Counter()
bad = 0
for case in ET.parse(junit).getroot().iter("testcase"):
    nodeid = case.get("classname", "").replace(".", "::") + "::" + case.get("name", "")
    if "::correctness[" not in nodeid:
        continue
    solution = nodeid.split("::correctness[")[0].split("::")[-1]
    want = expect.get(solution, {}).get("expect")
    failure = case.find("failure")
    skipped = case.find("skipped")
    got = ("SKIPPED" if skipped is not None else "PASSED" if failure is None
           else (failure.text or "").lstrip().split(" ")[0].split("\n")[0].rstrip(":"))
    ok = got == want
    counts[f"{'ok' if ok else 'MISMATCH'} {want}"] += 1
    if not ok:
        bad += 1
        print(f"MISMATCH {nodeid}: expected {want}, got {got}: "
              f"{(failure.text if failure is not None else skipped.get('message', '') if skipped is not None else '')[:300]}")
print(dict(counts))
sys.exit(1 if bad else 0)
