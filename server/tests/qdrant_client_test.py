"""The official qdrant-client (pinned in scripts/test-server.sh) against `neardb serve`.

    python qdrant_client_test.py load   PORT STATE.json   # create, upsert 10k, query, filters, ...
    python qdrant_client_test.py verify PORT STATE.json   # after a restart: everything still there
    python qdrant_client_test.py keys   PORT FULL_KEY READ_KEY

Every check compares with brute force over the same data; any mismatch exits non-zero.
"""
import json
import sys
import urllib.request
import uuid

import numpy as np
from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import UnexpectedResponse

DIM = 32
N = 10_000


def data():
    rng = np.random.default_rng(42)
    centers = rng.normal(size=(20, DIM))
    vecs = (centers[rng.integers(0, 20, N)] + 0.3 * rng.normal(size=(N, DIM))).astype(np.float32)
    ids = list(range(N - 10)) + [str(uuid.UUID(int=int(rng.integers(1, 2**62)) * 7919)) for _ in range(10)]
    payloads = [{"tag": f"t{i % 10}", "num": i / N, "group": i % 3, "words": ["a", f"w{i % 4}"]} for i in range(N)]
    return ids, vecs, payloads


def unit(v):
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def brute(vecs, q, mask, k):
    s = unit(vecs) @ unit(q)
    s = np.where(mask, s, -np.inf)
    order = np.argsort(-s, kind="stable")[:k]
    return [int(i) for i in order if np.isfinite(s[i])]


def expect(cond, what):
    if not cond:
        print("FAILED:", what, file=sys.stderr)
        sys.exit(1)


def client(port, key=None):
    return QdrantClient(url=f"http://127.0.0.1:{port}", api_key=key, https=False, check_compatibility=False, timeout=120)


