"""Writes the query bodies `rotate.lua` posts: one `/points/query` JSON per line, from the
exported queries of `filtered.py --export DIR` (numpy only).

    python bodies.py EXPORT_DIR EF > bodies-efEF.txt
    BODIES=bodies-efEF.txt wrk -t2 -c32 -d10s -s rotate.lua http://127.0.0.1:PORT/collections/c/points/query
"""
import json
import sys

import numpy as np


def main():
    export, ef = sys.argv[1], int(sys.argv[2])
    raw = np.fromfile(f"{export}/queries.fvecs", dtype="<i4")
    d = raw[0]
    queries = raw.reshape(-1, d + 1)[:, 1:].view("<f4")
    for q in queries:
        print(json.dumps({"query": [round(float(x), 7) for x in q], "limit": 10, "params": {"hnsw_ef": ef}}))


if __name__ == "__main__":
    main()
