"""bench/ann/peers.py - the open ANN libraries VexLake is compared with, one
adapter each, all run the same way: one thread for the build and the
search, the whole query matrix in one call where the library has a batch
call (so Python's per-call cost is paid once per pass), one search knob
swept to draw the curve.

Every adapter is a class with
    knob             the name of the swept parameter (ef, nprobe, ...)
    knobs(quick)     the sweep
    build(base, metric, nlist)   metric: "l2" or "cosine"; base float32,
                     already unit-norm on cosine sets
    set(value)       the knob for the next search calls
    search(queries)  -> int64 ids, nq x K (-1 where fewer than K came back);
                     queries unit-norm on cosine sets
    index_bytes()    the library's own size of the index (serialised), or
                     None when it gives none that means anything
    version          the package's version
Rows and queries of cosine sets are normalised before the build (so that
the copy is not counted as the library's memory); libraries get inner
product on them where they have it, else L2, which ranks the same.

Decisions a reader cannot see from the code:
  - Graph peers get VexLake's build parameters: M = 16 (hnswlib, faiss,
    usearch connectivity; vsag max_degree = 2M, the size of hnswlib's layer
    0) and ef_construction = 200.  ngt gets its own ONNG recipe (ANNG with
    100 edges for creation, then 10 outgoing / 120 incoming), because ONNG is
    what ngt is known for.  The optimiser's search-parameter and accuracy-
    table steps are off (about 30 s whatever the size, and they tune
    ngt's expected-accuracy mode, which the epsilon sweep does not use);
    so is the prefetch tuning (15 s of CPU on 4.5k rows, no QPS gain
    measured).  Shortcut reduction, part of ONNG, stays on.  QG cannot be built from the ngt wheel (it has no
    call that quantises; QG needs the qbg command-line tool), so ONNG it is.
  - IVF peers (faiss, scann) get VexLake's nlist (2 sqrt(n)) so the nprobe
    axes line up; faiss IVF-PQ fast-scan uses d/2 sub-quantisers of 4 bits
    and an exact float32 refine of 10x k, scann 2-d anisotropic hashing with
    a re-order of 100.
  - pyvsag has no batch search: its queries go one call each, and the
    Python loop is part of its time.  The bench prints that caveat.
  - usearch's memory_usage counts reserved capacity; serialized_length is
    its index size.  vsag's save() writes a preallocated file (hundreds of
    MB for 3k rows), so it has no index size here; the resident-memory
    growth across its build is reported for every system instead.
"""
import json
import os
import shutil
import tempfile

import numpy as np

K = 10
M = 16
EF_CONSTRUCTION = 200
EFS = [10, 16, 24, 32, 48, 64, 96, 128, 192, 256, 400]
EFS_QUICK = [16, 64, 256]
NPROBES = [1, 2, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256]
NPROBES_QUICK = [4, 16, 64]


def unit(x):
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _version(dist):
    from importlib.metadata import version

    return version(dist)


class Hnswlib:
    knob = "ef"
    version = property(lambda self: _version("hnswlib"))

    def knobs(self, quick):
        return EFS_QUICK if quick else EFS

    def build(self, base, metric, nlist):
        import hnswlib

        self.ix = hnswlib.Index(space="ip" if metric == "cosine" else "l2", dim=base.shape[1])
        self.ix.init_index(max_elements=len(base), M=M, ef_construction=EF_CONSTRUCTION,
                           random_seed=42)
        self.ix.set_num_threads(1)
        self.ix.add_items(base, np.arange(len(base)), num_threads=1)

    def set(self, v):
        self.ix.set_ef(v)

    def search(self, q):
        return self.ix.knn_query(q, k=K, num_threads=1)[0].astype(np.int64)

    def index_bytes(self):
        return self.ix.index_file_size()


class _Faiss:
    version = property(lambda self: _version("faiss-cpu"))

    def _train_add(self, index, base):
        import faiss

        faiss.omp_set_num_threads(1)
        index.train(base)
        index.add(base)
        self.ix = index

    def search(self, q):
        return self.ix.search(q, K)[1].astype(np.int64)

    def index_bytes(self):
        import faiss

        return int(faiss.serialize_index(self.ix).size)