def load(port, state_path):
    c = client(port)
    ids, vecs, payloads = data()
    expect(not c.collection_exists("docs"), "no collection yet")
    c.create_collection("docs", vectors_config=models.VectorParams(size=DIM, distance=models.Distance.COSINE))
    expect(c.collection_exists("docs"), "collection exists after create")
    expect([x.name for x in c.get_collections().collections] == ["docs"], "listed")
    for lo in range(0, N, 1000):
        c.upsert("docs", wait=True, points=[
            models.PointStruct(id=ids[i], vector=vecs[i].tolist(), payload=payloads[i]) for i in range(lo, lo + 1000)])
    info = c.get_collection("docs")
    expect(info.points_count == N, f"points_count {info.points_count}")
    expect(info.config.params.vectors.size == DIM, "size in the collection info")
    expect(c.count("docs").count == N, "count")
    tags = np.array([p["tag"] for p in payloads])
    nums = np.array([p["num"] for p in payloads])
    flt = models.Filter(must=[models.FieldCondition(key="tag", match=models.MatchValue(value="t3")),
                              models.FieldCondition(key="num", range=models.Range(lt=0.5))])
    fmask = (tags == "t3") & (nums < 0.5)
    expect(c.count("docs", count_filter=flt).count == int(fmask.sum()), "filtered count")

    rng = np.random.default_rng(7)
    hits = total = 0
    for qi in range(50):
        q = vecs[rng.integers(0, N)] + 0.1 * rng.normal(size=DIM).astype(np.float32)
        for mask, f in [(np.ones(N, bool), None), (fmask, flt)]:
            got = c.query_points("docs", query=q.tolist(), limit=10, query_filter=f, search_params=models.SearchParams(hnsw_ef=128)).points
            want = [ids[i] for i in brute(vecs, q, mask, 10)]
            hits += len(set(p.id for p in got) & set(want))
            total += len(want)
            expect(len(got) == min(10, int(mask.sum())), "never short")
            expect(all(a.score >= b.score for a, b in zip(got, got[1:])), "scores descending (cosine)")
            if f is not None:
                expect(all(payloads[ids.index(p.id)]["tag"] == "t3" for p in got), "filter respected")
    expect(hits / total >= 0.95, f"recall {hits / total}")
    # The old search endpoint, scores and payloads.
    q = vecs[5]
    res = c.search("docs", query_vector=q.tolist(), limit=3, with_payload=True) if hasattr(c, "search") else \
        c.query_points("docs", query=q.tolist(), limit=3, with_payload=True).points
    expect(res[0].id == 5 and abs(res[0].score - 1.0) < 1e-4, f"self match {res[0]}")
    expect(res[0].payload == payloads[5], "payload returned")
    # Retrieve with vectors (stored normalised under Cosine), by int and UUID ids.
    recs = c.retrieve("docs", ids=[7, ids[-1], 123456789], with_vectors=True)
    expect(sorted(str(r.id) for r in recs) == sorted([str(7), ids[-1]]), "retrieve skips unknown ids")
    for r in recs:
        i = ids.index(r.id)
        expect(np.allclose(r.vector, unit(vecs[i]), atol=1e-5), "vector round trip")
        expect(r.payload == payloads[i], "payload round trip")
    # Scroll every point with tag t1, page by page.
    seen, offset = [], None
    while True:
        page, offset = c.scroll("docs", scroll_filter=models.Filter(must=[
            models.FieldCondition(key="tag", match=models.MatchValue(value="t1"))]), limit=137, offset=offset)
        seen += [p.id for p in page]
        if offset is None:
            break
    want = [ids[i] for i in range(N) if tags[i] == "t1"]
    expect(sorted(map(str, seen)) == sorted(map(str, want)) and len(seen) == len(set(map(str, seen))), "scroll pages")
    # Any-of, must_not, has_id.
    f2 = models.Filter(must=[models.FieldCondition(key="words", match=models.MatchAny(any=["w1", "w2"]))],
                       must_not=[models.FieldCondition(key="group", match=models.MatchValue(value=0))])
    m2 = np.array([p["words"][1] in ("w1", "w2") and p["group"] != 0 for p in payloads])
    expect(c.count("docs", count_filter=f2).count == int(m2.sum()), "any-of and must_not")
    f3 = models.Filter(must=[models.HasIdCondition(has_id=[1, 2, ids[-2], 999999])])
    expect(c.count("docs", count_filter=f3).count == 3, "has_id")
    # Delete by filter; set payload.
    c.delete("docs", points_selector=models.FilterSelector(filter=models.Filter(must=[
        models.FieldCondition(key="tag", match=models.MatchValue(value="t9"))])), wait=True)
    expect(c.count("docs").count == N - 1000, "delete by filter")
    c.delete("docs", points_selector=models.PointIdsList(points=[0, 10]), wait=True)
    c.set_payload("docs", payload={"flag": True}, points=[1, 2], wait=True)
    expect(c.retrieve("docs", ids=[1])[0].payload["flag"] is True, "set payload")
    expect(c.retrieve("docs", ids=[1])[0].payload["tag"] == "t1", "set payload keeps the rest")
    # Bad input: clear errors with Qdrant's status codes.
    for call, status in [
        (lambda: c.upsert("docs", points=[models.PointStruct(id=1, vector=[0.1] * 3)]), 400),
        (lambda: c.query_points("nope", query=[0.0] * DIM), 404),
        (lambda: c.create_collection("docs", vectors_config=models.VectorParams(size=4, distance=models.Distance.DOT)), 400),
    ]:
        try:
            call()
            expect(False, f"expected HTTP {status}")
        except UnexpectedResponse as e:
            expect(e.status_code == status, f"status {e.status_code}, wanted {status}: {e}")
    # Vectors on disk: after a commit the segment is an SSD index, searched as any other.
    c.create_collection("ondisk", vectors_config=models.VectorParams(size=DIM, distance=models.Distance.COSINE, on_disk=True))
    expect(c.get_collection("ondisk").config.params.vectors.on_disk is True, "on_disk in the collection info")
    for lo in range(0, 3000, 1000):
        c.upsert("ondisk", wait=True, points=[
            models.PointStruct(id=i, vector=vecs[i].tolist(), payload=payloads[i]) for i in range(lo, lo + 1000)])
    commit = urllib.request.Request(f"http://127.0.0.1:{port}/neardb/collections/ondisk/commit", data=b"{}",
                                    headers={"Content-Type": "application/json"}, method="POST")
    expect(json.load(urllib.request.urlopen(commit))["status"] == "ok", "commit")
    check_ondisk(c, vecs, payloads)
    json.dump({"count": N - 1002}, open(state_path, "w"))
    print("load: ok")


