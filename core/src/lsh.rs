//! The binary-code index: Hamming scan or multi-probe LSH tables, then exact rerank.