class FaissHnsw(_Faiss):
    knob = "ef"

    def knobs(self, quick):
        return EFS_QUICK if quick else EFS

    def build(self, base, metric, nlist):
        import faiss

        ix = faiss.IndexHNSWFlat(base.shape[1], M)
        ix.hnsw.efConstruction = EF_CONSTRUCTION
        self._train_add(ix, base)

    def set(self, v):
        self.ix.hnsw.efSearch = v


class FaissIvfFlat(_Faiss):
    knob = "nprobe"

    def knobs(self, quick):
        return [p for p in (NPROBES_QUICK if quick else NPROBES) if p <= self.nlist]

    def build(self, base, metric, nlist):
        import faiss

        d = base.shape[1]
        self.nlist = nlist
        self._train_add(faiss.IndexIVFFlat(faiss.IndexFlatL2(d), d, nlist), base)

    def set(self, v):
        import faiss

        faiss.extract_index_ivf(self.ix).nprobe = v


class FaissIvfPqFs(FaissIvfFlat):
    """IVF{nlist},PQ{d/2}x4fs with an exact float32 refine of 10 x k."""

    def build(self, base, metric, nlist):
        import faiss

        d = base.shape[1]
        ivf = faiss.IndexIVFPQFastScan(faiss.IndexFlatL2(d), d, nlist, d // 2, 4)
        ix = faiss.IndexRefineFlat(ivf)
        ix.k_factor = 10
        self.nlist = nlist
        self._train_add(ix, base)


class Usearch:
    knob = "ef"
    version = property(lambda self: _version("usearch"))

    def knobs(self, quick):
        return EFS_QUICK if quick else EFS

    def build(self, base, metric, nlist):
        from usearch.index import Index

        self.ix = Index(ndim=base.shape[1], metric="ip" if metric == "cosine" else "l2sq",
                        dtype="f32", connectivity=M, expansion_add=EF_CONSTRUCTION)
        self.ix.add(np.arange(len(base)), base, threads=1)

    def set(self, v):
        self.ix.expansion_search = v

    def search(self, q):
        m = self.ix.search(q, K, threads=1)
        return m.keys.astype(np.int64)

    def index_bytes(self):
        return int(self.ix.serialized_length)


class NgtOnng:
    knob = "epsilon"
    version = property(lambda self: _version("ngt"))

    def knobs(self, quick):
        if quick:
            return [0.02, 0.1, 0.2]
        return [0.0, 0.02, 0.04, 0.06, 0.08, 0.1, 0.12, 0.15, 0.2, 0.25, 0.3, 0.4]

    def build(self, base, metric, nlist):
        import ngtpy

        self.dir = tempfile.mkdtemp(prefix="vl-bench-ngt-")
        anng, onng = os.path.join(self.dir, "anng"), os.path.join(self.dir, "onng")
        ngtpy.create(anng, base.shape[1], edge_size_for_creation=100, distance_type="L2")
        ix = ngtpy.Index(anng, log_disabled=True)
        ix.batch_insert(base, num_threads=1)
        ix.save()
        ix.close()
        opt = ngtpy.Optimizer(num_of_outgoings=10, num_of_incomings=120, log_disabled=True)
        opt.set_processing_modes(search_parameter_optimization=False,
                                 prefetch_parameter_optimization=False,
                                 accuracy_table_generation=False)
        opt.execute(anng, onng)
        self.ix = ngtpy.Index(onng, read_only=True, log_disabled=True)
        self.onng = onng

    def set(self, v):
        self.ix.set(epsilon=v, num_of_search_objects=K)

    def search(self, q):
        import ngtpy

        res = ngtpy.BatchResults()
        self.ix.batch_search(q, res, K, with_distance=False)
        start, ids = res.get_index(), res.get_indexed_ids()
        out = np.full((len(q), K), -1, dtype=np.int64)
        for i in range(len(q)):
            row = ids[start[i]:start[i + 1]][:K]
            out[i, :len(row)] = row
        return out

    def index_bytes(self):
        total = 0
        for root, _, files in os.walk(self.onng):
            total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
        return total

    def __del__(self):
        if getattr(self, "dir", None):
            shutil.rmtree(self.dir, ignore_errors=True)


class VsagHgraph:
    knob = "ef"
    version = property(lambda self: _version("pyvsag"))

    def knobs(self, quick):
        return EFS_QUICK if quick else EFS

    def build(self, base, metric, nlist):
        import pyvsag

        self.dim = base.shape[1]
        p = {"dtype": "float32", "metric_type": "ip" if metric == "cosine" else "l2",
             "dim": self.dim,
             "index_param": {"base_quantization_type": "sq8", "max_degree": 2 * M,
                             "ef_construction": EF_CONSTRUCTION, "use_reorder": True,
                             "precise_quantization_type": "fp32", "build_thread_count": 1}}
        self.ix = pyvsag.Index("hgraph", json.dumps(p))
        self.ix.build(base.reshape(-1), np.arange(len(base), dtype=np.int64), len(base), self.dim)

    def set(self, v):
        self.params = json.dumps({"hgraph": {"ef_search": v}})

    def search(self, q):
        out = np.full((len(q), K), -1, dtype=np.int64)
        for i in range(len(q)):
            a, b = self.ix.knn_search(q[i], K, self.params)
            ids = a if a.dtype.kind == "i" else b
            out[i, :len(ids)] = ids
        return out

    def index_bytes(self):
        return None


class Scann:
    knob = "leaves"
    version = property(lambda self: _version("scann"))

    def knobs(self, quick):
        return [p for p in (NPROBES_QUICK if quick else NPROBES) if p <= self.nlist]

    def build(self, base, metric, nlist):
        import scann

        cos = metric == "cosine"
        b = scann.scann_ops_pybind.builder(base, K, "dot_product" if cos else "squared_l2")
        b.set_n_training_threads(1)
        b = b.tree(num_leaves=nlist, num_leaves_to_search=8, training_sample_size=len(base))
        b = b.score_ah(2, anisotropic_quantization_threshold=0.2) if cos else b.score_ah(2)
        self.ix = b.reorder(100).build()
        self.ix.set_num_threads(1)
        self.nlist = nlist

    def set(self, v):
        self.leaves = v

    def search(self, q):
        ids, _ = self.ix.search_batched(q, leaves_to_search=self.leaves,
                                        pre_reorder_num_neighbors=100)
        return ids.astype(np.int64)

    def index_bytes(self):
        d = tempfile.mkdtemp(prefix="vl-bench-scann-")
        try:
            self.ix.serialize(d)
            return sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))
        finally:
            shutil.rmtree(d, ignore_errors=True)


