"""Back-to-back HNSW build times: hnswlib vs `neardb build`, alternating, same data.

The harness times one build per peer per run, and this VM's speed drifts by tens of percent
between runs, so a build ratio from one harness run is noisy. This alternates the two builds
(M 16, ef_construction 200) and prints each pair's ratio. NearDB's figure is its own reported
build time (the file read and write excluded, as the harness's `build_s`).

    cd ../shared/bench && .venv/bin/python /work/main/bench/scripts/build_vs_hnswlib.py \
        clustered-384-cos-100k cosine 2,2,2 [path/to/neardb]
"""
import subprocess
import sys
import time

import hnswlib
import numpy as np

sys.path.insert(0, ".")
from vecio import read_vecs  # noqa: E402  (the harness's reader; run from ../shared/bench)

dataset, metric, threads = sys.argv[1], sys.argv[2], [int(t) for t in sys.argv[3].split(",")]
neardb = sys.argv[4] if len(sys.argv) > 4 else "../../main/target/release/neardb"
base = f"data/{dataset}/base.fvecs"
x = np.ascontiguousarray(read_vecs(base), dtype=np.float32)
for t in threads:
    start = time.perf_counter()
    index = hnswlib.Index(space="l2" if metric == "l2" else "cosine", dim=x.shape[1])
    index.init_index(max_elements=x.shape[0], M=16, ef_construction=200, random_seed=100)
    index.add_items(x, num_threads=t)
    theirs = time.perf_counter() - start
    del index
    out = subprocess.run(
        [neardb, "build", "--base", base, "--metric", metric, "--index", "hnsw", "--threads", str(t),
         "-o", "/tmp/build_vs_hnswlib.neardb"],
        check=True, capture_output=True, text=True).stdout
    ours = float(out.split(" in ")[1].split(" s")[0])
    print(f"{t} threads: hnswlib {theirs:.2f} s, neardb {ours:.2f} s, ratio {ours / theirs:.3f}", flush=True)
