"""Loads `filtered.py --export` records into `neardb serve` over HTTP in batches of 100 (the
upsert throughput of issue 19), then measures recall@10 of /points/query at each hnsw_ef over
the exported queries and truths, one client.

    python load.py PORT EXPORT_DIR [--ef 16,32,64] [--skip-load]
"""
import argparse
import json
import time

import httpx
import numpy as np


def read_vecs(path, dtype):
    raw = np.fromfile(path, dtype="<i4")
    d = raw[0]
    return raw.reshape(-1, d + 1)[:, 1:].view(dtype)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("export")
    ap.add_argument("--ef", default="16,24,32,48,64")
    ap.add_argument("--skip-load", action="store_true")
    ap.add_argument("--collection", default="c")
    a = ap.parse_args()
    base = f"http://127.0.0.1:{a.port}"
    http = httpx.Client(timeout=600)
    if not a.skip_load:
        bodies, batch = [], []
        with open(f"{a.export}/records.jsonl") as f:
            for line in f:
                r = json.loads(line)
                batch.append({"id": r["id"], "vector": r["vector"], "payload": r["metadata"]})
                if len(batch) == 100:
                    bodies.append(json.dumps({"points": batch}).encode())
                    batch = []
        if batch:
            bodies.append(json.dumps({"points": batch}).encode())
        dim = len(json.loads(bodies[0])["points"][0]["vector"])
        http.delete(f"{base}/collections/{a.collection}")
        r = http.put(f"{base}/collections/{a.collection}", json={"vectors": {"size": dim, "distance": "Cosine"}})
        r.raise_for_status()
        lat = []
        t = time.perf_counter()
        for b in bodies:
            t0 = time.perf_counter()
            r = http.put(f"{base}/collections/{a.collection}/points?wait=true", content=b, headers={"content-type": "application/json"})
            r.raise_for_status()
            lat.append(time.perf_counter() - t0)
        s = time.perf_counter() - t
        n = sum(len(json.loads(b)["points"]) for b in bodies[:1]) * (len(bodies) - 1) + len(json.loads(bodies[-1])["points"])
        lat.sort()
        print(json.dumps({"what": "upsert", "batch": 100, "points": n, "s": round(s, 2), "points_per_s": round(n / s),
                          "p50_ms": round(1000 * lat[len(lat) // 2], 2), "p99_ms": round(1000 * lat[int(len(lat) * 0.99)], 2)}))
        t = time.perf_counter()
        http.post(f"{base}/neardb/collections/{a.collection}/commit", json={}).raise_for_status()
        print(json.dumps({"what": "commit", "s": round(time.perf_counter() - t, 2)}))
    qs = read_vecs(f"{a.export}/queries.fvecs", "<f4")
    truth = read_vecs(f"{a.export}/truth-1.0.ivecs", "<i4")
    for ef in map(int, a.ef.split(",")):
        hits = 0
        t = time.perf_counter()
        for q, tr in zip(qs, truth):
            r = http.post(f"{base}/collections/{a.collection}/points/query",
                          json={"query": q.tolist(), "limit": 10, "params": {"hnsw_ef": ef}})
            r.raise_for_status()
            got = {p["id"] for p in r.json()["result"]["points"]}
            hits += len(got & set(tr[:10].tolist()))
        s = time.perf_counter() - t
        print(json.dumps({"what": "recall", "ef": ef, "recall": hits / (10 * len(qs)), "qps_1_client_python": round(len(qs) / s)}))
    # One query body per ef for the load generator.
    for ef in map(int, a.ef.split(",")):
        with open(f"/tmp/query-ef{ef}.json", "w") as f:
            json.dump({"query": qs[0].tolist(), "limit": 10, "params": {"hnsw_ef": ef}}, f)


if __name__ == "__main__":
    main()