PEERS = {
    "hnswlib": Hnswlib,
    "faiss-hnsw": FaissHnsw,
    "faiss-ivf-flat": FaissIvfFlat,
    "faiss-ivfpq-fs": FaissIvfPqFs,
    "usearch": Usearch,
    "ngt-onng": NgtOnng,
    "vsag-hgraph": VsagHgraph,
    "scann": Scann,
}
# What each name stands for, printed beside the tables.
DESCRIBE = {
    "hnswlib": f"hnswlib HNSW, M={M}, ef_construction={EF_CONSTRUCTION}",
    "faiss-hnsw": f"faiss IndexHNSWFlat, M={M}, efConstruction={EF_CONSTRUCTION}",
    "faiss-ivf-flat": "faiss IndexIVFFlat, nlist = 2 sqrt(n)",
    "faiss-ivfpq-fs": "faiss IVF{nlist},PQ{d/2}x4fs + IndexRefineFlat k_factor 10",
    "usearch": f"usearch f32 HNSW, connectivity={M}, expansion_add={EF_CONSTRUCTION}",
    "ngt-onng": "ngt ONNG (ANNG 100 edges, reconstructed 10 out / 120 in), epsilon sweep",
    "vsag-hgraph": f"pyvsag hgraph, SQ8 base + fp32 re-order, max_degree={2 * M}, "
                   f"ef_construction={EF_CONSTRUCTION}; one call per query (no batch API)",
    "scann": "scann tree (nlist leaves) + AH 2-d (anisotropic 0.2 on cosine) + re-order 100",
}
# The package that provides each peer, as named in bench/requirements.txt.
PACKAGE = {"hnswlib": "hnswlib", "faiss-hnsw": "faiss-cpu", "faiss-ivf-flat": "faiss-cpu",
           "faiss-ivfpq-fs": "faiss-cpu", "usearch": "usearch", "ngt-onng": "ngt",
           "vsag-hgraph": "pyvsag", "scann": "scann"}
