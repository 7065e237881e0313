//! IVF and IVF-PQ: coarse centroids, inverted lists of residual PQ codes, exact rerank.
