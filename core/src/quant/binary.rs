//! Binary codes: random-hyperplane (or sign) bits and Hamming distance.
