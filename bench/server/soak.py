"""Writer half of the server soak: replaces existing points (batches of 100, at about RATE
points/s) for SECONDS, while a load generator searches; prints what it wrote.

    python soak.py PORT EXPORT_DIR SECONDS RATE
"""
import json
import random
import sys
import time

import httpx


def main():
    port, export, seconds, rate = int(sys.argv[1]), sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
    recs = []
    with open(f"{export}/records.jsonl") as f:
        for i, line in enumerate(f):
            if i >= 20000:
                break
            r = json.loads(line)
            recs.append({"id": r["id"], "vector": r["vector"], "payload": r["metadata"]})
    http = httpx.Client(timeout=600)
    rng = random.Random(1)
    t0 = time.perf_counter()
    written = 0
    while time.perf_counter() - t0 < seconds:
        batch = rng.sample(recs, 100)
        http.put(f"http://127.0.0.1:{port}/collections/c/points?wait=true", json={"points": batch}).raise_for_status()
        written += 100
        ahead = written / rate - (time.perf_counter() - t0)
        if ahead > 0:
            time.sleep(ahead)
    print(json.dumps({"what": "soak-writes", "points": written, "s": round(time.perf_counter() - t0, 1)}))


if __name__ == "__main__":
    main()