def check_ondisk(c, vecs, payloads):
    sub = vecs[:3000]
    tmask = np.array([p["tag"] == "t3" for p in payloads[:3000]])
    flt = models.Filter(must=[models.FieldCondition(key="tag", match=models.MatchValue(value="t3"))])
    rng = np.random.default_rng(11)
    hits = total = 0
    for _ in range(30):
        q = sub[rng.integers(0, 3000)] + 0.1 * rng.normal(size=DIM).astype(np.float32)
        for mask, f in [(np.ones(3000, bool), None), (tmask, flt)]:
            got = c.query_points("ondisk", query=q.tolist(), limit=10, query_filter=f,
                                 search_params=models.SearchParams(hnsw_ef=128)).points
            want = brute(sub, q, mask, 10)
            expect(len(got) == 10, "on disk: never short")
            if f is not None:
                expect(all(payloads[p.id]["tag"] == "t3" for p in got), "on disk: filter respected")
            hits += len(set(p.id for p in got) & set(want))
            total += len(want)
    expect(hits / total >= 0.95, f"on disk: recall {hits / total}")


def verify(port, state_path):
    c = client(port)
    st = json.load(open(state_path))
    ids, vecs, payloads = data()
    expect(c.count("docs").count == st["count"], f"count after restart {c.count('docs').count}")
    expect(c.retrieve("docs", ids=[0, 9]) == [], "deleted stay deleted")
    r = c.retrieve("docs", ids=[1, ids[-2]], with_vectors=True)
    expect(len(r) == 2 and r[0].payload.get("flag") is True, f"records and payload changes survive a restart: {r}")
    got = c.query_points("docs", query=vecs[3].tolist(), limit=1).points
    expect(got[0].id == 3, "search after restart")
    check_ondisk(c, vecs, payloads)
    c.delete_collection("ondisk")
    c.delete_collection("docs")
    expect(not c.collection_exists("docs"), "deleted collection")
    print("verify: ok")


def keys(port, full, read):
    ro = client(port, read)
    ro.get_collections()
    try:
        ro.create_collection("k", vectors_config=models.VectorParams(size=4, distance=models.Distance.EUCLID))
        expect(False, "a read-only key created a collection")
    except UnexpectedResponse as e:
        expect(e.status_code == 403, f"read-only write: {e.status_code}")
    rw = client(port, full)
    rw.create_collection("k", vectors_config=models.VectorParams(size=4, distance=models.Distance.EUCLID))
    rw.upsert("k", points=[models.PointStruct(id=1, vector=[0, 0, 3, 4])], wait=True)
    got = ro.query_points("k", query=[0, 0, 0, 0], limit=1).points
    expect(got[0].id == 1 and abs(got[0].score - 5.0) < 1e-5, "Euclid score is the distance")
    for k in (None, "wrong"):
        try:
            client(port, k).get_collections()
            expect(False, f"key {k!r} accepted")
        except UnexpectedResponse as e:
            expect(e.status_code in (401, 403), f"key {k!r}: {e.status_code}")
    print("keys: ok")


if __name__ == "__main__":
    mode, port = sys.argv[1], int(sys.argv[2])
    {"load": lambda: load(port, sys.argv[3]), "verify": lambda: verify(port, sys.argv[3]),
     "keys": lambda: keys(port, sys.argv[3], sys.argv[4])}[mode]()
